// Package failover sends through an ordered list of providers: each has a
// circuit breaker, and a message goes to the next provider when the one
// before it is open or answers with a passing, provider-side failure. The
// list is one app's configuration for one channel and platform.
package failover

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/heraldhq/herald"
)

// Breaker settings.
type Options struct {
	// Failures in a row that open a provider's circuit (default 5).
	Threshold int
	// Cooldown is how long an open circuit stays open before one probe
	// message may try it again (default 30s).
	Cooldown time.Duration
	Now      func() time.Time
	// OnState, when set, is told when a provider's circuit opens (true) or closes (false).
	OnState func(kind string, open bool)
}

// Provider is the failover list. Safe for concurrent use.
type Provider struct {
	entries []*entry
	o       Options
}

// Member is one provider of the list with its send-rate cap.
type Member struct {
	Provider herald.Provider
	// RatePerSecond caps sends through it (a token bucket with a burst of
	// one second's worth); 0 means no cap.
	RatePerSecond float64
}

type entry struct {
	p       herald.Provider
	limiter *rate.Limiter // nil without a cap

	mu       sync.Mutex
	failures int       // consecutive passing failures
	openTill time.Time // zero when closed
	probing  bool      // a half-open probe is under way
}

// New returns a failover list over providers, in order of preference.
func New(providers []herald.Provider, o Options) *Provider {
	members := make([]Member, len(providers))
	for i, p := range providers {
		members[i] = Member{Provider: p}
	}
	return NewWithLimits(members, o)
}

// NewWithLimits is New with a send-rate cap per provider.
func NewWithLimits(members []Member, o Options) *Provider {
	if o.Threshold <= 0 {
		o.Threshold = 5
	}
	if o.Cooldown <= 0 {
		o.Cooldown = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	f := &Provider{o: o}
	for _, m := range members {
		e := &entry{p: m.Provider}
		if m.RatePerSecond > 0 {
			e.limiter = rate.NewLimiter(rate.Limit(m.RatePerSecond), max(1, int(m.RatePerSecond)))
		}
		f.entries = append(f.entries, e)
	}
	return f
}

// Circuits calls yield with the kind of each provider of the list and
// whether its circuit is open (or half-open) now.
func (f *Provider) Circuits(yield func(kind string, open bool)) {
	for _, e := range f.entries {
		e.mu.Lock()
		open := !e.openTill.IsZero()
		e.mu.Unlock()
		yield(e.p.Kind(), open)
	}
}

// States calls yield with each provider of the list and whether its
// circuit is open (or half-open) now, so that a caller holding the
// providers can tell two of the same kind apart.
func (f *Provider) States(yield func(p herald.Provider, open bool)) {
	for _, e := range f.entries {
		e.mu.Lock()
		open := !e.openTill.IsZero()
		e.mu.Unlock()
		yield(e.p, open)
	}
}

// Kind names the first provider of the list; each Outcome names the one that answered.
func (f *Provider) Kind() string { return f.entries[0].p.Kind() }

// Send tries the providers in order, skipping open circuits, and moves on
// after a passing failure. When every circuit is open, the first provider
// is tried anyway rather than failing without a try.
func (f *Provider) Send(ctx context.Context, m herald.Message) herald.Outcome {
	var last herald.Outcome
	tried := false
	for _, e := range f.entries {
		if !e.admit(f.o.Now()) {
			continue
		}
		tried = true
		out, limited := e.send(ctx, m)
		if out.Provider == "" {
			out.Provider = e.p.Kind()
		}
		if !limited {
			f.record(e, out)
		}
		if out.Kind != herald.OutcomeRetry || ctx.Err() != nil {
			return out
		}
		last = out
	}
	if !tried {
		e := f.entries[0]
		out, limited := e.send(ctx, m)
		if out.Provider == "" {
			out.Provider = e.p.Kind()
		}
		if !limited {
			f.record(e, out)
		}
		return out
	}
	return last
}

// send waits for the provider's rate cap, then sends; limited reports
// that the cap, not the provider, kept the message back.
func (e *entry) send(ctx context.Context, m herald.Message) (out herald.Outcome, limited bool) {
	if e.limiter != nil {
		if err := e.limiter.Wait(ctx); err != nil {
			return herald.Outcome{Kind: herald.OutcomeRetry, RetryAfter: time.Second, Provider: e.p.Kind(),
				Detail: "the provider's send-rate cap leaves no room before the deadline"}, true
		}
	}
	return e.p.Send(ctx, m), false
}

// admit reports whether the entry may take a message now: closed, or open
// past its cooldown with no probe under way (half-open).
func (e *entry) admit(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.openTill.IsZero() {
		return true
	}
	if now.Before(e.openTill) || e.probing {
		return false
	}
	e.probing = true
	return true
}

// record counts a passing failure against the provider, or clears its record.
func (f *Provider) record(e *entry, out herald.Outcome) {
	e.mu.Lock()
	wasOpen := !e.openTill.IsZero()
	e.probing = false
	changed, open := false, false
	if out.Kind == herald.OutcomeRetry {
		e.failures++
		if e.failures >= f.o.Threshold || wasOpen {
			e.openTill = f.o.Now().Add(f.o.Cooldown)
			changed, open = !wasOpen, true
		}
	} else {
		// Any answer but a passing failure shows the provider is up.
		e.failures = 0
		if wasOpen {
			e.openTill = time.Time{}
			changed = true
		}
	}
	e.mu.Unlock()
	if changed && f.o.OnState != nil {
		f.o.OnState(e.p.Kind(), open)
	}
}
