package accept

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/deliveryid"
	"github.com/heraldhq/herald/internal/fallback"
)

// resolve turns the request's recipients into deliveries: one per
// (recipient, channel), one per device for push. A channel that was asked
// for but cannot be used gives a suppressed delivery with a reason, never
// silence. With a fallback plan, a user gets the deliveries of the first
// channel that can reach them, after suppressed ones for the channels
// before it that cannot; details holds the timeline notes of those.
//
// users holds the request's users with their contacts (requestUsers);
// a user_id missing from it is refused as no user of the app.
//
// A topic recipient is left to the fan-out; with one, the direct
// recipients may all be unreachable (or absent) without refusing the request.
func (s *Service) resolve(ctx context.Context, n herald.Notification, req herald.SendRequest,
	users map[string]herald.UserContacts, plan *templatePlan, topic bool) (out []herald.Delivery, details map[string]string, err error) {
	asked := map[herald.Channel]bool{}
	for _, c := range req.Channels {
		asked[c] = true
	}
	for _, c := range req.Fallback {
		asked[c] = true // a direct address takes the plan's channel of its kind
	}
	// A template's channels bound the default of every reachable channel.
	wants := func(c herald.Channel) bool { return (len(asked) == 0 || asked[c]) && plan.serves(c) }

	nid := uuid.MustParse(n.ID)
	details = map[string]string{}
	seen := map[string]bool{}
	add := func(d herald.Delivery) {
		key := deliveryid.Key(d)
		if seen[key] {
			return
		}
		seen[key] = true
		d.ID = deliveryid.New(nid, key)
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
			u, ok := users[r.UserID]
			if !ok {
				v.Add(fmt.Sprintf("to[%d].user_id", i), "no user %q in this app: create it with PUT /v1/users/{user_id}", r.UserID)
				continue
			}
			if len(req.Fallback) == 0 {
				s.resolveUser(ctx, n, u, asked, plan, add)
				continue
			}
			s.resolveFallback(ctx, n, u, plan, func(d herald.Delivery, detail string) {
				add(d)
				if detail != "" {
					details[deliveryid.New(nid, deliveryid.Key(d))] = detail
				}
			})
		}
	}
	if err := v.Err(); err != nil {
		return nil, nil, err
	}
	if len(out) == 0 && !topic {
		field := "channels"
		if len(req.Fallback) > 0 {
			field = "fallback"
		}
		return nil, nil, herald.Invalid(field, "no recipient can be reached on the requested channels")
	}
	return out, details, nil
}

// requestUsers reads every user the request names by user_id, with their
// preferences and devices, at once: a few queries, not three per user.
func (s *Service) requestUsers(ctx context.Context, appID string, req herald.SendRequest) (map[string]herald.UserContacts, error) {
	var ids []string
	for _, r := range req.To {
		if r.Email == "" && r.Phone == "" && r.UserID != "" {
			ids = append(ids, r.UserID)
		}
	}
	return s.userContacts(ctx, appID, ids)
}

// userContacts reads the users among ids with their preferences and
// devices; a user absent from the app is absent from the map.
func (s *Service) userContacts(ctx context.Context, appID string, ids []string) (map[string]herald.UserContacts, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	users, err := s.store.GetUserContacts(ctx, appID, ids)
	if err != nil {
		return nil, fmt.Errorf("accept: resolve %d users: %w", len(ids), err)
	}
	return users, nil
}

// resolveUser resolves user c on each channel asked for (every channel
// when none is), as resolve describes.
func (s *Service) resolveUser(ctx context.Context, n herald.Notification, c herald.UserContacts, asked map[herald.Channel]bool,
	plan *templatePlan, add func(herald.Delivery)) {
	plan.sawUser(c.User)
	explicit := len(asked) > 0
	for _, ch := range herald.AllChannels() {
		if explicit && !asked[ch] || !plan.serves(ch) {
			continue
		}
		// A contact or device a provider reported invalid stays visible as a
		// suppressed delivery, so the skip shows in the timeline.
		allowed := c.Preferences.Allows(ch, n.Category) || s.isCritical(ctx, n)
		targets := fallback.Targets(c.User, c.Devices, allowed, ch)
		if len(targets) == 0 {
			if explicit {
				add(herald.Delivery{UserID: c.User.ID, Channel: ch, Status: herald.StatusSuppressed, Reason: herald.ReasonNoAddress})
			}
			continue
		}
		for _, t := range targets {
			add(t)
		}
	}
}

// resolveFallback resolves user c of a fallback notification: the plan's
// channels in order up to the first that can reach the user.
func (s *Service) resolveFallback(ctx context.Context, n herald.Notification, c herald.UserContacts, plan *templatePlan,
	add func(d herald.Delivery, detail string)) {
	plan.sawUser(c.User)
	critical := s.isCritical(ctx, n)
	allows := func(ch herald.Channel) bool { return critical || c.Preferences.Allows(ch, n.Category) }
	planned := fallback.Walk(c.User, c.Devices, allows, slices.DeleteFunc(slices.Clone(n.Fallback),
		func(ch herald.Channel) bool { return !plan.serves(ch) }), "", "")
	for _, p := range planned {
		add(p.Delivery, p.Detail)
	}
}

// isCritical reports whether the app marks n's category critical, so that
// it goes to recipients who opted out.
func (s *Service) isCritical(ctx context.Context, n herald.Notification) bool {
	return s.critical != nil && s.critical(ctx, n.AppID, n.Category)
}
