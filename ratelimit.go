package herald

import (
	"context"
	"time"
)

// Limit is "at most Max events per Per", counted over a sliding window:
// an event is allowed only when fewer than Max were allowed in the Per
// before it, so no window of length Per ever holds more than Max.
type Limit struct {
	Max int
	Per time.Duration
}

// RateDecision is a limiter's answer to one event.
type RateDecision struct {
	// Allowed reports whether the event was allowed, and so counted.
	Allowed bool
	// RetryAfter, when not Allowed, is how long until the window has
	// room again.
	RetryAfter time.Duration
	// Remaining is how many more events the window allows now.
	Remaining int
}

// RateLimiter counts events per key. The in-process and Redis limiters
// (internal/ratelimit) implement it and pass one conformance suite.
type RateLimiter interface {
	// Allow counts one event under key if the limit allows it. event, when
	// not empty, names it: an event already counted in the window is
	// allowed again without counting twice (a delivery handled twice, the
	// devices of one push). Called by the API for per-key request limits
	// and by the worker for frequency caps; the same key must always be
	// used with the same limit. Errors:
	// CodeInvalid for a limit with Max < 1 or Per <= 0, CodeUnavailable
	// when a shared backend cannot be reached.
	Allow(ctx context.Context, key string, l Limit, event string) (RateDecision, error)
	// Peek reports whether one more event under key would be allowed now,
	// without counting it: Allowed with the room left, or RetryAfter.
	// Called by the API before a request's key is looked up, to refuse
	// an address that failed authentication too often. Errors as Allow's.
	Peek(ctx context.Context, key string, l Limit) (RateDecision, error)
}
