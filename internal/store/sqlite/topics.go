package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// subscriberChunk bounds the ids of one statement of UpdateSubscribers.
const subscriberChunk = 500

// UpdateSubscribers creates the topic if new, then adds and removes
// subscribers in one transaction. Ids in add that are not users of the
// app are returned as missing, and then nothing is written.
func (s *Store) UpdateSubscribers(ctx context.Context, appID, topic string, add, remove []string, at time.Time) ([]string, error) {
	var missing []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for chunk := range slicesChunk(add, subscriberChunk) {
			known, err := knownUsers(ctx, tx, appID, chunk)
			if err != nil {
				return err
			}
			for _, id := range chunk {
				if !known[id] {
					missing = append(missing, id)
				}
			}
		}
		if len(missing) > 0 {
			return nil
		}
		now := us(storeutil.Time(at))
		if _, err := tx.ExecContext(ctx, `INSERT INTO topics (app_id, name, created_at) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, appID, topic, now); err != nil {
			return err
		}
		for chunk := range slicesChunk(add, subscriberChunk) {
			args := make([]any, 0, 4*len(chunk))
			for _, id := range chunk {
				args = append(args, appID, topic, id, now)
			}
			q := `INSERT INTO topic_subscribers (app_id, topic, user_id, created_at) VALUES (?, ?, ?, ?)` +
				strings.Repeat(", (?, ?, ?, ?)", len(chunk)-1) + ` ON CONFLICT DO NOTHING`
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		for chunk := range slicesChunk(remove, subscriberChunk) {
			args := []any{appID, topic}
			for _, id := range chunk {
				args = append(args, id)
			}
			q := `DELETE FROM topic_subscribers WHERE app_id = ? AND topic = ? AND user_id IN (?` +
				strings.Repeat(", ?", len(chunk)-1) + `)`
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err, "update subscribers of topic %q of app %q", topic, appID)
	}
	return missing, nil
}

// slicesChunk is slices.Chunk that also accepts an empty slice.
func slicesChunk(ids []string, n int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(ids) > 0 {
			k := min(n, len(ids))
			if !yield(ids[:k]) {
				return
			}
			ids = ids[k:]
		}
	}
}

func knownUsers(ctx context.Context, tx *sql.Tx, appID string, ids []string) (map[string]bool, error) {
	args := []any{appID}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM users WHERE app_id = ? AND id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	known := make(map[string]bool, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		known[id] = true
	}
	return known, rows.Err()
}

// GetTopic returns the topic with its subscriber count. CodeNotFound when absent.
func (s *Store) GetTopic(ctx context.Context, appID, name string) (herald.Topic, error) {
	t := herald.Topic{AppID: appID, Name: name}
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT created_at,
		(SELECT count(*) FROM topic_subscribers WHERE app_id = ? AND topic = ?)
		FROM topics WHERE app_id = ? AND name = ?`, appID, name, appID, name).Scan(&created, &t.Subscribers)
	if err != nil {
		return herald.Topic{}, wrap(err, "get topic %q of app %q", name, appID)
	}
	t.CreatedAt = fromUS(created)
	return t, nil
}

