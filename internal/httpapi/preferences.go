package httpapi

import (
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/validate"
)

// validClock accepts a 24-hour "HH:MM" time of day, 00:00 to 23:59.
func validClock(s string) bool {
	if len(s) != 5 || s[2] != ':' {
		return false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	return h < 24 && m < 60
}

type preferencesBody struct {
	Channels     map[string]bool            `json:"channels"`
	Categories   map[string]map[string]bool `json:"categories"`
	QuietHours   *quietHoursBody            `json:"quiet_hours"`
	Unsubscribed bool                       `json:"unsubscribed"`
}

type quietHoursBody struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// preferencesResponse always has both maps, so clients need no nil checks;
// quiet_hours is absent when none is set.
type preferencesResponse struct {
	Channels     map[string]bool            `json:"channels"`
	Categories   map[string]map[string]bool `json:"categories"`
	QuietHours   *quietHoursBody            `json:"quiet_hours,omitempty"`
	Unsubscribed bool                       `json:"unsubscribed"`
}

func toPreferencesResponse(p herald.Preferences) preferencesResponse {
	out := preferencesResponse{Channels: map[string]bool{}, Categories: map[string]map[string]bool{}, Unsubscribed: p.Unsubscribed}
	for c, on := range p.Channels {
		out.Channels[string(c)] = on
	}
	for cat, chans := range p.Categories {
		m := map[string]bool{}
		for c, on := range chans {
			m[string(c)] = on
		}
		out.Categories[cat] = m
	}
	if p.QuietHours != nil {
		out.QuietHours = &quietHoursBody{Start: p.QuietHours.Start, End: p.QuietHours.End}
	}
	return out
}

// preferencesFromBody validates the body and converts it to the domain.
func preferencesFromBody(b preferencesBody) (herald.Preferences, error) {
	var v herald.Validation
	p := herald.Preferences{Unsubscribed: b.Unsubscribed}
	if len(b.Channels) > 0 {
		p.Channels = map[herald.Channel]bool{}
	}
	for _, c := range slices.Sorted(maps.Keys(b.Channels)) {
		on := b.Channels[c]
		if !herald.Channel(c).Valid() {
			v.Add("channels."+c, "is not a channel; use push, email or sms")
			continue
		}
		p.Channels[herald.Channel(c)] = on
	}
	if len(b.Categories) > 0 {
		p.Categories = map[string]map[herald.Channel]bool{}
	}
	for _, cat := range slices.Sorted(maps.Keys(b.Categories)) {
		chans := b.Categories[cat]
		if err := validate.Category(cat); err != nil {
			v.Add("categories."+cat, "category name: %v", err)
			continue
		}
		m := map[herald.Channel]bool{}
		for _, c := range slices.Sorted(maps.Keys(chans)) {
			on := chans[c]
			if !herald.Channel(c).Valid() {
				v.Add("categories."+cat+"."+c, "is not a channel; use push, email or sms")
				continue
			}
			m[herald.Channel(c)] = on
		}
		p.Categories[cat] = m
	}
	if q := b.QuietHours; q != nil {
		if !validClock(q.Start) {
			v.Add("quiet_hours.start", "must be a time of day as HH:MM (00:00 to 23:59)")
		}
		if !validClock(q.End) {
			v.Add("quiet_hours.end", "must be a time of day as HH:MM (00:00 to 23:59)")
		}
		p.QuietHours = &herald.QuietHours{Start: q.Start, End: q.End}
	}
	return p, v.Err()
}

func (s *server) getPreferences(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	p, err := s.store.GetPreferences(r.Context(), caller.AppID, userID)
	if err != nil {
		return fmt.Errorf("httpapi: get preferences of user %q: %w", userID, err)
	}
	s.writeJSON(w, r, http.StatusOK, toPreferencesResponse(p))
	return nil
}

func (s *server) putPreferences(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	userID, err := pathUserID(r)
	if err != nil {
		return err
	}
	var body preferencesBody
	if err := s.decode(w, r, &body); err != nil {
		return err
	}
	p, err := preferencesFromBody(body)
	if err != nil {
		return err
	}
	if err := s.store.PutPreferences(r.Context(), caller.AppID, userID, p); err != nil {
		return fmt.Errorf("httpapi: put preferences of user %q: %w", userID, err)
	}
	s.writeJSON(w, r, http.StatusOK, toPreferencesResponse(p))
	return nil
}
