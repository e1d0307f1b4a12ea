package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// CreateWebhook stores an endpoint. CodeConflict when the id exists.
func (s *Store) CreateWebhook(ctx context.Context, w herald.Webhook) error {
	events, err := json.Marshal(w.Events)
	if err != nil {
		return wrap(err, "create webhook %q of app %q", w.ID, w.AppID)
	}
	var disabled sql.NullInt64
	if w.DisabledAt != nil {
		disabled = sql.NullInt64{Int64: us(storeutil.Time(*w.DisabledAt)), Valid: true}
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO webhooks (app_id, id, url, events, secret, disabled_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, w.AppID, w.ID, w.URL, string(events), w.Secret, disabled, us(storeutil.Time(w.CreatedAt)))
	return wrap(err, "create webhook %q of app %q", w.ID, w.AppID)
}

// ListWebhooks returns the app's endpoints, oldest first.
func (s *Store) ListWebhooks(ctx context.Context, appID string) ([]herald.Webhook, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, url, events, secret, disabled_at, created_at FROM webhooks
		WHERE app_id = ? ORDER BY created_at, id`, appID)
	if err != nil {
		return nil, wrap(err, "list webhooks of app %q", appID)
	}
	defer rows.Close()
	var out []herald.Webhook
	for rows.Next() {
		w := herald.Webhook{AppID: appID}
		var events string
		var disabled sql.NullInt64
		var created int64
		if err := rows.Scan(&w.ID, &w.URL, &events, &w.Secret, &disabled, &created); err != nil {
			return nil, wrap(err, "list webhooks of app %q", appID)
		}
		if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
			return nil, wrap(err, "list webhooks of app %q: events of %q", appID, w.ID)
		}
		if disabled.Valid {
			t := fromUS(disabled.Int64)
			w.DisabledAt = &t
		}
		w.CreatedAt = fromUS(created)
		out = append(out, w)
	}
	return out, wrap(rows.Err(), "list webhooks of app %q", appID)
}

// DeleteWebhook removes the endpoint; its posts go with it (ON DELETE CASCADE).
func (s *Store) DeleteWebhook(ctx context.Context, appID, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM webhooks WHERE app_id = ? AND id = ?`, appID, id)
	return wrap(affected(res, err), "delete webhook %q of app %q", id, appID)
}

// DisableWebhook marks the endpoint disabled and drops its posts.
func (s *Store) DisableWebhook(ctx context.Context, appID, id string, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhooks SET disabled_at = ? WHERE app_id = ? AND id = ?`,
			us(storeutil.Time(at)), appID, id)
		if err := affected(res, err); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM webhook_posts WHERE app_id = ? AND webhook_id = ?`, appID, id)
		return err
	})
	return wrap(err, "disable webhook %q of app %q", id, appID)
}

// AddWebhookPosts stores posts, skipping ids stored already and posts
// whose endpoint is gone or disabled.
func (s *Store) AddWebhookPosts(ctx context.Context, posts []herald.WebhookPost) error {
	if len(posts) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Prepared once for the batch: the tracker stores a whole batch of events' posts at a time.
		st, err := tx.PrepareContext(ctx, `INSERT INTO webhook_posts (id, app_id, webhook_id, payload, attempts, due_at, created_at)
			SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS
				(SELECT 1 FROM webhooks WHERE app_id = ? AND id = ? AND disabled_at IS NULL)
			ON CONFLICT (id) DO NOTHING`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, p := range posts {
			if _, err := st.ExecContext(ctx, p.ID, p.AppID, p.WebhookID, p.Payload, p.Attempts, us(storeutil.Time(p.DueAt)),
				us(storeutil.Time(p.CreatedAt)), p.AppID, p.WebhookID); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap(err, "add %d webhook posts", len(posts))
}

// ClaimWebhookPosts returns due posts of any app and moves their due time to until.
func (s *Store) ClaimWebhookPosts(ctx context.Context, now, until time.Time, limit int) ([]herald.WebhookPost, error) {
	var out []herald.WebhookPost
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_posts SET due_at = ?
			WHERE id IN (SELECT id FROM webhook_posts WHERE due_at <= ? ORDER BY due_at, id LIMIT ?)
			RETURNING id, app_id, webhook_id, payload, attempts, created_at`,
			us(storeutil.Time(until)), us(storeutil.Time(now)), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p := herald.WebhookPost{DueAt: storeutil.Time(until)}
			var created int64
			if err := rows.Scan(&p.ID, &p.AppID, &p.WebhookID, &p.Payload, &p.Attempts, &created); err != nil {
				return err
			}
			p.CreatedAt = fromUS(created)
			out = append(out, p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap(err, "claim webhook posts")
	}
	return out, nil
}

// RetryWebhookPost records a failed attempt and the next due time.
func (s *Store) RetryWebhookPost(ctx context.Context, appID, id string, attempts int, due time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE webhook_posts SET attempts = ?, due_at = ? WHERE app_id = ? AND id = ?`,
		attempts, us(storeutil.Time(due)), appID, id)
	return wrap(affected(res, err), "retry webhook post %q of app %q", id, appID)
}

// DeleteWebhookPost removes a post; one already gone is not an error.
func (s *Store) DeleteWebhookPost(ctx context.Context, appID, id string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM webhook_posts WHERE app_id = ? AND id = ?`, appID, id)
	return wrap(err, "delete webhook post %q of app %q", id, appID)
}
