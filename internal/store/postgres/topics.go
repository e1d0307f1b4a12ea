package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
	"github.com/jackc/pgx/v5"
)

// UpdateSubscribers creates the topic if new, then adds and removes
// subscribers in one transaction. Ids in add that are not users of the
// app are returned as missing, and then nothing is written.
func (s *Store) UpdateSubscribers(ctx context.Context, appID, topic string, add, remove []string, at time.Time) ([]string, error) {
	var missing []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		missing = nil
		if len(add) > 0 {
			rows, err := tx.Query(ctx, `SELECT a.id FROM unnest($2::text[]) WITH ORDINALITY AS a (id, o)
				WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.app_id = $1 AND u.id = a.id) ORDER BY a.o`, appID, add)
			if err != nil {
				return err
			}
			if missing, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
			if len(missing) > 0 {
				return nil
			}
		}
		at := storeutil.Time(at)
		if _, err := tx.Exec(ctx, `INSERT INTO topics (app_id, name, created_at) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, appID, topic, at); err != nil {
			return err
		}
		if len(add) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO topic_subscribers (app_id, topic, user_id, created_at)
				SELECT $1, $2, id, $4 FROM unnest($3::text[]) AS a (id) ON CONFLICT DO NOTHING`, appID, topic, add, at); err != nil {
				return err
			}
		}
		if len(remove) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM topic_subscribers WHERE app_id = $1 AND topic = $2 AND user_id = ANY($3::text[])`,
				appID, topic, remove); err != nil {
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

// GetTopic returns the topic with its subscriber count. CodeNotFound when absent.
func (s *Store) GetTopic(ctx context.Context, appID, name string) (herald.Topic, error) {
	t := herald.Topic{AppID: appID, Name: name}
	err := s.pool.QueryRow(ctx, `SELECT created_at,
		(SELECT count(*) FROM topic_subscribers WHERE app_id = $1 AND topic = $2)
		FROM topics WHERE app_id = $1 AND name = $2`, appID, name).Scan(&t.CreatedAt, &t.Subscribers)
	if err != nil {
		return herald.Topic{}, wrap(err, "get topic %q of app %q", name, appID)
	}
	t.CreatedAt = t.CreatedAt.UTC()
	return t, nil
}

// ListSubscribers returns up to limit subscribers after after, in byte
// order of user id (COLLATE "C", the order of SQLite and of the index).
func (s *Store) ListSubscribers(ctx context.Context, appID, topic, after string, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT user_id FROM topic_subscribers
		WHERE app_id = $1 AND topic = $2 AND user_id COLLATE "C" > $3
		ORDER BY user_id COLLATE "C" LIMIT $4`, appID, topic, after, limit)
	if err != nil {
		return nil, wrap(err, "list subscribers of topic %q of app %q", topic, appID)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, wrap(err, "list subscribers of topic %q of app %q", topic, appID)
}

const fanoutColumns = "app_id, notification_id, topic, request, cursor, recipients, status, created_at, updated_at"

func scanFanout(row pgx.Row) (herald.Fanout, error) {
	var f herald.Fanout
	var request []byte
	if err := row.Scan(&f.AppID, &f.NotificationID, &f.Topic, &request, &f.Cursor, &f.Recipients, &f.Status,
		&f.CreatedAt, &f.UpdatedAt); err != nil {
		return herald.Fanout{}, err
	}
	if err := storeutil.DecodeFanoutRequest(request, &f); err != nil {
		return herald.Fanout{}, fmt.Errorf("decode fan-out request: %w", err)
	}
	f.CreatedAt, f.UpdatedAt = f.CreatedAt.UTC(), f.UpdatedAt.UTC()
	return f, nil
}

// GetFanout returns the notification's fan-out. CodeNotFound when none.
func (s *Store) GetFanout(ctx context.Context, appID, notificationID string) (herald.Fanout, error) {
	f, err := scanFanout(s.pool.QueryRow(ctx, `SELECT `+fanoutColumns+` FROM fanouts
		WHERE app_id = $1 AND notification_id = $2`, appID, notificationID))
	return f, wrap(err, "get fan-out of notification %q of app %q", notificationID, appID)
}

// RunningFanouts returns fan-outs not completed, least recently advanced first.
func (s *Store) RunningFanouts(ctx context.Context, limit int) ([]herald.Fanout, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+fanoutColumns+` FROM fanouts
		WHERE status = 'running' ORDER BY updated_at LIMIT $1`, limit)
	if err != nil {
		return nil, wrap(err, "list running fan-outs")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (herald.Fanout, error) { return scanFanout(r) })
	return out, wrap(err, "list running fan-outs")
}

// ApplyFanoutPage writes one page of a fan-out if its cursor is still at
// p.After: the cursor's move and the page's deliveries commit together.
// The guarded UPDATE locks the fan-out row, so a second writer of the
// same page waits, then finds the cursor moved and writes nothing.
func (s *Store) ApplyFanoutPage(ctx context.Context, p *herald.FanoutPage) error {
	var inserted map[string]bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		inserted = nil
		status := herald.FanoutRunning
		if p.Done {
			status = herald.FanoutCompleted
		}
		tag, err := tx.Exec(ctx, `UPDATE fanouts SET cursor = $1, recipients = recipients + $2, status = $3, updated_at = $4
			WHERE app_id = $5 AND notification_id = $6 AND cursor = $7 AND status = 'running'`,
			p.Cursor, p.Users, status, storeutil.Time(p.At), p.AppID, p.NotificationID, p.After)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		inserted = make(map[string]bool, len(p.Deliveries))
		if len(p.Deliveries) > 0 {
			var d deliveryArrays
			for _, y := range p.Deliveries {
				d.add(y)
			}
			rows, err := tx.Query(ctx, insertDeliveries+" ON CONFLICT DO NOTHING RETURNING id", d.args()...)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			for _, id := range ids {
				inserted[id] = true
			}
		}
		var ev events
		for _, e := range storeutil.FanoutPageRows(p, inserted) {
			ev.add(e)
		}
		if len(ev.app) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, insertEvents, ev.args()...)
		return err
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
