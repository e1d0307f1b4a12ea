// Package deadletter replays dead deliveries: a delivery whose retries ran
// out goes back to the work queue with a fresh budget of attempts, once,
// and only when no provider ever accepted it.
package deadletter

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/heraldhq/herald"
)

// Store is what a replay reads.
type Store interface {
	GetDelivery(ctx context.Context, appID, id string) (herald.Delivery, error)
	ListEvents(ctx context.Context, appID, notificationID string) ([]herald.Event, error)
}

// LogWriter commits log batches (the group-commit writer).
type LogWriter interface {
	Write(ctx context.Context, b *herald.Batch) error
}

// Publisher queues deliveries again under a fresh message id.
type Publisher interface {
	RepublishDeliveries(ctx context.Context, ds []herald.Delivery, round string) error
}

// Options tune the replayer.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
}

// Replayer replays dead deliveries. Safe for concurrent use.
type Replayer struct {
	store Store
	log   LogWriter
	pub   Publisher
	o     Options
}

// New returns a Replayer.
func New(store Store, log LogWriter, pub Publisher, o Options) *Replayer {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Replayer{store: store, log: log, pub: pub, o: o}
}

// Replay moves the app's dead delivery back to accepted, with a fresh
// budget of attempts and a "replayed" event on its timeline, and queues it
// at once. Called by POST /v1/dead-letters/{delivery_id}/replay.
//
// Errors: CodeNotFound when the app has no such delivery; CodeConflict when
// it is not dead (a second replay, or one racing this one) or a provider
// accepted it once (a replay would send it twice); CodeUnavailable when
// the log cannot be written.
func (r *Replayer) Replay(ctx context.Context, appID, deliveryID string) (herald.Delivery, error) {
	d, err := r.store.GetDelivery(ctx, appID, deliveryID)
	if err != nil {
		return herald.Delivery{}, fmt.Errorf("deadletter: replay %q: %w", deliveryID, err)
	}
	if d.Status != herald.StatusDead {
		return herald.Delivery{}, herald.Errorf(herald.CodeConflict,
			"delivery %s is %s, not dead: only a dead delivery can be replayed", d.ID, d.Status)
	}
	evs, err := r.store.ListEvents(ctx, appID, d.NotificationID)
	if err != nil {
		return herald.Delivery{}, fmt.Errorf("deadletter: replay %q: timeline: %w", deliveryID, err)
	}
	for _, e := range evs {
		if e.DeliveryID == d.ID && (e.Status == herald.StatusSent || e.Status == herald.StatusDelivered) {
			return herald.Delivery{}, herald.Errorf(herald.CodeConflict,
				"delivery %s was accepted by a provider once (%s at %s): a replay would send it twice", d.ID, e.Status, e.At.Format(time.RFC3339))
		}
	}
	now := r.o.Now().UTC().Truncate(time.Microsecond)
	attempts := d.Attempts
	t := herald.Transition{AppID: appID, DeliveryID: d.ID,
		From: []herald.Status{herald.StatusDead}, IfAttempts: &attempts,
		To: herald.StatusAccepted, Reason: herald.ReasonReplayed, DueAt: now,
		Event: herald.Event{AppID: appID, NotificationID: d.NotificationID, DeliveryID: d.ID, Channel: d.Channel,
			Status: herald.StatusAccepted, Reason: herald.ReasonReplayed, Attempt: d.Attempts, At: now,
			Detail: fmt.Sprintf("replayed from the dead letters after %d attempts, with a fresh budget of attempts", d.Attempts)}}
	b := &herald.Batch{Transitions: []herald.Transition{t}}
	if err := r.log.Write(ctx, b); err != nil {
		return herald.Delivery{}, fmt.Errorf("deadletter: replay %q: %w", deliveryID, err)
	}
	if !b.Transitions[0].Applied {
		return herald.Delivery{}, herald.Errorf(herald.CodeConflict,
			"delivery %s changed while it was being replayed: it is no longer dead", d.ID)
	}
	d.Status, d.Reason, d.NextAttemptAt, d.UpdatedAt = herald.StatusAccepted, herald.ReasonReplayed, now, now
	// A message id of its own: the delivery's first message id may still
	// sit in the queue's duplicate window, which would swallow this one.
	round := fmt.Sprintf("replay%d", now.UnixMicro())
	if err := r.pub.RepublishDeliveries(ctx, []herald.Delivery{d}, round); err != nil {
		// The log has it as accepted: the reconciler queues it.
		r.o.Logger.Warn("queueing a replayed delivery failed; the reconciler will", "delivery", d.ID, "err", err)
	}
	return d, nil
}
