package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// CreateApp stores a new app. CodeConflict when the id exists.
func (s *Store) CreateApp(ctx context.Context, app herald.App) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO apps (id, name, default_locale, sms_allowed_countries, sms_daily_budget, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		app.ID, app.Name, app.DefaultLocale, storeutil.JoinCountries(app.SMSAllowedCountries), app.SMSDailyBudget,
		us(storeutil.Time(app.CreatedAt)))
	return wrap(err, "create app %q", app.ID)
}

// GetApp returns the app. CodeNotFound when it does not exist.
func (s *Store) GetApp(ctx context.Context, id string) (herald.App, error) {
	a := herald.App{ID: id}
	var created int64
	var countries string
	err := s.read.QueryRowContext(ctx, `SELECT name, default_locale, sms_allowed_countries, sms_daily_budget, created_at
		FROM apps WHERE id = ?`, id).
		Scan(&a.Name, &a.DefaultLocale, &countries, &a.SMSDailyBudget, &created)
	if err != nil {
		return herald.App{}, wrap(err, "get app %q", id)
	}
	a.CreatedAt, a.SMSAllowedCountries = fromUS(created), storeutil.SplitCountries(countries)
	return a, nil
}

// SetAppDefaultLocale sets the app's default locale.
func (s *Store) SetAppDefaultLocale(ctx context.Context, id, locale string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE apps SET default_locale = ? WHERE id = ?`, locale, id)
	return wrap(affected(res, err), "set default locale of app %q", id)
}

// SetAppSMSGuard sets the app's SMS regions and daily budget.
func (s *Store) SetAppSMSGuard(ctx context.Context, id string, g herald.SMSGuard) error {
	res, err := s.w.ExecContext(ctx, `UPDATE apps SET sms_allowed_countries = ?, sms_daily_budget = ? WHERE id = ?`,
		storeutil.JoinCountries(g.AllowedCountries), g.DailyBudget, id)
	return wrap(affected(res, err), "set sms guard of app %q", id)
}

// ReserveSMS counts n SMS against the app's budget for the day. The one
// writer connection and its immediate transactions serialise processes.
func (s *Store) ReserveSMS(ctx context.Context, appID, day string, n, budget int) (use herald.SMSBudgetUse, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return use, wrap(err, "reserve sms of app %q", appID)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var used int
	var warned, exceeded bool
	err = tx.QueryRowContext(ctx, `SELECT used, warned, exceeded FROM sms_budget_days WHERE app_id = ? AND day = ?`,
		appID, day).Scan(&used, &warned, &exceeded)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return use, wrap(err, "reserve sms of app %q", appID)
	}
	used, warned, exceeded, use = storeutil.SMSBudgetStep(used, warned, exceeded, n, budget)
	if _, err = tx.ExecContext(ctx, `INSERT INTO sms_budget_days (app_id, day, used, warned, exceeded) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (app_id, day) DO UPDATE SET used = excluded.used, warned = excluded.warned, exceeded = excluded.exceeded`,
		appID, day, used, warned, exceeded); err != nil {
		return use, wrap(err, "reserve sms of app %q", appID)
	}
	return use, wrap(tx.Commit(), "reserve sms of app %q", appID)
}

// CreateKey stores a key. CodeConflict when the id or hash exists.
func (s *Store) CreateKey(ctx context.Context, k herald.APIKey) error {
	_, err := s.w.ExecContext(ctx, insertKey, keyArgs(k)...)
	return wrap(err, "create key %q of app %q", k.ID, k.AppID)
}

const insertKey = `INSERT INTO api_keys (id, app_id, name, scope, prefix, hash, created_at, revoked_at, expires_at, last_used_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func keyArgs(k herald.APIKey) []any {
	return []any{k.ID, k.AppID, k.Name, string(k.Scope), k.Prefix, k.Hash, us(storeutil.Time(k.CreatedAt)),
		nullTime(k.RevokedAt), nullTime(k.ExpiresAt), nullTime(k.LastUsedAt)}
}

// nullTime is the stored form of an optional time.
func nullTime(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: us(storeutil.Time(*t)), Valid: true}
}

// fromNull is the returned form of an optional stored time.
func fromNull(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromUS(v.Int64)
	return &t
}

const keyColumns = `id, app_id, name, scope, prefix, hash, created_at, revoked_at, expires_at, last_used_at`

func scanKey(row interface{ Scan(...any) error }) (herald.APIKey, error) {
	var k herald.APIKey
	var scope string
	var created int64
	var revoked, expires, used sql.NullInt64
	if err := row.Scan(&k.ID, &k.AppID, &k.Name, &scope, &k.Prefix, &k.Hash, &created, &revoked, &expires, &used); err != nil {
		return herald.APIKey{}, err
	}
	k.Scope, k.CreatedAt = herald.Scope(scope), fromUS(created)
	k.RevokedAt, k.ExpiresAt, k.LastUsedAt = fromNull(revoked), fromNull(expires), fromNull(used)
	return k, nil
}

// KeyByHash returns the live key with this hash. CodeNotFound when none.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (herald.APIKey, error) {
	k, err := scanKey(s.read.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE hash = ? AND revoked_at IS NULL`, hash))
	return k, wrap(err, "key by hash")
}

// RevokeKey marks the app's live key revoked. CodeNotFound when none.
func (s *Store) RevokeKey(ctx context.Context, appID, keyID string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ?
		WHERE app_id = ? AND id = ? AND revoked_at IS NULL`, us(storeutil.Time(at)), appID, keyID)
	return wrap(affected(res, err), "revoke key %q of app %q", keyID, appID)
}

