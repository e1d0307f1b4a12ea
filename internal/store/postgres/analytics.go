package postgres

import (
	"context"
	"fmt"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// CountDeliveries implements herald.AnalyticsStore. The id range narrows
// the scan to the primary key's range of the period (see
// storeutil.IDLowerBound); created_at then decides exactly.
// Every id and bound has the same shape (lowercase hex, dashes at the same
// places), so any collation orders them as bytes do, and the comparison
// keeps the column's collation so that the primary key's index serves it.
func (s *Store) CountDeliveries(ctx context.Context, appID string, f herald.AnalyticsFilter) (herald.Analytics, error) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where := ` WHERE d.id >= ` + arg(storeutil.IDLowerBound(f.From.Add(-storeutil.IDSlack))) +
		` AND d.id < ` + arg(storeutil.IDLowerBound(f.To.Add(storeutil.IDSlack))) +
		` AND d.app_id = ` + arg(appID) + ` AND d.created_at >= ` + arg(f.From) + ` AND d.created_at < ` + arg(f.To)
	join := ""
	if f.Channel != "" {
		where += ` AND d.channel = ` + arg(string(f.Channel))
	}
	if f.Category != "" {
		join = ` JOIN notifications n ON n.app_id = d.app_id AND n.id = d.notification_id`
		where += ` AND n.category = ` + arg(f.Category)
	}
	out := herald.Analytics{ByStatus: map[herald.Status]int64{}}
	rows, err := s.pool.Query(ctx, `SELECT d.status, count(*) FROM deliveries d`+join+where+` GROUP BY d.status`, args...)
	if err != nil {
		return herald.Analytics{}, wrap(err, "count deliveries of app %q", appID)
	}
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			rows.Close()
			return herald.Analytics{}, wrap(err, "count deliveries of app %q", appID)
		}
		out.ByStatus[herald.Status(status)] = n
		out.Total += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return herald.Analytics{}, wrap(err, "count deliveries of app %q", appID)
	}
	funnel := `SELECT stage, count(*) FROM (
		SELECT max(` + storeutil.FunnelStage + `) AS stage FROM deliveries d` + join + `
		JOIN events e ON e.app_id = d.app_id AND e.notification_id = d.notification_id AND e.delivery_id = d.id` +
		where + ` AND e.status IN ('sent', 'delivered', 'opened', 'clicked') GROUP BY d.id) AS reached GROUP BY stage`
	frows, err := s.pool.Query(ctx, funnel, args...)
	if err != nil {
		return herald.Analytics{}, wrap(err, "funnel of app %q", appID)
	}
	defer frows.Close()
	for frows.Next() {
		var stage int32
		var n int64
		if err := frows.Scan(&stage, &n); err != nil {
			return herald.Analytics{}, wrap(err, "funnel of app %q", appID)
		}
		storeutil.AddStage(&out.Funnel, int(stage), n)
	}
	return out, wrap(frows.Err(), "funnel of app %q", appID)
}

// CountActivity implements herald.AnalyticsStore. The events index
// (app_id, notification_id, seq) serves the notification id range that
// AcceptedSince gives (ids sort by acceptance time); the event time then
// decides exactly.
func (s *Store) CountActivity(ctx context.Context, appID string, f herald.ActivityFilter) ([]herald.ActivityCount, error) {
	if f.Interval <= 0 || !f.From.Before(f.To) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT floor(extract(epoch FROM e.at - $1::timestamptz) * 1000000 / $2)::bigint,
			e.status, e.reason, e.channel, e.provider, count(*)
		FROM events e
		WHERE e.app_id = $3 AND e.notification_id >= $4 AND e.notification_id < $5 AND e.at >= $1 AND e.at < $6
			AND (e.status IN ('accepted', 'sent', 'failed', 'dead', 'suppressed') OR (e.status = 'queued' AND e.provider <> ''))
		GROUP BY 1, 2, 3, 4, 5`,
		f.From, f.Interval.Microseconds(), appID,
		storeutil.IDLowerBound(f.AcceptedSince.Add(-storeutil.IDSlack)), storeutil.IDLowerBound(f.To.Add(storeutil.IDSlack)), f.To)
	if err != nil {
		return nil, wrap(err, "count activity of app %q", appID)
	}
	defer rows.Close()
	var out []herald.ActivityCount
	for rows.Next() {
		var c herald.ActivityCount
		var bucket int64
		var status, channel string
		if err := rows.Scan(&bucket, &status, &c.Reason, &channel, &c.Provider, &c.N); err != nil {
			return nil, wrap(err, "count activity of app %q", appID)
		}
		c.Interval, c.Status, c.Channel = int(bucket), herald.Status(status), herald.Channel(channel)
		out = append(out, c)
	}
	return out, wrap(rows.Err(), "count activity of app %q", appID)
}
