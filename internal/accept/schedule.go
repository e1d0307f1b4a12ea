package accept

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldhq/herald"
)

// maxSchedule is how far ahead send_at may be.
const maxSchedule = 366 * 24 * time.Hour

// checkSchedule validates send_at and send_at_local.
func checkSchedule(v *herald.Validation, req *herald.SendRequest, now time.Time) {
	if !req.SendAt.IsZero() && req.SendAtLocal != "" {
		v.Add("send_at_local", "give send_at or send_at_local, not both")
	}
	if !req.SendAt.IsZero() && req.SendAt.Sub(now) > maxSchedule {
		v.Add("send_at", "at most 366 days ahead")
	}
	if req.SendAtLocal != "" {
		if _, ok := herald.ClockMinutes(req.SendAtLocal); !ok {
			v.Add("send_at_local", `must be a 24-hour time "HH:MM", like "09:00"`)
		}
	}
}

// schedule holds the deliveries that are to wait for send_at or
// send_at_local: they are written scheduled, with that due time, and the
// reconciler queues them when it comes. A time already past sends at once.
// users are the users resolved for ds, whose timezones need no new read.
func (s *Service) schedule(ctx context.Context, appID string, req herald.SendRequest, now time.Time, ds []herald.Delivery,
	users map[string]herald.UserContacts) error {
	if req.SendAt.IsZero() && req.SendAtLocal == "" {
		return nil
	}
	minutes, _ := herald.ClockMinutes(req.SendAtLocal)
	zones := map[string]*time.Location{}
	for i := range ds {
		d := &ds[i]
		if d.Status != herald.StatusAccepted {
			continue
		}
		at := req.SendAt.UTC()
		if req.SendAtLocal != "" {
			loc, err := s.userZone(ctx, appID, d.UserID, users, zones)
			if err != nil {
				return err
			}
			at = herald.NextClock(now, minutes, loc)
		}
		if at.After(now) {
			d.Status, d.Reason, d.NextAttemptAt = herald.StatusScheduled, herald.ReasonSendAt, at
		}
	}
	return nil
}

// userZone is the user's timezone, UTC for none (a direct address, a user
// without one, a zone this host does not know); the user is read unless
// in users, and zones caches the result.
func (s *Service) userZone(ctx context.Context, appID, userID string, users map[string]herald.UserContacts,
	zones map[string]*time.Location) (*time.Location, error) {
	if userID == "" {
		return time.UTC, nil
	}
	if loc, ok := zones[userID]; ok {
		return loc, nil
	}
	loc := time.UTC
	u := users[userID].User
	if u.ID == "" {
		var err error
		if u, err = s.store.GetUser(ctx, appID, userID); err != nil {
			return nil, fmt.Errorf("accept: timezone of user %q: %w", userID, err)
		}
	}
	if u.Timezone != "" {
		if l, err := time.LoadLocation(u.Timezone); err == nil {
			loc = l
		}
	}
	zones[userID] = loc
	return loc, nil
}

// scheduledDetail says on a scheduled delivery's first event when it is due.
func scheduledDetail(d herald.Delivery) string {
	if d.Status != herald.StatusScheduled {
		return ""
	}
	return "due " + d.NextAttemptAt.UTC().Format(time.RFC3339)
}
