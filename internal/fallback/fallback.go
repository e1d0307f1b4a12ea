// Package fallback resolves a fallback notification's channels for a
// user: at acceptance, the first channel of the plan that can reach the
// user (after those that cannot, recorded as suppressed); after a delivery
// that could not reach the user, the next step, which the worker writes
// in the same log transaction as that delivery's outcome.
package fallback

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/deliveryid"
)

// Store is what taking a step reads: the user as it is now.
type Store interface {
	ListDevices(ctx context.Context, appID, userID string) ([]herald.Device, error)
	GetUser(ctx context.Context, appID, userID string) (herald.User, error)
	GetPreferences(ctx context.Context, appID, userID string) (herald.Preferences, error)
}

// Targets returns user u's deliveries on channel c, with UserID and
// Channel set and no ids: one per address, or per device (u's devices,
// which the caller read) for push. A contact or device a provider
// reported invalid is suppressed invalid_recipient, and every one is
// suppressed opted_out unless allowed (the user's preferences accept the
// channel for the category, or the category is critical). nil when the
// user has no address or device on c.
func Targets(u herald.User, devices []herald.Device, allowed bool, c herald.Channel) []herald.Delivery {
	invalid := func(d herald.Delivery) herald.Delivery {
		d.Status, d.Reason = herald.StatusSuppressed, herald.ReasonInvalidRecipient
		return d
	}
	var out []herald.Delivery
	switch c {
	case herald.ChannelEmail:
		if u.Email != "" && u.EmailStatus == "" {
			out = append(out, herald.Delivery{Address: u.Email})
		} else if u.Email != "" {
			out = append(out, invalid(herald.Delivery{Address: u.Email}))
		}
	case herald.ChannelSMS:
		if u.Phone != "" && u.PhoneStatus == "" {
			out = append(out, herald.Delivery{Address: u.Phone})
		} else if u.Phone != "" {
			out = append(out, invalid(herald.Delivery{Address: u.Phone}))
		}
	case herald.ChannelPush:
		for _, d := range devices {
			t := herald.Delivery{Address: d.Token, DeviceID: d.ID, Platform: d.Platform}
			if d.Status == herald.DeviceInvalid {
				t = invalid(t)
			}
			out = append(out, t)
		}
	}
	for i := range out {
		out[i].UserID, out[i].Channel = u.ID, c
		if !allowed && out[i].Status == "" {
			out[i].Status, out[i].Reason = herald.StatusSuppressed, herald.ReasonOptedOut
		}
	}
	return out
}

// Planned is a delivery of a fallback plan with the detail of its first
// timeline event.
type Planned struct {
	Delivery herald.Delivery
	Detail   string
}

// Walk tries channels in order for user u, who has devices: each channel
// that cannot reach the user gives its suppressed deliveries (one
// suppressed no_address when it has no address at all), and the first
// that can gives its deliveries and ends the walk. allows says whether the
// user takes the notification on a channel. from and fromReason name the
// channel that was left before the walk (empty at acceptance), for the details.
func Walk(u herald.User, devices []herald.Device, allows func(herald.Channel) bool,
	channels []herald.Channel, from herald.Channel, fromReason string) []Planned {
	var out []Planned
	for i, c := range channels {
		ds := Targets(u, devices, allows(c), c)
		if len(ds) == 0 {
			ds = []herald.Delivery{{UserID: u.ID, Channel: c, Status: herald.StatusSuppressed, Reason: herald.ReasonNoAddress}}
		}
		reached := slices.ContainsFunc(ds, func(d herald.Delivery) bool { return d.Status == "" })
		detail := ""
		if from != "" {
			detail = Detail(from, fromReason, c)
		}
		if !reached {
			// The reason of a skipped channel is its first delivery's: a
			// user whose devices are all invalid is invalid_recipient.
			next := herald.Channel("")
			if i+1 < len(channels) {
				next = channels[i+1]
			}
			detail = Detail(c, ds[0].Reason, next)
			from, fromReason = c, ds[0].Reason
		}
		for _, d := range ds {
			out = append(out, Planned{Delivery: d, Detail: detail})
		}
		if reached {
			break
		}
	}
	return out
}

// Detail is the timeline's note of a fallback step: channel from could
// not reach the user for reason, and next is tried (none left when empty).
func Detail(from herald.Channel, reason string, next herald.Channel) string {
	if next == "" {
		return fmt.Sprintf("fallback: %s could not reach the user (%s); no channel left to try", from, reason)
	}
	return fmt.Sprintf("fallback: %s could not reach the user (%s); trying %s", from, reason, next)
}

