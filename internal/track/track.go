// Package track is the tracker role: it follows every delivery state
// change on the EVENTS stream and turns it into counters. Webhooks and
// analytics build on the same feed.
package track

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
)

// Tracker handles events. HandleEvents is safe for concurrent use.
type Tracker struct {
	logger  *slog.Logger
	events  *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// New returns a Tracker whose counters are registered on reg.
func New(logger *slog.Logger, reg prometheus.Registerer) (*Tracker, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_delivery_events_total",
		Help: "Delivery state changes seen by the tracker, by app, channel, status (accepted, queued, sent, failed, dead, ...) and provider (on the provider's answers).",
	}, []string{"app", "channel", "status", "provider"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "herald_delivery_latency_seconds",
		Help:    "From a delivery's acceptance to a provider taking it (status sent) or reporting it delivered, by channel and status.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 14), // 5ms .. about 3h
	}, []string{"channel", "status"})
	for _, c := range []prometheus.Collector{events, latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return &Tracker{logger: logger, events: events, latency: latency}, nil
}

// HandleEvents records a batch of events.
func (t *Tracker) HandleEvents(_ context.Context, evs []herald.Event) error {
	debug := t.logger.Enabled(context.Background(), slog.LevelDebug)
	for _, e := range evs {
		t.events.WithLabelValues(e.AppID, string(e.Channel), string(e.Status), e.Provider).Inc()
		if e.Status == herald.StatusSent || e.Status == herald.StatusDelivered {
			if accepted, ok := acceptedAt(e.DeliveryID); ok && !e.At.Before(accepted) {
				t.latency.WithLabelValues(string(e.Channel), string(e.Status)).Observe(e.At.Sub(accepted).Seconds())
			}
		}
		if debug {
			t.logger.Debug("delivery event", "app", e.AppID, "notification", e.NotificationID, "delivery", e.DeliveryID,
				"channel", e.Channel, "status", e.Status, "reason", e.Reason, "attempt", e.Attempt)
		}
	}
	return nil
}

// acceptedAt reads when a delivery was accepted from its id: a delivery
// id (UUIDv8) starts with its notification's UUIDv7, whose first 48 bits
// are the acceptance time in Unix milliseconds.
func acceptedAt(deliveryID string) (time.Time, bool) {
	id, err := uuid.Parse(deliveryID)
	if err != nil || (id.Version() != 7 && id.Version() != 8) {
		return time.Time{}, false
	}
	ms := int64(id[0])<<40 | int64(id[1])<<32 | int64(id[2])<<24 | int64(id[3])<<16 | int64(id[4])<<8 | int64(id[5])
	return time.UnixMilli(ms), true
}
