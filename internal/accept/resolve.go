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
// A topic recipient is left to the fan-out; with one, the direct
// recipients may all be unreachable (or absent) without refusing the request.
func (s *Service) resolve(ctx context.Context, n herald.Notification, req herald.SendRequest, plan *templatePlan, topic bool) (
	out []herald.Delivery, details map[string]string, err error) {
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
			resolveOne := s.resolveUser
			if len(req.Fallback) > 0 {
				resolveOne = func(ctx context.Context, n herald.Notification, userID string, _ map[herald.Channel]bool,
					plan *templatePlan, add func(herald.Delivery)) error {
					return s.resolveFallback(ctx, n, userID, plan, func(d herald.Delivery, detail string) {
						add(d)
						if detail != "" {
							details[deliveryid.New(nid, deliveryid.Key(d))] = detail
						}
					})
				}
			}
			if err := resolveOne(ctx, n, r.UserID, asked, plan, add); err != nil {
				if herald.IsNotFound(err) {
					v.Add(fmt.Sprintf("to[%d].user_id", i), "no user %q in this app: create it with PUT /v1/users/{user_id}", r.UserID)
					continue
				}
				return nil, nil, err
			}
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
		allowed := prefs.Allows(c, n.Category) || s.isCritical(ctx, n)
		targets, err := fallback.Targets(ctx, s.store, u, allowed, c)
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		if len(targets) == 0 {
			if explicit {
				add(herald.Delivery{UserID: userID, Channel: c, Status: herald.StatusSuppressed, Reason: herald.ReasonNoAddress})
			}
			continue
		}
		for _, t := range targets {
			add(t)
		}
	}
	return nil
}

// resolveFallback resolves a user of a fallback notification: the plan's
// channels in order up to the first that can reach the user.
func (s *Service) resolveFallback(ctx context.Context, n herald.Notification, userID string, plan *templatePlan,
	add func(d herald.Delivery, detail string)) error {
	u, err := s.store.GetUser(ctx, n.AppID, userID)
	if err != nil {
		return fmt.Errorf("accept: resolve user %q: %w", userID, err)
	}
	plan.sawUser(u)
	prefs, err := s.store.GetPreferences(ctx, n.AppID, userID)
	if err != nil {
		return fmt.Errorf("accept: preferences of user %q: %w", userID, err)
	}
	critical := s.isCritical(ctx, n)
	allows := func(c herald.Channel) bool { return critical || prefs.Allows(c, n.Category) }
	planned, err := fallback.Walk(ctx, s.store, u, allows, slices.DeleteFunc(slices.Clone(n.Fallback),
		func(c herald.Channel) bool { return !plan.serves(c) }), "", "")
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	for _, p := range planned {
		add(p.Delivery, p.Detail)
	}
	return nil
}

// isCritical reports whether the app marks n's category critical, so that
// it goes to recipients who opted out.
func (s *Service) isCritical(ctx context.Context, n herald.Notification) bool {
	return s.critical != nil && s.critical(ctx, n.AppID, n.Category)
}
