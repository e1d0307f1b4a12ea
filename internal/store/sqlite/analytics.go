package sqlite

import (
	"context"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// CountDeliveries implements herald.AnalyticsStore. The id range narrows
// the scan to the primary key's range of the period (see
// storeutil.IDLowerBound); created_at then decides exactly.
func (s *Store) CountDeliveries(ctx context.Context, appID string, f herald.AnalyticsFilter) (herald.Analytics, error) {
	where := ` WHERE d.id >= ? AND d.id < ? AND d.app_id = ? AND d.created_at >= ? AND d.created_at < ?`
	args := []any{storeutil.IDLowerBound(f.From.Add(-storeutil.IDSlack)), storeutil.IDLowerBound(f.To.Add(storeutil.IDSlack)), appID, us(f.From), us(f.To)}
	join := ""
	if f.Channel != "" {
		where += ` AND d.channel = ?`
		args = append(args, string(f.Channel))
	}
	if f.Category != "" {
		join = ` JOIN notifications n ON n.app_id = d.app_id AND n.id = d.notification_id`
		where += ` AND n.category = ?`
		args = append(args, f.Category)
	}
	out := herald.Analytics{ByStatus: map[herald.Status]int64{}}
	rows, err := s.r.QueryContext(ctx, `SELECT d.status, count(*) FROM deliveries d`+join+where+` GROUP BY d.status`, args...)
	if err != nil {
		return herald.Analytics{}, wrap(err, "count deliveries of app %q", appID)
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return herald.Analytics{}, wrap(err, "count deliveries of app %q", appID)
		}
		out.ByStatus[herald.Status(status)] = n
		out.Total += n
	}
	if err := rows.Err(); err != nil {
		return herald.Analytics{}, wrap(err, "count deliveries of app %q", appID)
	}
	funnel := `SELECT stage, count(*) FROM (
		SELECT max(` + storeutil.FunnelStage + `) AS stage FROM deliveries d` + join + `
		JOIN events e ON e.app_id = d.app_id AND e.notification_id = d.notification_id AND e.delivery_id = d.id` +
		where + ` AND e.status IN ('sent', 'delivered', 'opened', 'clicked') GROUP BY d.id) GROUP BY stage`
	frows, err := s.r.QueryContext(ctx, funnel, args...)
	if err != nil {
		return herald.Analytics{}, wrap(err, "funnel of app %q", appID)
	}
	defer frows.Close()
	for frows.Next() {
		var stage int
		var n int64
		if err := frows.Scan(&stage, &n); err != nil {
			return herald.Analytics{}, wrap(err, "funnel of app %q", appID)
		}
		storeutil.AddStage(&out.Funnel, stage, n)
	}
	return out, wrap(frows.Err(), "funnel of app %q", appID)
}

// CountActivity implements herald.AnalyticsStore. The events' key starts
// with the app and the notification id, whose text order is its
// acceptance time, so AcceptedSince bounds the scan to a key range; the
// event time then decides exactly.
func (s *Store) CountActivity(ctx context.Context, appID string, f herald.ActivityFilter) ([]herald.ActivityCount, error) {
	if f.Interval <= 0 || !f.From.Before(f.To) {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT (e.at - ?) / ?, e.status, e.reason, e.channel, e.provider, count(*)
		FROM events e
		WHERE e.app_id = ? AND e.notification_id >= ? AND e.notification_id < ? AND e.at >= ? AND e.at < ?
			AND (e.status IN ('accepted', 'sent', 'failed', 'dead', 'suppressed') OR (e.status = 'queued' AND e.provider <> ''))
		GROUP BY 1, 2, 3, 4, 5`,
		us(f.From), f.Interval.Microseconds(), appID,
		storeutil.IDLowerBound(f.AcceptedSince.Add(-storeutil.IDSlack)), storeutil.IDLowerBound(f.To.Add(storeutil.IDSlack)),
		us(f.From), us(f.To))
	if err != nil {
		return nil, wrap(err, "count activity of app %q", appID)
	}
	defer rows.Close()
	var out []herald.ActivityCount
	for rows.Next() {
		var c herald.ActivityCount
		var status, channel string
		if err := rows.Scan(&c.Interval, &status, &c.Reason, &channel, &c.Provider, &c.N); err != nil {
			return nil, wrap(err, "count activity of app %q", appID)
		}
		c.Status, c.Channel = herald.Status(status), herald.Channel(channel)
		out = append(out, c)
	}
	return out, wrap(rows.Err(), "count activity of app %q", appID)
}
