package app

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/deliver"
	"github.com/heraldhq/herald/internal/ratelimit"
)

// openLimiter picks the rate limiter behind per-key request limits and
// frequency caps: Redis when --redis-url is set, so that every process
// counts in one place, else in process. Its keys on Redis start with the
// NATS prefix, so deployments sharing a Redis keep apart.
func (a *App) openLimiter(ctx context.Context) error {
	if a.cfg.RedisURL == "" {
		a.limiter = ratelimit.NewMemory(ratelimit.MemoryOptions{})
		return nil
	}
	c, err := ratelimit.ParseRedisURL(a.cfg.RedisURL)
	if err != nil {
		return err
	}
	a.redis = c
	if err := c.Ping(ctx).Err(); err != nil {
		return &herald.Error{Code: herald.CodeUnavailable, Message: fmt.Sprintf("redis at --redis-url: %v", err), Err: err}
	}
	a.limiter = ratelimit.NewRedis(c, "herald:"+a.cfg.NATSPrefix+":rl:")
	return nil
}

// newCaps is the worker's frequency-cap check, counted in
// herald_frequency_capped_total.
func (a *App) newCaps() *deliver.Caps {
	held := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_frequency_capped_total",
		Help: "Deliveries a frequency cap held back, by channel and what the cap did (suppress or defer)."},
		[]string{"channel", "over"})
	a.reg.MustRegister(held)
	c := deliver.NewCaps(a.store, a.limiter)
	c.OnHeld = func(ch herald.Channel, over string) { held.WithLabelValues(string(ch), over).Inc() }
	return c
}

// closeLimiter closes the Redis client, if any.
func (a *App) closeLimiter() error {
	if a.redis == nil {
		return nil
	}
	err := a.redis.Close()
	if err == redis.ErrClosed {
		err = nil
	}
	return err
}
