package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
)

// DefaultMaxSendsInFlight bounds the send requests being accepted at once
// when Deps leaves it zero. The group commit batches well from a few dozen
// concurrent senders on; more in flight only lengthen every accept's wait
// and crowd the workers' own log writes (claims, outcomes) out of the
// commits they share. At the embedded default's ~2,000 accepts/s on two
// cores, 128 in flight keep an accept's wait near 60 ms.
const DefaultMaxSendsInFlight = 128

// sendGate is the API's admission control for send requests: when the
// composition root says sends are not taken now (the delivery queue is too
// far behind or full), and beyond max requests in flight, a send is
// answered 429 (503 for a full queue) with Retry-After at once, before its
// key is checked or its body read, so that an overload is shed at the door
// instead of queueing inside the process, where it would stretch every
// accept's latency and hold memory without limit. Only sends pass it:
// reads and configuration stay answerable during an overload.
type sendGate struct {
	slots    chan struct{} // nil: no limit
	inFlight prometheus.Gauge
	onShed   func()
	door     func() error // Deps.Admit; nil admits every send
}

func newSendGate(max int, reg *prometheus.Registry, onShed func(), door func() error) *sendGate {
	g := &sendGate{onShed: onShed, door: door}
	if max > 0 {
		g.slots = make(chan struct{}, max)
	}
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_sends_in_flight",
		Help: "Send requests being accepted now; above --max-sends-in-flight more are answered 429."})
	if err := reg.Register(gauge); err != nil {
		var are prometheus.AlreadyRegisteredError
		existing, ok := prometheus.Gauge(nil), false
		if errors.As(err, &are) {
			existing, ok = are.ExistingCollector.(prometheus.Gauge)
		}
		if !ok {
			panic(fmt.Sprintf("httpapi: register in-flight gauge: %v", err))
		}
		gauge = existing // a second server on the same registry
	}
	g.inFlight = gauge
	if g.onShed == nil {
		g.onShed = func() {}
	}
	return g
}

// gate wraps a send route: before the key is checked (a store read) or
// the body read, it refuses the send while the composition root says sends
// are not taken, or when max are in flight, so that a refusal under an
// overload costs as little as it can. A send with an Idempotency-Key skips
// the first check: it may be the replay of an answer still due, which the
// Sender gives.
func (s *server) gate(h http.Handler) http.Handler {
	g := s.sendGate
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.door != nil && r.Header.Get("Idempotency-Key") == "" {
			if err := g.door(); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if g.slots != nil {
			select {
			case g.slots <- struct{}{}:
				defer func() { <-g.slots }()
			default:
				g.onShed()
				s.fail(w, r, &herald.Error{Code: herald.CodeRateLimited, RetryAfterSeconds: 1,
					Message: fmt.Sprintf("Herald is already accepting %d send requests, as many as it takes at once; try again shortly", cap(g.slots))})
				return
			}
		}
		g.inFlight.Inc()
		defer g.inFlight.Dec()
		h.ServeHTTP(w, r)
	})
}
