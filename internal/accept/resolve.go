package accept

import (
	"context"
	"crypto/sha1"
	"fmt"

	"github.com/google/uuid"

	"github.com/heraldhq/herald"
)

// resolve turns the request's recipients into deliveries: one per
// (recipient, channel), one per device for push. A channel that was asked
// for but cannot be used gives a suppressed delivery with a reason, never
// silence.
//
// A topic recipient is left to the fan-out; with one, the direct
// recipients may all be unreachable (or absent) without refusing the request.
func (s *Service) resolve(ctx context.Context, n herald.Notification, req herald.SendRequest, plan *templatePlan, topic bool) ([]herald.Delivery, error) {
	asked := map[herald.Channel]bool{}
	for _, c := range req.Channels {
		asked[c] = true
	}
	// A template's channels bound the default of every reachable channel.
	wants := func(c herald.Channel) bool { return (len(asked) == 0 || asked[c]) && plan.serves(c) }

	nid := uuid.MustParse(n.ID)
	var out []herald.Delivery
	seen := map[string]bool{}
	add := func(d herald.Delivery) {
		key := string(d.Channel) + "|" + d.UserID + "|" + d.Address + "|" + d.Reason
		if seen[key] {
			return
		}
		seen[key] = true
		d.ID = deliveryID(nid, key)
		d.AppID, d.NotificationID, d.Priority = n.AppID, n.ID, n.Priority
		d.CreatedAt, d.UpdatedAt, d.NextAttemptAt = n.CreatedAt, n.CreatedAt, n.CreatedAt
		if d.Status == "" {
			d.Status = herald.StatusAccepted
		}
		out = append(out, d)
	}

	var v herald.Validation
	for i, r := range req.To {
		switch {
		case r.Email != "":
			if wants(herald.ChannelEmail) {
				add(herald.Delivery{Channel: herald.ChannelEmail, Address: r.Email})
			}
		case r.Phone != "":
			if wants(herald.ChannelSMS) {
				add(herald.Delivery{Channel: herald.ChannelSMS, Address: r.Phone})
			}
		case r.UserID != "":
			if err := s.resolveUser(ctx, n, r.UserID, asked, plan, add); err != nil {
				if herald.IsNotFound(err) {
					v.Add(fmt.Sprintf("to[%d].user_id", i), "no user %q in this app: create it with PUT /v1/users/{user_id}", r.UserID)
					continue
				}
				return nil, err
			}
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 && !topic {
		return nil, herald.Invalid("channels", "no recipient can be reached on the requested channels")
	}
	return out, nil
}

// deliveryID derives a delivery's id from its notification's id and what
// it addresses: deterministic, so that a repeated accept of the same
// notification names the same deliveries, and time-ordered like the
// notification's UUIDv7, so that the log's indexes grow at their end
// instead of at random pages. It is a UUIDv8: the notification id's first
// eight bytes (its millisecond timestamp and random bits), then eight
// bytes of a SHA-1 over the notification id and the key.
//
// The hash is uuid.NewSHA1(notification id, key)'s, computed here on a
// stack buffer with the notification id parsed once per notification.
func deliveryID(nid uuid.UUID, key string) string {
	var buf [256]byte
	h := sha1.Sum(append(append(buf[:0], nid[:]...), key...))
	var id uuid.UUID
	copy(id[:8], nid[:8])
	copy(id[8:], h[8:16])
	id[6] = id[6]&0x0f | 0x80 // version 8
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id.String()
}

func (s *Service) resolveUser(ctx context.Context, n herald.Notification, userID string, asked map[herald.Channel]bool,
	plan *templatePlan, add func(herald.Delivery)) error {
	u, err := s.store.GetUser(ctx, n.AppID, userID)
	if err != nil {
		return fmt.Errorf("accept: resolve user %q: %w", userID, err)
	}
	plan.sawUser(u)
	prefs, err := s.store.GetPreferences(ctx, n.AppID, userID)
	if err != nil {
		return fmt.Errorf("accept: preferences of user %q: %w", userID, err)
	}
	explicit := len(asked) > 0
	for _, c := range herald.AllChannels() {
		if explicit && !asked[c] || !plan.serves(c) {
			continue
		}
		// A contact or device a provider reported invalid stays visible as a
		// suppressed delivery, so the skip shows in the timeline.
		invalid := func(d herald.Delivery) herald.Delivery {
			d.Status, d.Reason = herald.StatusSuppressed, herald.ReasonInvalidRecipient
			return d
		}
		var targets []herald.Delivery
		switch c {
		case herald.ChannelEmail:
			if u.Email != "" && u.EmailStatus == "" {
				targets = append(targets, herald.Delivery{Address: u.Email})
			} else if u.Email != "" {
				targets = append(targets, invalid(herald.Delivery{Address: u.Email}))
			}
		case herald.ChannelSMS:
			if u.Phone != "" && u.PhoneStatus == "" {
				targets = append(targets, herald.Delivery{Address: u.Phone})
			} else if u.Phone != "" {
				targets = append(targets, invalid(herald.Delivery{Address: u.Phone}))
			}
		case herald.ChannelPush:
			devices, err := s.store.ListDevices(ctx, n.AppID, userID)
			if err != nil {
				return fmt.Errorf("accept: devices of user %q: %w", userID, err)
			}
			for _, d := range devices {
				t := herald.Delivery{Address: d.Token, DeviceID: d.ID, Platform: d.Platform}
				if d.Status == herald.DeviceInvalid {
					t = invalid(t)
				}
				targets = append(targets, t)
			}
		}
		if len(targets) == 0 {
			if explicit {
				add(herald.Delivery{UserID: userID, Channel: c, Status: herald.StatusSuppressed, Reason: herald.ReasonNoAddress})
			}
			continue
		}
		allowed := prefs.Allows(c, n.Category) || s.isCritical(ctx, n)
		for _, t := range targets {
			t.UserID, t.Channel = userID, c
			if !allowed && t.Status == "" {
				t.Status, t.Reason = herald.StatusSuppressed, herald.ReasonOptedOut
			}
			add(t)
		}
	}
	return nil
}

// isCritical reports whether the app marks n's category critical, so that
// it goes to recipients who opted out.
func (s *Service) isCritical(ctx context.Context, n herald.Notification) bool {
	return s.critical != nil && s.critical(ctx, n.AppID, n.Category)
}
