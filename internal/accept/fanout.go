package accept

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/deliveryid"
)

// topic checks the request's topic recipient, if any, and returns the
// fan-out to start with the notification. The 202 covers the notification
// and its fan-out record only: the fan-out runner writes the subscribers'
// deliveries afterwards, page by page.
func (s *Service) topic(ctx context.Context, appID string, req herald.SendRequest) (*herald.Fanout, error) {
	for i, r := range req.To {
		if r.Topic == "" {
			continue
		}
		if len(req.Fallback) > 0 {
			// A fan-out sends on its channels; fallback plans are per direct user.
			return nil, herald.Invalid("fallback", "cannot be used with a topic recipient: give channels instead")
		}
		if _, err := s.store.GetTopic(ctx, appID, r.Topic); err != nil {
			if herald.IsNotFound(err) {
				return nil, herald.Invalid(fmt.Sprintf("to[%d].topic", i),
					fmt.Sprintf("no topic %q in this app: add subscribers with PUT /v1/topics/{name}/subscribers", r.Topic))
			}
			return nil, fmt.Errorf("accept: topic %q: %w", r.Topic, err)
		}
		return &herald.Fanout{Topic: r.Topic, Channels: req.Channels, SendAt: req.SendAt, SendAtLocal: req.SendAtLocal,
			Status: herald.FanoutRunning}, nil
	}
	return nil, nil
}

// FanoutPage resolves one page of a topic's subscribers into deliveries
// and their first events, as acceptance resolves direct users: the
// request's channels, each user's addresses, devices and opt-outs, and its
// schedule. Delivery ids are derived from the notification id and what
// each delivery addresses, as at acceptance, so a page resolved twice (a
// crash between resolving and committing) names the same deliveries, and
// a subscriber who was also a direct recipient names the delivery already
// in the log. A subscriber deleted since the page was read is skipped.
// Called by the fan-out runner.
func (s *Service) FanoutPage(ctx context.Context, f herald.Fanout, n herald.Notification, users []string) ([]herald.Delivery, []herald.Event, error) {
	asked := map[herald.Channel]bool{}
	for _, c := range f.Channels {
		asked[c] = true
	}
	var plan *templatePlan
	if n.Template != nil {
		plan = &templatePlan{rendered: n.Template, locales: map[string]string{}}
	}
	nid, err := uuid.Parse(n.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("accept: fan-out of %q: notification id: %w", n.ID, err)
	}
	var out []herald.Delivery
	add := func(d herald.Delivery) {
		d.ID = deliveryid.New(nid, deliveryid.Key(d))
		d.AppID, d.NotificationID, d.Priority = n.AppID, n.ID, n.Priority
		d.CreatedAt, d.UpdatedAt, d.NextAttemptAt = n.CreatedAt, n.CreatedAt, n.CreatedAt
		if d.Status == "" {
			d.Status = herald.StatusAccepted
		}
		out = append(out, d)
	}
	contacts, err := s.userContacts(ctx, n.AppID, users)
	if err != nil {
		return nil, nil, fmt.Errorf("fan-out of %q: %w", n.ID, err)
	}
	for _, u := range users {
		if c, ok := contacts[u]; ok {
			s.resolveUser(ctx, n, c, asked, plan, add)
		}
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	req := herald.SendRequest{SendAt: f.SendAt, SendAtLocal: f.SendAtLocal}
	if err := s.schedule(ctx, n.AppID, req, now, out, contacts); err != nil {
		return nil, nil, err
	}
	events := make([]herald.Event, 0, len(out))
	for i := range out {
		d := &out[i]
		if d.Status == herald.StatusAccepted {
			// Due from the page's commit, not the notification's acceptance:
			// the reconciler counts a delivery's wait from its due time.
			d.NextAttemptAt = now
		}
		events = append(events, herald.Event{AppID: n.AppID, NotificationID: n.ID, DeliveryID: d.ID,
			Channel: d.Channel, Status: d.Status, Reason: d.Reason, Detail: scheduledDetail(*d), At: now})
	}
	return out, events, nil
}

// stopFanout completes the notification's fan-out where it stands, if it
// has one still running: an empty last page, guarded by the cursor like
// every page, so a page the runner commits meanwhile is either in before
// it (and then retried after) or refused after it.
func (s *Service) stopFanout(ctx context.Context, appID, notificationID string) error {
	for range 10 {
		f, err := s.store.GetFanout(ctx, appID, notificationID)
		if herald.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("fan-out: %w", err)
		}
		if f.Status != herald.FanoutRunning {
			return nil
		}
		p := &herald.FanoutPage{AppID: appID, NotificationID: notificationID, After: f.Cursor, Cursor: f.Cursor,
			Done: true, At: s.now().UTC().Truncate(time.Microsecond)}
		if err := s.store.ApplyFanoutPage(ctx, p); err != nil {
			return fmt.Errorf("stop fan-out: %w", err)
		}
		if p.Applied {
			return nil
		}
	}
	return &herald.Error{Code: herald.CodeUnavailable, Message: "the fan-out kept moving while being stopped; try again",
		RetryAfterSeconds: 1}
}
