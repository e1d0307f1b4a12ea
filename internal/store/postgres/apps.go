package postgres

import (
	"context"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// CreateApp stores a new app. CodeConflict when the id exists.
func (s *Store) CreateApp(ctx context.Context, app herald.App) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO apps (id, name, default_locale, created_at) VALUES ($1, $2, $3, $4)`,
		app.ID, app.Name, app.DefaultLocale, storeutil.Time(app.CreatedAt))
	return wrap(err, "create app %q", app.ID)
}

// GetApp returns the app. CodeNotFound when it does not exist.
func (s *Store) GetApp(ctx context.Context, id string) (herald.App, error) {
	a := herald.App{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT name, default_locale, created_at FROM apps WHERE id = $1`, id).
		Scan(&a.Name, &a.DefaultLocale, &a.CreatedAt)
	if err != nil {
		return herald.App{}, wrap(err, "get app %q", id)
	}
	a.CreatedAt = a.CreatedAt.UTC()
	return a, nil
}

// SetAppDefaultLocale sets the app's default locale.
func (s *Store) SetAppDefaultLocale(ctx context.Context, id, locale string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE apps SET default_locale = $2 WHERE id = $1`, id, locale)
	if err == nil && tag.RowsAffected() == 0 {
		err = herald.ErrNotFound
	}
	return wrap(err, "set default locale of app %q", id)
}

// CreateKey stores a key. CodeConflict when the id or hash exists.
func (s *Store) CreateKey(ctx context.Context, k herald.APIKey) error {
	var revoked *time.Time
	if k.RevokedAt != nil {
		r := storeutil.Time(*k.RevokedAt)
		revoked = &r
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO api_keys (id, app_id, name, scope, prefix, hash, created_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.AppID, k.Name, string(k.Scope), k.Prefix, k.Hash, storeutil.Time(k.CreatedAt), revoked)
	return wrap(err, "create key %q of app %q", k.ID, k.AppID)
}

// KeyByHash returns the live key with this hash. CodeNotFound when none.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (herald.APIKey, error) {
	k := herald.APIKey{Hash: hash}
	var scope string
	err := s.pool.QueryRow(ctx, `SELECT id, app_id, name, scope, prefix, created_at FROM api_keys
		WHERE hash = $1 AND revoked_at IS NULL`, hash).Scan(&k.ID, &k.AppID, &k.Name, &scope, &k.Prefix, &k.CreatedAt)
	if err != nil {
		return herald.APIKey{}, wrap(err, "key by hash")
	}
	k.Scope, k.CreatedAt = herald.Scope(scope), k.CreatedAt.UTC()
	return k, nil
}

// RevokeKey marks the app's live key revoked. CodeNotFound when none.
func (s *Store) RevokeKey(ctx context.Context, appID, keyID string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = $1
		WHERE app_id = $2 AND id = $3 AND revoked_at IS NULL`, storeutil.Time(at), appID, keyID)
	return wrap(affected(tag, err), "revoke key %q of app %q", keyID, appID)
}

// PutProviderConfig replaces the sealed provider list of a channel.
func (s *Store) PutProviderConfig(ctx context.Context, appID string, c herald.Channel, sealed []byte) error {
	if sealed == nil {
		sealed = []byte{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO provider_configs (app_id, channel, sealed) VALUES ($1, $2, $3)
		ON CONFLICT (app_id, channel) DO UPDATE SET sealed = EXCLUDED.sealed`, appID, string(c), sealed)
	return wrap(err, "put provider config %s of app %q", c, appID)
}

// GetProviderConfig returns the sealed list. CodeNotFound when none was put.
func (s *Store) GetProviderConfig(ctx context.Context, appID string, c herald.Channel) ([]byte, error) {
	var sealed []byte
	err := s.pool.QueryRow(ctx, `SELECT sealed FROM provider_configs WHERE app_id = $1 AND channel = $2`,
		appID, string(c)).Scan(&sealed)
	if err != nil {
		return nil, wrap(err, "get provider config %s of app %q", c, appID)
	}
	return sealed, nil
}
