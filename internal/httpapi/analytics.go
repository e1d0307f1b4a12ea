package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/heraldhq/herald"
)

// Bounds of GET /v1/analytics' period: a day when none is given, and at
// most a year, so that one request cannot make the store count for ever.
const (
	defaultAnalyticsPeriod = 24 * time.Hour
	maxAnalyticsPeriod     = 366 * 24 * time.Hour
)

type analyticsResponse struct {
	From     time.Time        `json:"from"`
	To       time.Time        `json:"to"`
	Channel  string           `json:"channel,omitempty"`
	Category string           `json:"category,omitempty"`
	Total    int64            `json:"total"`
	ByStatus map[string]int64 `json:"by_status"`
	Funnel   funnelResponse   `json:"funnel"`
}

// funnelResponse counts the deliveries that reached each step; rates are
// each step over sent (0 when nothing was sent).
type funnelResponse struct {
	Sent          int64   `json:"sent"`
	Delivered     int64   `json:"delivered"`
	Opened        int64   `json:"opened"`
	Clicked       int64   `json:"clicked"`
	DeliveredRate float64 `json:"delivered_rate"`
	OpenedRate    float64 `json:"opened_rate"`
	ClickedRate   float64 `json:"clicked_rate"`
}

// analyticsFilter reads the query; errors name the parameter.
func analyticsFilter(q url.Values, now time.Time) (herald.AnalyticsFilter, error) {
	var v herald.Validation
	f := herald.AnalyticsFilter{To: now, Channel: herald.Channel(q.Get("channel")), Category: q.Get("category")}
	parse := func(name string, into *time.Time) {
		if raw := q.Get(name); raw != "" {
			t, err := time.Parse(time.RFC3339, raw)
			if err != nil {
				v.Add(name, "must be an RFC 3339 time like 2026-01-02T15:04:05Z")
				return
			}
			*into = t.UTC()
		}
	}
	parse("to", &f.To)
	f.From = f.To.Add(-defaultAnalyticsPeriod)
	parse("from", &f.From)
	if v.Err() == nil {
		switch {
		case !f.From.Before(f.To):
			v.Add("from", "must be before to")
		case f.To.Sub(f.From) > maxAnalyticsPeriod:
			v.Add("from", "the period from from to to is at most 366 days")
		}
	}
	if f.Channel != "" && !f.Channel.Valid() {
		v.Add("channel", "must be push, email or sms")
	}
	if len(f.Category) > 64 {
		v.Add("category", "at most 64 characters")
	}
	return f, v.Err()
}

// getAnalytics answers the app's delivery counts for a period: by status
// as they stand now, and the funnel sent → delivered → opened → clicked.
func (s *server) getAnalytics(w http.ResponseWriter, r *http.Request, caller herald.APIKey) error {
	f, err := analyticsFilter(r.URL.Query(), s.now().UTC())
	if err != nil {
		return err
	}
	a, err := s.store.CountDeliveries(r.Context(), caller.AppID, f)
	if err != nil {
		return fmt.Errorf("httpapi: analytics: %w", err)
	}
	out := analyticsResponse{From: f.From, To: f.To, Channel: string(f.Channel), Category: f.Category, Total: a.Total,
		ByStatus: make(map[string]int64, len(a.ByStatus)),
		Funnel:   funnelResponse{Sent: a.Funnel.Sent, Delivered: a.Funnel.Delivered, Opened: a.Funnel.Opened, Clicked: a.Funnel.Clicked}}
	for st, n := range a.ByStatus {
		out.ByStatus[string(st)] = n
	}
	if sent := float64(a.Funnel.Sent); sent > 0 {
		out.Funnel.DeliveredRate = float64(a.Funnel.Delivered) / sent
		out.Funnel.OpenedRate = float64(a.Funnel.Opened) / sent
		out.Funnel.ClickedRate = float64(a.Funnel.Clicked) / sent
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}
