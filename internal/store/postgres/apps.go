package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// CreateApp stores a new app. CodeConflict when the id exists.
func (s *Store) CreateApp(ctx context.Context, app herald.App) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO apps (id, name, default_locale, sms_allowed_countries, sms_daily_budget, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		app.ID, app.Name, app.DefaultLocale, storeutil.JoinCountries(app.SMSAllowedCountries), app.SMSDailyBudget,
		storeutil.Time(app.CreatedAt))
	return wrap(err, "create app %q", app.ID)
}

// GetApp returns the app. CodeNotFound when it does not exist.
func (s *Store) GetApp(ctx context.Context, id string) (herald.App, error) {
	a := herald.App{ID: id}
	var countries string
	err := s.pool.QueryRow(ctx, `SELECT name, default_locale, sms_allowed_countries, sms_daily_budget, created_at
		FROM apps WHERE id = $1`, id).
		Scan(&a.Name, &a.DefaultLocale, &countries, &a.SMSDailyBudget, &a.CreatedAt)
	if err != nil {
		return herald.App{}, wrap(err, "get app %q", id)
	}
	a.CreatedAt, a.SMSAllowedCountries = a.CreatedAt.UTC(), storeutil.SplitCountries(countries)
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

// SetAppSMSGuard sets the app's SMS regions and daily budget.
func (s *Store) SetAppSMSGuard(ctx context.Context, id string, g herald.SMSGuard) error {
	tag, err := s.pool.Exec(ctx, `UPDATE apps SET sms_allowed_countries = $2, sms_daily_budget = $3 WHERE id = $1`,
		id, storeutil.JoinCountries(g.AllowedCountries), g.DailyBudget)
	if err == nil && tag.RowsAffected() == 0 {
		err = herald.ErrNotFound
	}
	return wrap(err, "set sms guard of app %q", id)
}

// ReserveSMS counts n SMS against the app's budget for the day. The day's
// row is locked for the transaction, so every process counts exactly.
func (s *Store) ReserveSMS(ctx context.Context, appID, day string, n, budget int) (herald.SMSBudgetUse, error) {
	var use herald.SMSBudgetUse
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sms_budget_days (app_id, day, used) VALUES ($1, $2, 0)
			ON CONFLICT (app_id, day) DO NOTHING`, appID, day); err != nil {
			return err
		}
		var used int
		var warned, exceeded bool
		if err := tx.QueryRow(ctx, `SELECT used, warned, exceeded FROM sms_budget_days WHERE app_id = $1 AND day = $2 FOR UPDATE`,
			appID, day).Scan(&used, &warned, &exceeded); err != nil {
			return err
		}
		used, warned, exceeded, use = storeutil.SMSBudgetStep(used, warned, exceeded, n, budget)
		_, err := tx.Exec(ctx, `UPDATE sms_budget_days SET used = $3, warned = $4, exceeded = $5 WHERE app_id = $1 AND day = $2`,
			appID, day, used, warned, exceeded)
		return err
	})
	return use, wrap(err, "reserve sms of app %q", appID)
}

// CreateKey stores a key. CodeConflict when the id or hash exists.
func (s *Store) CreateKey(ctx context.Context, k herald.APIKey) error {
	_, err := s.pool.Exec(ctx, insertKey, keyArgs(k)...)
	return wrap(err, "create key %q of app %q", k.ID, k.AppID)
}

const insertKey = `INSERT INTO api_keys (id, app_id, name, scope, prefix, hash, created_at, revoked_at, expires_at, last_used_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

func keyArgs(k herald.APIKey) []any {
	return []any{k.ID, k.AppID, k.Name, string(k.Scope), k.Prefix, k.Hash, storeutil.Time(k.CreatedAt),
		optTime(k.RevokedAt), optTime(k.ExpiresAt), optTime(k.LastUsedAt)}
}

// optTime is the stored form of an optional time.
func optTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := storeutil.Time(*t)
	return &v
}

// utc returns an optional stored time in UTC.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

const keyColumns = `id, app_id, name, scope, prefix, hash, created_at, revoked_at, expires_at, last_used_at`

func scanKey(row pgx.Row) (herald.APIKey, error) {
	var k herald.APIKey
	var scope string
	if err := row.Scan(&k.ID, &k.AppID, &k.Name, &scope, &k.Prefix, &k.Hash, &k.CreatedAt, &k.RevokedAt, &k.ExpiresAt, &k.LastUsedAt); err != nil {
		return herald.APIKey{}, err
	}
	k.Scope, k.CreatedAt = herald.Scope(scope), k.CreatedAt.UTC()
	k.RevokedAt, k.ExpiresAt, k.LastUsedAt = utc(k.RevokedAt), utc(k.ExpiresAt), utc(k.LastUsedAt)
	return k, nil
}

// KeyByHash returns the live key with this hash. CodeNotFound when none.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (herald.APIKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE hash = $1 AND revoked_at IS NULL`, hash))
	return k, wrap(err, "key by hash")
}

// RevokeKey marks the app's live key revoked. CodeNotFound when none.
func (s *Store) RevokeKey(ctx context.Context, appID, keyID string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = $1
		WHERE app_id = $2 AND id = $3 AND revoked_at IS NULL`, storeutil.Time(at), appID, keyID)
	return wrap(affected(tag, err), "revoke key %q of app %q", keyID, appID)
}

// ListKeys returns the app's live keys, newest first.
func (s *Store) ListKeys(ctx context.Context, appID string) ([]herald.APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE app_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC`, appID)
	if err != nil {
		return nil, wrap(err, "list keys of app %q", appID)
	}
	defer rows.Close()
	keys := []herald.APIKey{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, wrap(err, "list keys of app %q", appID)
		}
		keys = append(keys, k)
	}
	return keys, wrap(rows.Err(), "list keys of app %q", appID)
}

// GetKey returns the app's live key. CodeNotFound when none.
func (s *Store) GetKey(ctx context.Context, appID, keyID string) (herald.APIKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE app_id = $1 AND id = $2 AND revoked_at IS NULL`, appID, keyID))
	return k, wrap(err, "get key %q of app %q", keyID, appID)
}

// RotateKey stores next and caps the old key's expiry at until.
func (s *Store) RotateKey(ctx context.Context, appID, keyID string, next herald.APIKey, until time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET expires_at = LEAST(coalesce(expires_at, $1), $1)
			WHERE app_id = $2 AND id = $3 AND revoked_at IS NULL`, storeutil.Time(until), appID, keyID)
		if err := affected(tag, err); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, insertKey, keyArgs(next)...)
		return err
	})
	return wrap(err, "rotate key %q of app %q", keyID, appID)
}

// RehashKey replaces the key's hash from by to.
func (s *Store) RehashKey(ctx context.Context, keyID string, from, to []byte) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET hash = $1 WHERE id = $2 AND hash = $3`, to, keyID, from)
	return wrap(affected(tag, err), "rehash key %q", keyID)
}

// MarkKeyUsed records the key's latest use.
func (s *Store) MarkKeyUsed(ctx context.Context, keyID string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = GREATEST(coalesce(last_used_at, $1), $1) WHERE id = $2`,
		storeutil.Time(at), keyID)
	return wrap(affected(tag, err), "mark key %q used", keyID)
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