// ListSubscribers returns up to limit subscribers after after, by user id.
func (s *Store) ListSubscribers(ctx context.Context, appID, topic, after string, limit int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT user_id FROM topic_subscribers
		WHERE app_id = ? AND topic = ? AND user_id > ? ORDER BY user_id LIMIT ?`, appID, topic, after, limit)
	if err != nil {
		return nil, wrap(err, "list subscribers of topic %q of app %q", topic, appID)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap(err, "list subscribers of topic %q of app %q", topic, appID)
		}
		out = append(out, id)
	}
	return out, wrap(rows.Err(), "list subscribers of topic %q of app %q", topic, appID)
}

const fanoutColumns = "app_id, notification_id, topic, request, cursor, recipients, status, created_at, updated_at"

func fanoutRow(n herald.Notification, f herald.Fanout) []any {
	created := us(storeutil.Time(n.CreatedAt))
	status := f.Status
	if status == "" {
		status = herald.FanoutRunning
	}
	return []any{n.AppID, n.ID, f.Topic, string(storeutil.EncodeFanoutRequest(f)), f.Cursor, f.Recipients, status, created, created}
}

func scanFanout(row interface{ Scan(...any) error }) (herald.Fanout, error) {
	var f herald.Fanout
	var request string
	var created, updated int64
	if err := row.Scan(&f.AppID, &f.NotificationID, &f.Topic, &request, &f.Cursor, &f.Recipients, &f.Status, &created, &updated); err != nil {
		return herald.Fanout{}, err
	}
	if err := storeutil.DecodeFanoutRequest([]byte(request), &f); err != nil {
		return herald.Fanout{}, fmt.Errorf("decode fan-out request: %w", err)
	}
	f.CreatedAt, f.UpdatedAt = fromUS(created), fromUS(updated)
	return f, nil
}

// GetFanout returns the notification's fan-out. CodeNotFound when none.
func (s *Store) GetFanout(ctx context.Context, appID, notificationID string) (herald.Fanout, error) {
	f, err := scanFanout(s.r.QueryRowContext(ctx, `SELECT `+fanoutColumns+` FROM fanouts
		WHERE app_id = ? AND notification_id = ?`, appID, notificationID))
	return f, wrap(err, "get fan-out of notification %q of app %q", notificationID, appID)
}

// RunningFanouts returns fan-outs not completed, least recently advanced first.
func (s *Store) RunningFanouts(ctx context.Context, limit int) ([]herald.Fanout, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+fanoutColumns+` FROM fanouts
		WHERE status = 'running' ORDER BY updated_at LIMIT ?`, limit)
	if err != nil {
		return nil, wrap(err, "list running fan-outs")
	}
	defer rows.Close()
	var out []herald.Fanout
	for rows.Next() {
		f, err := scanFanout(rows)
		if err != nil {
			return nil, wrap(err, "list running fan-outs")
		}
		out = append(out, f)
	}
	return out, wrap(rows.Err(), "list running fan-outs")
}

// ApplyFanoutPage writes one page of a fan-out if its cursor is still at
// p.After: the cursor's move and the page's deliveries commit together.
func (s *Store) ApplyFanoutPage(ctx context.Context, p *herald.FanoutPage) error {
	var inserted map[string]bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		status := herald.FanoutRunning
		if p.Done {
			status = herald.FanoutCompleted
		}
		res, err := tx.ExecContext(ctx, `UPDATE fanouts SET cursor = ?, recipients = recipients + ?, status = ?, updated_at = ?
			WHERE app_id = ? AND notification_id = ? AND cursor = ? AND status = 'running'`,
			p.Cursor, p.Users, status, us(storeutil.Time(p.At)), p.AppID, p.NotificationID, p.After)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		inserted = make(map[string]bool, len(p.Deliveries))
		// The writer pool's one connection makes this the only transaction
		// using the scratch space.
		w := &s.scratch
		w.tx = tx
		defer w.reset()
		cols := insertTables[tableDeliveries].cols()
		vals := w.rows[tableDeliveries][:0]
		for _, d := range p.Deliveries {
			vals = appendDelivery(vals, d)
		}
		w.rows[tableDeliveries] = vals
		for len(vals) > 0 {
			n := min(len(vals)/cols, rowsPerInsert)
			st, err := w.prepare(ctx, insertQuery("deliveries", deliveryColumns, cols, n)+" ON CONFLICT DO NOTHING RETURNING id")
			if err != nil {
				return err
			}
			if err := collectIDs(st.QueryContext(ctx, vals[:n*cols]...))(inserted); err != nil {
				return err
			}
			vals = vals[n*cols:]
		}
		for _, e := range storeutil.FanoutPageRows(p, inserted) {
			w.event(s.nextSeq(), e)
		}
		return w.insert(ctx, tableEvents)
	})
	if err != nil {
		return wrap(err, "apply fan-out page of notification %q after %q", p.NotificationID, p.After)
	}
	p.Applied = inserted != nil
	if !p.Applied {
		p.Inserted = nil
	}
	return nil
}

func collectIDs(rows *sql.Rows, err error) func(map[string]bool) error {
	return func(into map[string]bool) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			into[id] = true
		}
		return rows.Err()
	}
}
