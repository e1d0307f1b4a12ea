package ratelimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald"
)

// Redis is the limiter shared by every Herald process that uses the same
// Redis: each key's window is a sorted set of the allowed events' times,
// checked and added to by one Lua script, so the check and the take are
// atomic across processes. Times are Redis's own clock, so the processes'
// clocks need not agree.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

//go:embed window.lua
var windowSource string

var windowScript = redis.NewScript(windowSource)

//go:embed peek.lua
var peekSource string

var peekScript = redis.NewScript(peekSource)

// NewRedis returns a limiter on client; every key it writes starts with
// prefix (e.g. "herald:rl:").
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// Allow counts one event under key if the limit allows it.
func (r *Redis) Allow(ctx context.Context, key string, l herald.Limit, event string) (herald.RateDecision, error) {
	if err := check(l); err != nil {
		return herald.RateDecision{}, err
	}
	per := l.Per.Microseconds()
	if per < 1 {
		per = 1
	}
	// An unnamed event only needs a unique member: two in the same
	// microsecond both count.
	member := "e:" + event
	if event == "" {
		member = "u:" + uuid.NewString()
	}
	res, err := windowScript.Run(ctx, r.client, []string{r.prefix + key}, l.Max, per, member).Int64Slice()
	if err != nil {
		return herald.RateDecision{}, translate(err, key)
	}
	if len(res) != 3 {
		return herald.RateDecision{}, fmt.Errorf("ratelimit: redis window of %q answered %v", key, res)
	}
	if res[0] == 1 {
		return herald.RateDecision{Allowed: true, Remaining: int(res[1])}, nil
	}
	return herald.RateDecision{RetryAfter: time.Duration(res[2]) * time.Microsecond}, nil
}

// Peek reports whether one more event under key would be allowed now,
// without counting it.
func (r *Redis) Peek(ctx context.Context, key string, l herald.Limit) (herald.RateDecision, error) {
	if err := check(l); err != nil {
		return herald.RateDecision{}, err
	}
	per := max(l.Per.Microseconds(), 1)
	res, err := peekScript.Run(ctx, r.client, []string{r.prefix + key}, l.Max, per).Int64Slice()
	if err != nil {
		return herald.RateDecision{}, translate(err, key)
	}
	if len(res) != 3 {
		return herald.RateDecision{}, fmt.Errorf("ratelimit: redis window of %q answered %v", key, res)
	}
	if res[0] == 1 {
		return herald.RateDecision{Allowed: true, Remaining: int(res[1])}, nil
	}
	return herald.RateDecision{RetryAfter: time.Duration(res[2]) * time.Microsecond}, nil
}

// translate makes a Redis that cannot be reached CodeUnavailable.
func translate(err error, key string) error {
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) {
		return &herald.Error{Code: herald.CodeUnavailable, Message: "ratelimit: redis unreachable", Err: err}
	}
	return fmt.Errorf("ratelimit: redis window of %q: %w", key, err)
}

// ParseRedisURL opens a client from a redis:// or rediss:// URL.
func ParseRedisURL(u string) (*redis.Client, error) {
	opt, err := redis.ParseURL(u)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: redis url: %w", err)
	}
	return redis.NewClient(opt), nil
}
