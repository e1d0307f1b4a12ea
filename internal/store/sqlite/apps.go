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
	var revoked sql.NullInt64
	if k.RevokedAt != nil {
		revoked = sql.NullInt64{Int64: us(storeutil.Time(*k.RevokedAt)), Valid: true}
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO api_keys (id, app_id, name, scope, prefix, hash, created_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.AppID, k.Name, string(k.Scope), k.Prefix, k.Hash, us(storeutil.Time(k.CreatedAt)), revoked)
	return wrap(err, "create key %q of app %q", k.ID, k.AppID)
}

// KeyByHash returns the live key with this hash. CodeNotFound when none.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (herald.APIKey, error) {
	k := herald.APIKey{Hash: hash}
	var scope string
	var created int64
	err := s.read.QueryRowContext(ctx, `SELECT id, app_id, name, scope, prefix, created_at FROM api_keys
		WHERE hash = ? AND revoked_at IS NULL`, hash).Scan(&k.ID, &k.AppID, &k.Name, &scope, &k.Prefix, &created)
	if err != nil {
		return herald.APIKey{}, wrap(err, "key by hash")
	}
	k.Scope, k.CreatedAt = herald.Scope(scope), fromUS(created)
	return k, nil
}

// RevokeKey marks the app's live key revoked. CodeNotFound when none.
func (s *Store) RevokeKey(ctx context.Context, appID, keyID string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ?
		WHERE app_id = ? AND id = ? AND revoked_at IS NULL`, us(storeutil.Time(at)), appID, keyID)
	return wrap(affected(res, err), "revoke key %q of app %q", keyID, appID)
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
