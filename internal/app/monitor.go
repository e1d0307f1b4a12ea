package app

import (
	"context"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/httpapi"
	"github.com/heraldhq/herald/internal/provider/failover"
	"github.com/heraldhq/herald/internal/queue"
)

// monitor satisfies httpapi.Monitor: the queue's consumers and the
// circuit breakers of this process's providers, for the admin overview.
type monitor struct {
	q         *queue.Queue
	providers *providerSet
	// sends is whether this process runs workers: only then do its
	// breakers see the providers' answers.
	sends bool
	now   func() time.Time
}

// QueueConsumers implements httpapi.Monitor.
func (m *monitor) QueueConsumers(ctx context.Context) ([]httpapi.QueueConsumer, error) {
	stats, err := m.q.ConsumerStats(ctx)
	out := make([]httpapi.QueueConsumer, 0, len(stats))
	for _, st := range stats {
		c := httpapi.QueueConsumer{Stream: st.Stream, Consumer: st.Consumer, Pending: st.Pending,
			AckPending: st.AckPending, Redelivered: st.Redelivered, Waiting: st.Waiting}
		if !st.OldestPending.IsZero() {
			c.OldestPendingAge = max(m.now().Sub(st.OldestPending), 0)
		}
		out = append(out, c)
	}
	return out, err
}

// ProviderCircuits implements httpapi.Monitor. A channel without a
// provider list is left out; one whose list cannot be built is reported
// by its error.
func (m *monitor) ProviderCircuits(ctx context.Context, appID string) ([]httpapi.ProviderCircuit, error) {
	var out []httpapi.ProviderCircuit
	for _, c := range herald.AllChannels() {
		list := m.providers.cached(ctx, appID, c)
		if herald.IsNotFound(list.err) {
			continue
		}
		if list.err != nil {
			return nil, list.err
		}
		// A provider serving several push platforms has a breaker in each
		// platform's list: it is open when any of them is.
		open := map[herald.Provider]bool{}
		for _, fp := range list.byPlatform {
			if f, ok := fp.(*failover.Provider); ok {
				f.States(func(p herald.Provider, isOpen bool) { open[p] = open[p] || isOpen })
			}
		}
		for i, p := range list.members {
			state := httpapi.CircuitClosed
			switch {
			case !m.sends:
				state = httpapi.CircuitUnknown
			case open[p]:
				state = httpapi.CircuitOpen
			}
			out = append(out, httpapi.ProviderCircuit{Channel: c, Position: i, Kind: p.Kind(), Circuit: state})
		}
	}
	return out, nil
}
