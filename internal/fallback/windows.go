package fallback

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/heraldhq/herald"
)

// WindowStore is what the window pass reads.
type WindowStore interface {
	Store
	GetNotification(ctx context.Context, appID, id string) (herald.Notification, error)
	OverdueFallbacks(ctx context.Context, before time.Time, limit int) ([]herald.Delivery, error)
}

// LogWriter commits log batches (the group-commit writer).
type LogWriter interface {
	Write(ctx context.Context, b *herald.Batch) error
}

// Windows moves fallback notifications on whose SMS or email stayed sent
// without a receipt (delivered, opened) for the notification's window.
// Only the scheduler role's lease holder runs its passes (the reconciler),
// so two processes never decide the same step at once; the log's guard
// (the delivery still sent, its attempt unchanged) and the step's
// deterministic ids keep a pass that is repeated from acting twice.
type Windows struct {
	store    WindowStore
	log      LogWriter
	critical func(ctx context.Context, appID, category string) bool
	logger   *slog.Logger
}

// NewWindows returns a Windows. critical, when set, reports whether the
// app marks a category critical (its steps go through opt-outs).
func NewWindows(store WindowStore, log LogWriter, critical func(ctx context.Context, appID, category string) bool, logger *slog.Logger) *Windows {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Windows{store: store, log: log, critical: critical, logger: logger}
}

// windowBatch bounds the deliveries one pass moves on.
const windowBatch = 200

// Pass writes the step of up to windowBatch deliveries whose window ended
// by now, each as a timeline step "fallback" of the delivery (which stays
// sent: a receipt may still come) with the next channel's deliveries in
// the same transaction, and reports how many it wrote.
func (w *Windows) Pass(ctx context.Context, now time.Time) (int, error) {
	ds, err := w.store.OverdueFallbacks(ctx, now, windowBatch)
	if err != nil {
		return 0, fmt.Errorf("fallback: overdue windows: %w", err)
	}
	b := &herald.Batch{}
	for _, d := range ds {
		n, err := w.store.GetNotification(ctx, d.AppID, d.NotificationID)
		if err != nil {
			return 0, fmt.Errorf("fallback: notification %q: %w", d.NotificationID, err)
		}
		critical := w.critical != nil && w.critical(ctx, d.AppID, n.Category)
		step, err := Overdue(ctx, w.store, n, d, critical, now)
		if err != nil {
			return 0, err
		}
		next := herald.Channel("")
		if step != nil && len(step.Deliveries) > 0 {
			next = step.Deliveries[0].Channel
		}
		if step == nil {
			// Nothing to try (the user is gone): the empty step still ends the window.
			step = &herald.FallbackStep{UserID: d.UserID, Channel: d.Channel}
		}
		attempts := d.Attempts
		b.Transitions = append(b.Transitions, herald.Transition{AppID: d.AppID, DeliveryID: d.ID,
			From: []herald.Status{herald.StatusSent}, IfAttempts: &attempts, To: herald.StatusSent, Reason: d.Reason,
			DueAt: d.NextAttemptAt, Fallback: step,
			Event: herald.Event{AppID: d.AppID, NotificationID: d.NotificationID, DeliveryID: d.ID, Channel: d.Channel,
				Status: herald.TimelineFallback, Attempt: d.Attempts, Provider: d.Provider,
				Detail: Detail(d.Channel, WindowReason(n), next), At: now}})
	}
	if len(b.Transitions) == 0 {
		return 0, nil
	}
	if err := w.log.Write(ctx, b); err != nil {
		return 0, fmt.Errorf("fallback: write %d window steps: %w", len(b.Transitions), err)
	}
	taken := 0
	for _, t := range b.Transitions {
		if t.Applied && t.Fallback.Added {
			taken++
		}
	}
	if taken > 0 {
		w.logger.Info("fallback windows ended without a receipt", "steps", taken)
	}
	return taken, nil
}
