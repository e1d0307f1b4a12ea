package deliver

import (
	"context"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/fallback"
)

// fallbackStep returns the next step of d's fallback notification when
// the outcome to/reason could not reach the user, to be written in the
// same transaction as that outcome; nil when there is none. Reading what
// the step needs is retried for as long as an outcome's write would be;
// past that the outcome is committed without the step (logged), since
// holding it back would risk sending d again.
func (w *Worker) fallbackStep(ctx context.Context, d herald.Delivery, to herald.Status, reason string, now time.Time) *herald.FallbackStep {
	if d.UserID == "" || !herald.CouldNotReach(to, reason) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		n, err := w.store.GetNotification(ctx, d.AppID, d.NotificationID)
		var step *herald.FallbackStep
		if err == nil {
			step, err = fallback.Step(ctx, w.store, n, d, to, reason, w.critical(ctx, d, n), now)
		}
		if err == nil {
			return step
		}
		if herald.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			w.o.Logger.Error("fallback: the next channel could not be resolved; the outcome is written without it",
				"delivery", d.ID, "err", err)
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
