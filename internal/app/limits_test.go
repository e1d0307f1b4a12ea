package app_test

import (
	"strconv"
	"testing"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestAPIKeyRequestLimit: past its limit, a key's requests are answered
// 429 problem+json with Retry-After in whole seconds; other keys go on.
func TestAPIKeyRequestLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.APIRate, cfg.APIBurst = 0.5, 3 // 3 requests in any 6 s
	a := start(t, cfg)
	requestLimit(t, a, a, cfg)
}

// TestAPIKeyRequestLimitShared: two API processes sharing Redis (and the
// store) count one key's requests together.
func TestAPIKeyRequestLimitShared(t *testing.T) {
	cfg := scaledConfig(t)
	cfg.RedisURL = heraldtest.ServiceURL(t, heraldtest.EnvRedis)
	cfg.APIRate, cfg.APIBurst = 0.5, 3
	one := start(t, cfg)
	cfg.DataDir = t.TempDir()
	two := start(t, cfg)
	requestLimit(t, one, two, cfg)
}

// requestLimit spends a key's 3 requests over a and b in turn.
func requestLimit(t *testing.T, a, b *app.App, cfg app.Config) {
	t.Helper()
	admin := newApp(t, a, "shop")
	first, second := newAPI(t, a, admin), newAPI(t, b, admin)
	var other struct{ Key string }
	first.must(201, "POST", "/v1/keys", map[string]any{"name": "other", "scope": "send"}).decode(t, &other)
	second.must(200, "GET", "/v1/notifications", nil)
	first.must(200, "GET", "/v1/notifications", nil)

	for _, c := range []*api{second, first} {
		r := c.must(429, "GET", "/v1/notifications", nil)
		var p problem
		r.decode(t, &p)
		if p.Type != "https://herald.dev/problems/rate-limited" || p.Status != 429 {
			t.Fatalf("problem = %+v, want rate-limited 429", p)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("Content-Type = %q", ct)
		}
		secs, err := strconv.Atoi(r.header.Get("Retry-After"))
		if per := int(cfg.APIKeyLimit().Per.Seconds()); err != nil || secs < 1 || secs > per {
			t.Fatalf("Retry-After = %q, want whole seconds in [1, %d]", r.header.Get("Retry-After"), per)
		}
	}
	// Another key of the same app has its own limit.
	newAPI(t, b, other.Key).must(200, "GET", "/v1/notifications", nil)
}
