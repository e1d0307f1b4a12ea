package track

import (
	"context"
	"fmt"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/fallback"
)

// fallbackStep is the next step of d's fallback notification after a
// failure the provider reported for it (a message it accepted and then
// could not deliver), written with that failure; nil when there is none.
func (c *Callbacks) fallbackStep(ctx context.Context, d herald.Delivery, reason string) (*herald.FallbackStep, error) {
	if d.UserID == "" {
		return nil, nil
	}
	n, err := c.store.GetNotification(ctx, d.AppID, d.NotificationID)
	if err != nil {
		return nil, fmt.Errorf("track: notification %q: %w", d.NotificationID, err)
	}
	critical := c.o.Critical != nil && c.o.Critical(ctx, d.AppID, n.Category)
	step, err := fallback.Step(ctx, c.store, n, d, herald.StatusFailed, reason, critical, c.now())
	if err != nil {
		return nil, fmt.Errorf("track: %w", err)
	}
	return step, nil
}
