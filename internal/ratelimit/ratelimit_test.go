package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/ratelimit"
	"github.com/heraldhq/herald/internal/ratelimit/ratelimittest"
)

func TestMemory(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T) (a, b herald.RateLimiter) {
		m := ratelimit.NewMemory(ratelimit.MemoryOptions{})
		return m, m
	})
}

// TestRedis runs the suite on the machine's Redis, with two clients
// standing in for two Herald processes.
func TestRedis(t *testing.T) {
	url := heraldtest.ServiceURL(t, heraldtest.EnvRedis)
	ratelimittest.Run(t, func(t *testing.T) (a, b herald.RateLimiter) {
		prefix := "heraldtest:" + uuid.NewString() + ":"
		return openRedis(t, url, prefix), openRedis(t, url, prefix)
	})
}

func openRedis(t *testing.T, url, prefix string) herald.RateLimiter {
	t.Helper()
	c, err := ratelimit.ParseRedisURL(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The windows expire on their own; drop them now all the same
		// (t.Context is done by the time cleanups run).
		ctx := context.Background()
		if keys, err := c.Keys(ctx, prefix+"*").Result(); err == nil && len(keys) > 0 {
			c.Del(ctx, keys...)
		}
		c.Close()
	})
	return ratelimit.NewRedis(c, prefix)
}

// TestRedisUnreachable: a Redis that cannot be reached is CodeUnavailable.
func TestRedisUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	_, err := ratelimit.NewRedis(c, "x:").Allow(t.Context(), "k", herald.Limit{Max: 1, Per: time.Second}, "")
	if herald.ErrorCode(err) != herald.CodeUnavailable {
		t.Fatalf("err = %v, want CodeUnavailable", err)
	}
}

// TestMemoryForgetsEmptyWindows: keys whose windows emptied do not stay
// in memory, and a full limiter makes room rather than growing.
func TestMemoryForgetsEmptyWindows(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := ratelimit.NewMemory(ratelimit.MemoryOptions{Now: func() time.Time { return now }, MaxKeys: 64 * 10})
	lim := herald.Limit{Max: 1, Per: time.Second}
	for i := range 10_000 {
		if _, err := m.Allow(t.Context(), uuid.NewString(), lim, ""); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			now = now.Add(2 * time.Second)
		}
	}
	if n := m.Len(); n > 64*10 {
		t.Fatalf("%d keys remembered, want at most %d", n, 64*10)
	}
}
