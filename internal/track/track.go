// Package track is the tracker role: it follows every delivery state
// change on the EVENTS stream and turns it into counters. Webhooks and
// analytics build on the same feed.
package track

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
)

// Tracker handles events. Handle is safe for concurrent use.
type Tracker struct {
	logger *slog.Logger
	events *prometheus.CounterVec
}

// New returns a Tracker whose counters are registered on reg.
func New(logger *slog.Logger, reg prometheus.Registerer) (*Tracker, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_delivery_events_total",
		Help: "Delivery state changes seen by the tracker, by channel and status (accepted, queued, sent, failed, dead, ...).",
	}, []string{"channel", "status"})
	if err := reg.Register(events); err != nil {
		return nil, err
	}
	return &Tracker{logger: logger, events: events}, nil
}

// HandleEvents records a batch of events.
func (t *Tracker) HandleEvents(_ context.Context, evs []herald.Event) error {
	debug := t.logger.Enabled(context.Background(), slog.LevelDebug)
	for _, e := range evs {
		t.events.WithLabelValues(string(e.Channel), string(e.Status)).Inc()
		if debug {
			t.logger.Debug("delivery event", "app", e.AppID, "notification", e.NotificationID, "delivery", e.DeliveryID,
				"channel", e.Channel, "status", e.Status, "reason", e.Reason, "attempt", e.Attempt)
		}
	}
	return nil
}
