// Package ratelimittest is the conformance suite every herald.RateLimiter
// runs: the in-process and Redis limiters must count identically.
package ratelimittest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhq/herald"
)

// Open returns two limiters that share their counts — the same limiter
// twice in process, two clients of one Redis standing in for two
// processes — with a namespace no other test uses. It closes them in
// t.Cleanup.
type Open func(t *testing.T) (a, b herald.RateLimiter)

// Run runs the suite; subtests call open in parallel.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		test func(t *testing.T, a, b herald.RateLimiter)
	}{
		{"CountsUpToMax", testCountsUpToMax},
		{"KeysAreSeparate", testKeysAreSeparate},
		{"InvalidLimit", testInvalidLimit},
		{"WindowSlides", testWindowSlides},
		{"SharedBetweenLimiters", testShared},
		{"ConcurrentNeverExceeds", testConcurrent},
		{"NamedEventsCountOnce", testNamedEvents},
		{"ConcurrentNamedEvents", testConcurrentNamed},
		{"PeekDoesNotCount", testPeek},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tt.test(t, a, b)
		})
	}
}

func key() string { return "k-" + uuid.NewString() }

func allow(t *testing.T, l herald.RateLimiter, key string, lim herald.Limit) herald.RateDecision {
	t.Helper()
	return allowEvent(t, l, key, lim, "")
}

func allowEvent(t *testing.T, l herald.RateLimiter, key string, lim herald.Limit, event string) herald.RateDecision {
	t.Helper()
	d, err := l.Allow(t.Context(), key, lim, event)
	if err != nil {
		t.Fatalf("Allow(%q, %+v): %v", key, lim, err)
	}
	return d
}

// testCountsUpToMax: Max events are allowed with falling Remaining, the
// next is refused with a RetryAfter within the period, and stays refused.
func testCountsUpToMax(t *testing.T, a, _ herald.RateLimiter) {
	k, lim := key(), herald.Limit{Max: 3, Per: time.Hour}
	for i := range 3 {
		d := allow(t, a, k, lim)
		if !d.Allowed || d.Remaining != 2-i {
			t.Fatalf("event %d: got %+v, want allowed with %d remaining", i+1, d, 2-i)
		}
	}
	for i := range 3 {
		d := allow(t, a, k, lim)
		if d.Allowed {
			t.Fatalf("event %d past the limit was allowed", i+1)
		}
		if d.RetryAfter <= 0 || d.RetryAfter > time.Hour {
			t.Fatalf("RetryAfter = %v, want within (0, 1h]", d.RetryAfter)
		}
	}
}

func testKeysAreSeparate(t *testing.T, a, _ herald.RateLimiter) {
	k1, k2, lim := key(), key(), herald.Limit{Max: 1, Per: time.Hour}
	if !allow(t, a, k1, lim).Allowed {
		t.Fatal("first event of k1 refused")
	}
	if allow(t, a, k1, lim).Allowed {
		t.Fatal("second event of k1 allowed")
	}
	if !allow(t, a, k2, lim).Allowed {
		t.Fatal("first event of k2 refused: keys share a window")
	}
}

func testInvalidLimit(t *testing.T, a, _ herald.RateLimiter) {
	for _, lim := range []herald.Limit{{Max: 0, Per: time.Second}, {Max: 1, Per: 0}, {Max: -1, Per: -time.Second}} {
		_, err := a.Allow(t.Context(), key(), lim, "")
		if herald.ErrorCode(err) != herald.CodeInvalid {
			t.Errorf("Allow with %+v: err = %v, want CodeInvalid", lim, err)
		}
	}
}