// ListKeys returns the app's live keys, newest first.
func (s *Store) ListKeys(ctx context.Context, appID string) ([]herald.APIKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE app_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id DESC`, appID)
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
	k, err := scanKey(s.read.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE app_id = ? AND id = ? AND revoked_at IS NULL`, appID, keyID))
	return k, wrap(err, "get key %q of app %q", keyID, appID)
}

// RotateKey stores next and caps the old key's expiry at until.
func (s *Store) RotateKey(ctx context.Context, appID, keyID string, next herald.APIKey, until time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		u := us(storeutil.Time(until))
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET expires_at = min(coalesce(expires_at, ?), ?)
			WHERE app_id = ? AND id = ? AND revoked_at IS NULL`, u, u, appID, keyID)
		if err := affected(res, err); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, insertKey, keyArgs(next)...)
		return err
	})
	return wrap(err, "rotate key %q of app %q", keyID, appID)
}

// RehashKey replaces the key's hash from by to.
func (s *Store) RehashKey(ctx context.Context, keyID string, from, to []byte) error {
	res, err := s.w.ExecContext(ctx, `UPDATE api_keys SET hash = ? WHERE id = ? AND hash = ?`, to, keyID, from)
	return wrap(affected(res, err), "rehash key %q", keyID)
}

// MarkKeyUsed records the key's latest use.
func (s *Store) MarkKeyUsed(ctx context.Context, keyID string, at time.Time) error {
	u := us(storeutil.Time(at))
	res, err := s.w.ExecContext(ctx, `UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, ?), ?) WHERE id = ?`,
		u, u, keyID)
	return wrap(affected(res, err), "mark key %q used", keyID)
}

// PutProviderConfig replaces the sealed provider list of a channel.
func (s *Store) PutProviderConfig(ctx context.Context, appID string, c herald.Channel, sealed []byte) error {
	if sealed == nil {
		sealed = []byte{}
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO provider_configs (app_id, channel, sealed) VALUES (?, ?, ?)
		ON CONFLICT (app_id, channel) DO UPDATE SET sealed = excluded.sealed`, appID, string(c), sealed)
	return wrap(err, "put provider config %s of app %q", c, appID)
}

// GetProviderConfig returns the sealed list. CodeNotFound when none was put.
func (s *Store) GetProviderConfig(ctx context.Context, appID string, c herald.Channel) ([]byte, error) {
	var sealed []byte
	err := s.read.QueryRowContext(ctx, `SELECT sealed FROM provider_configs WHERE app_id = ? AND channel = ?`,
		appID, string(c)).Scan(&sealed)
	if err != nil {
		return nil, wrap(err, "get provider config %s of app %q", c, appID)
	}
	return sealed, nil
}

// affected turns "no row changed" into ErrNotFound, for updates and
// deletes whose target must exist.
func affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return herald.ErrNotFound
	}
	return nil
}
