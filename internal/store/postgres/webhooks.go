package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// CreateWebhook stores an endpoint. CodeConflict when the id exists.
func (s *Store) CreateWebhook(ctx context.Context, w herald.Webhook) error {
	events, err := json.Marshal(w.Events)
	if err != nil {
		return wrap(err, "create webhook %q of app %q", w.ID, w.AppID)
	}
	var disabled *time.Time
	if w.DisabledAt != nil {
		d := storeutil.Time(*w.DisabledAt)
		disabled = &d
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO webhooks (app_id, id, url, events, secret, disabled_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, w.AppID, w.ID, w.URL, string(events), w.Secret, disabled, storeutil.Time(w.CreatedAt))
	return wrap(err, "create webhook %q of app %q", w.ID, w.AppID)
}

// ListWebhooks returns the app's endpoints, oldest first.
func (s *Store) ListWebhooks(ctx context.Context, appID string) ([]herald.Webhook, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, url, events, secret, disabled_at, created_at FROM webhooks
		WHERE app_id = $1 ORDER BY created_at, id`, appID)
	if err != nil {
		return nil, wrap(err, "list webhooks of app %q", appID)
	}
	defer rows.Close()
	var out []herald.Webhook
	for rows.Next() {
		w := herald.Webhook{AppID: appID}
		var events []byte
		if err := rows.Scan(&w.ID, &w.URL, &events, &w.Secret, &w.DisabledAt, &w.CreatedAt); err != nil {
			return nil, wrap(err, "list webhooks of app %q", appID)
		}
		if err := json.Unmarshal(events, &w.Events); err != nil {
			return nil, wrap(err, "list webhooks of app %q: events of %q", appID, w.ID)
		}
		if w.DisabledAt != nil {
			d := w.DisabledAt.UTC()
			w.DisabledAt = &d
		}
		w.CreatedAt = w.CreatedAt.UTC()
		out = append(out, w)
	}
	return out, wrap(rows.Err(), "list webhooks of app %q", appID)
}

// DeleteWebhook removes the endpoint; its posts go with it (ON DELETE CASCADE).
func (s *Store) DeleteWebhook(ctx context.Context, appID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE app_id = $1 AND id = $2`, appID, id)
	return wrap(affected(tag, err), "delete webhook %q of app %q", id, appID)
}

// DisableWebhook marks the endpoint disabled and drops its posts.
func (s *Store) DisableWebhook(ctx context.Context, appID, id string, at time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE webhooks SET disabled_at = $1 WHERE app_id = $2 AND id = $3`,
			storeutil.Time(at), appID, id)
		if err := affected(tag, err); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM webhook_posts WHERE app_id = $1 AND webhook_id = $2`, appID, id)
		return err
	})
	return wrap(err, "disable webhook %q of app %q", id, appID)
}

// AddWebhookPosts stores posts, skipping ids stored already and posts
// whose endpoint is gone or disabled. The endpoint row is locked (FOR
// SHARE) so that a concurrent delete or disable waits for the insert and
// then removes its posts too.
func (s *Store) AddWebhookPosts(ctx context.Context, posts []herald.WebhookPost) error {
	if len(posts) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var batch pgx.Batch
		for _, p := range posts {
			batch.Queue(`INSERT INTO webhook_posts (id, app_id, webhook_id, payload, attempts, due_at, created_at)
				SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS
					(SELECT 1 FROM webhooks WHERE app_id = $2 AND id = $3 AND disabled_at IS NULL FOR SHARE)
				ON CONFLICT (id) DO NOTHING`,
				p.ID, p.AppID, p.WebhookID, p.Payload, p.Attempts, storeutil.Time(p.DueAt), storeutil.Time(p.CreatedAt))
		}
		return tx.SendBatch(ctx, &batch).Close()
	})
	return wrap(err, "add %d webhook posts", len(posts))
}

// ClaimWebhookPosts returns due posts of any app and moves their due time
// to until. SKIP LOCKED lets several senders claim at once without
// waiting for each other or taking the same post.
func (s *Store) ClaimWebhookPosts(ctx context.Context, now, until time.Time, limit int) ([]herald.WebhookPost, error) {
	rows, err := s.pool.Query(ctx, `UPDATE webhook_posts SET due_at = $1
		WHERE id IN (SELECT id FROM webhook_posts WHERE due_at <= $2 ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING id, app_id, webhook_id, payload, attempts, created_at`,
		storeutil.Time(until), storeutil.Time(now), limit)
	if err != nil {
		return nil, wrap(err, "claim webhook posts")
	}
	defer rows.Close()
	var out []herald.WebhookPost
	for rows.Next() {
		p := herald.WebhookPost{DueAt: storeutil.Time(until)}
		if err := rows.Scan(&p.ID, &p.AppID, &p.WebhookID, &p.Payload, &p.Attempts, &p.CreatedAt); err != nil {
			return nil, wrap(err, "claim webhook posts")
		}
		p.CreatedAt = p.CreatedAt.UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "claim webhook posts")
	}
	return out, nil
}

// RetryWebhookPost records a failed attempt and the next due time.
func (s *Store) RetryWebhookPost(ctx context.Context, appID, id string, attempts int, due time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE webhook_posts SET attempts = $1, due_at = $2 WHERE app_id = $3 AND id = $4`,
		attempts, storeutil.Time(due), appID, id)
	return wrap(affected(tag, err), "retry webhook post %q of app %q", id, appID)
}

// DeleteWebhookPost removes a post; one already gone is not an error.
func (s *Store) DeleteWebhookPost(ctx context.Context, appID, id string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM webhook_posts WHERE app_id = $1 AND id = $2`, appID, id)
	return wrap(err, "delete webhook post %q of app %q", id, appID)
}