// testWindowSlides: once the RetryAfter of a refusal has passed, the
// window has room again, and only for as many events as left it.
func testWindowSlides(t *testing.T, a, _ herald.RateLimiter) {
	k, lim := key(), herald.Limit{Max: 2, Per: 1500 * time.Millisecond}
	allow(t, a, k, lim)
	allow(t, a, k, lim)
	d := allow(t, a, k, lim)
	if d.Allowed {
		t.Fatal("third event in the window allowed")
	}
	time.Sleep(d.RetryAfter + 50*time.Millisecond) // the refusal said when to come back
	deadline := time.Now().Add(5 * time.Second)
	for !allow(t, a, k, lim).Allowed {
		if time.Now().After(deadline) {
			t.Fatal("still refused long after RetryAfter")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testShared: what one limiter allows, the other counts.
func testShared(t *testing.T, a, b herald.RateLimiter) {
	k, lim := key(), herald.Limit{Max: 2, Per: time.Hour}
	if !allow(t, a, k, lim).Allowed || !allow(t, b, k, lim).Allowed {
		t.Fatal("the first two events were not both allowed")
	}
	if allow(t, a, k, lim).Allowed || allow(t, b, k, lim).Allowed {
		t.Fatal("a third event was allowed: the limiters do not share their counts")
	}
}

// testConcurrent: many goroutines on both limiters at once get exactly
// Max events allowed, never more.
func testConcurrent(t *testing.T, a, b herald.RateLimiter) {
	k, lim := key(), herald.Limit{Max: 7, Per: time.Hour}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		l := a
		if g%2 == 1 {
			l = b
		}
		wg.Go(func() {
			for range 20 {
				d, err := l.Allow(t.Context(), k, lim, "")
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != int64(lim.Max) {
		t.Fatalf("%d of 640 concurrent events allowed, want exactly %d", got, lim.Max)
	}
}

// testNamedEvents: an event counted once is allowed again without
// counting, on either limiter; other events still meet the limit.
func testNamedEvents(t *testing.T, a, b herald.RateLimiter) {
	k, lim := key(), herald.Limit{Max: 2, Per: time.Hour}
	steps := []struct {
		l       herald.RateLimiter
		event   string
		allowed bool
	}{
		{a, "n1", true}, {b, "n1", true}, {a, "n1", true},
		{b, "n2", true},
		{a, "n1", true}, {b, "n2", true},
		{a, "n3", false}, {b, "", false},
	}
	for i, s := range steps {
		if d := allowEvent(t, s.l, k, lim, s.event); d.Allowed != s.allowed {
			t.Fatalf("step %d (event %q): allowed = %v, want %v", i, s.event, d.Allowed, s.allowed)
		}
	}
}

// testConcurrentNamed: the same few events from many goroutines at once
// count once each: with room for all of them, every call is allowed and
// a further event is refused.
func testConcurrentNamed(t *testing.T, a, b herald.RateLimiter) {
	k, lim := key(), herald.Limit{Max: 4, Per: time.Hour}
	var refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		l := a
		if g%2 == 1 {
			l = b
		}
		wg.Go(func() {
			for i := range 20 {
				d, err := l.Allow(t.Context(), k, lim, fmt.Sprintf("n%d", (g+i)%4))
				if err != nil {
					t.Error(err)
					return
				}
				if !d.Allowed {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Fatalf("%d calls for 4 events against a limit of 4 were refused", n)
	}
	if allowEvent(t, a, k, lim, "n4").Allowed {
		t.Fatal("a fifth event was allowed")
	}
}

func peek(t *testing.T, l herald.RateLimiter, key string, lim herald.Limit) herald.RateDecision {
	t.Helper()
	d, err := l.Peek(t.Context(), key, lim)
	if err != nil {
		t.Fatalf("Peek(%q, %+v): %v", key, lim, err)
	}
	return d
}

// testPeek: Peek answers what the next Allow would, on every limiter
// sharing the counts, and never counts itself.
func testPeek(t *testing.T, a, b herald.RateLimiter) {
	k, lim := key(), herald.Limit{Max: 2, Per: time.Hour}
	for range 5 {
		if d := peek(t, a, k, lim); !d.Allowed || d.Remaining != 2 {
			t.Fatalf("Peek of an empty window = %+v, want allowed with 2 remaining", d)
		}
	}
	allow(t, a, k, lim)
	if d := peek(t, b, k, lim); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("Peek after one event = %+v, want allowed with 1 remaining", d)
	}
	allow(t, b, k, lim)
	for _, l := range []herald.RateLimiter{a, b} {
		d := peek(t, l, k, lim)
		if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Hour {
			t.Fatalf("Peek of a full window = %+v, want refused with RetryAfter within (0, 1h]", d)
		}
	}
	if _, err := a.Peek(t.Context(), k, herald.Limit{}); err == nil {
		t.Error("Peek with an invalid limit succeeded")
	}
	// A window that slides empty has room again.
	short := herald.Limit{Max: 1, Per: 50 * time.Millisecond}
	k2 := key()
	allow(t, a, k2, short)
	deadline := time.Now().Add(5 * time.Second)
	for !peek(t, b, k2, short).Allowed {
		if time.Now().After(deadline) {
			t.Fatal("the window never had room again")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