// Step returns the fallback step after delivery d of notification n ends
// in status to with reason, or nil when there is none: n has no fallback
// plan, d is not a user's, the outcome reached the user (or was called
// off), d's channel is the plan's last, or the user no longer exists. The
// deliveries are accepted (due at once) or suppressed, stamped with now.
// A critical category goes to channels the user opted out of. The log
// decides whether the step is taken (see herald.FallbackStep).
func Step(ctx context.Context, s Store, n herald.Notification, d herald.Delivery, to herald.Status, reason string,
	critical bool, now time.Time) (*herald.FallbackStep, error) {
	if !herald.CouldNotReach(to, reason) {
		return nil, nil
	}
	return step(ctx, s, n, d, reason, critical, now)
}

// Overdue is Step for a delivery still sent without a receipt when its
// notification's fallback window ended.
func Overdue(ctx context.Context, s Store, n herald.Notification, d herald.Delivery, critical bool, now time.Time) (*herald.FallbackStep, error) {
	return step(ctx, s, n, d, WindowReason(n), critical, now)
}

// WindowReason says why a delivery handed over when its window ended.
func WindowReason(n herald.Notification) string {
	return "no receipt within " + n.FallbackWindow.String()
}

// WindowDue is when a delivery on channel c of n, due at from, hands over
// to the next channel if it is still sent without a receipt: from plus
// the window, for SMS and email (the channels whose providers report
// receipts) when c is not the plan's last; zero otherwise.
func WindowDue(n herald.Notification, c herald.Channel, from time.Time) time.Time {
	at := slices.Index(n.Fallback, c)
	if n.FallbackWindow <= 0 || at < 0 || at == len(n.Fallback)-1 || c == herald.ChannelPush {
		return time.Time{}
	}
	return from.Add(n.FallbackWindow)
}

func step(ctx context.Context, s Store, n herald.Notification, d herald.Delivery, reason string, critical bool, now time.Time) (*herald.FallbackStep, error) {
	if len(n.Fallback) == 0 || d.UserID == "" {
		return nil, nil
	}
	at := slices.Index(n.Fallback, d.Channel)
	if at < 0 || at == len(n.Fallback)-1 {
		return nil, nil
	}
	u, err := s.GetUser(ctx, n.AppID, d.UserID)
	if herald.IsNotFound(err) {
		return nil, nil // erased since: nobody to reach
	}
	if err != nil {
		return nil, fmt.Errorf("fallback: user %q: %w", d.UserID, err)
	}
	prefs, err := s.GetPreferences(ctx, n.AppID, d.UserID)
	if err != nil && !herald.IsNotFound(err) {
		return nil, fmt.Errorf("fallback: preferences of user %q: %w", d.UserID, err)
	}
	rest := n.Fallback[at+1:]
	var devices []herald.Device
	if slices.Contains(rest, herald.ChannelPush) {
		if devices, err = s.ListDevices(ctx, n.AppID, d.UserID); err != nil {
			return nil, fmt.Errorf("fallback: devices of user %q: %w", d.UserID, err)
		}
	}
	allows := func(c herald.Channel) bool { return critical || prefs.Allows(c, n.Category) }
	planned := Walk(u, devices, allows, rest, d.Channel, reason)
	nid, err := uuid.Parse(n.ID)
	if err != nil {
		return nil, fmt.Errorf("fallback: notification id %q: %w", n.ID, err)
	}
	step := &herald.FallbackStep{UserID: d.UserID, Channel: d.Channel}
	for _, p := range planned {
		x := p.Delivery
		x.ID = deliveryid.New(nid, deliveryid.Key(x))
		x.AppID, x.NotificationID, x.Priority = n.AppID, n.ID, n.Priority
		x.CreatedAt, x.UpdatedAt, x.NextAttemptAt = now, now, now
		if x.Status == "" {
			x.Status = herald.StatusAccepted
			x.FallbackDue = WindowDue(n, x.Channel, now)
		}
		step.Deliveries = append(step.Deliveries, x)
		step.Events = append(step.Events, herald.Event{AppID: n.AppID, NotificationID: n.ID, DeliveryID: x.ID,
			Channel: x.Channel, Status: x.Status, Reason: x.Reason, Detail: p.Detail, At: now})
	}
	return step, nil
}
