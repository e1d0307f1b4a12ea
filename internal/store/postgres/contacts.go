package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
	"github.com/jackc/pgx/v5"
)

const userColumns = `app_id, id, email, phone, locale, timezone, attributes, email_status, phone_status, created_at, updated_at`

func scanUser(row pgx.Row, extra ...any) (herald.User, error) {
	var u herald.User
	var attrs []byte
	dest := append([]any{&u.AppID, &u.ID, &u.Email, &u.Phone, &u.Locale, &u.Timezone, &attrs,
		&u.EmailStatus, &u.PhoneStatus, &u.CreatedAt, &u.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return herald.User{}, err
	}
	if len(attrs) > 0 && string(attrs) != "null" {
		var err error
		if u.Attributes, err = storeutil.DecodeAttributes(attrs); err != nil {
			return herald.User{}, err
		}
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, nil
}

// PutUser creates or replaces the user's profile, keeping CreatedAt and the
// contact statuses of an existing one, and reports whether it was created.
// Missing times are taken from each other, or from the wall clock.
func (s *Store) PutUser(ctx context.Context, u herald.User) (herald.User, bool, error) {
	storeutil.UserTimes(&u, time.Now)
	var attrs *string
	if u.Attributes != nil {
		b, err := json.Marshal(u.Attributes)
		if err != nil {
			return herald.User{}, false, wrap(herald.Invalid("attributes", err.Error()), "put user %q of app %q", u.ID, u.AppID)
		}
		a := string(b)
		attrs = &a
	}
	var created bool
	// xmax is 0 only on a row this statement inserted: the one way to learn
	// "created" from an upsert without a race.
	out, err := scanUser(s.pool.QueryRow(ctx, `INSERT INTO users (`+userColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11)
		ON CONFLICT (app_id, id) DO UPDATE SET email = EXCLUDED.email, phone = EXCLUDED.phone,
			locale = EXCLUDED.locale, timezone = EXCLUDED.timezone, attributes = EXCLUDED.attributes,
			updated_at = EXCLUDED.updated_at
		RETURNING `+userColumns+`, (xmax = 0)`,
		u.AppID, u.ID, u.Email, u.Phone, u.Locale, u.Timezone, attrs, u.EmailStatus, u.PhoneStatus,
		u.CreatedAt, u.UpdatedAt), &created)
	if err != nil {
		return herald.User{}, false, wrap(err, "put user %q of app %q", u.ID, u.AppID)
	}
	return out, created, nil
}

// GetUser returns the user. CodeNotFound when the app has no such user.
func (s *Store) GetUser(ctx context.Context, appID, userID string) (herald.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE app_id = $1 AND id = $2`, appID, userID))
	if err != nil {
		return herald.User{}, wrap(err, "get user %q of app %q", userID, appID)
	}
	return u, nil
}

// DeleteUser erases the user; its devices and preferences go with it (ON
// DELETE CASCADE). CodeNotFound when absent.
func (s *Store) DeleteUser(ctx context.Context, appID, userID string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE app_id = $1 AND id = $2`, appID, userID)
	return wrap(affected(tag, err), "delete user %q of app %q", userID, appID)
}

// SetContactStatus marks the user's email or SMS contact usable ("") or
// DeviceInvalid. CodeNotFound when the user is absent, CodeInvalid for push.
func (s *Store) SetContactStatus(ctx context.Context, appID, userID string, c herald.Channel, status string) error {
	col, err := storeutil.ContactColumn(c)
	if err != nil {
		return wrap(err, "set %s status of user %q of app %q", c, userID, appID)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE users SET `+col+` = $1 WHERE app_id = $2 AND id = $3`, status, appID, userID)
	return wrap(affected(tag, err), "set %s status of user %q of app %q", c, userID, appID)
}

const deviceColumns = `app_id, id, user_id, platform, token, subscription, status, created_at`

func scanDevice(row pgx.Row) (herald.Device, error) {
	var d herald.Device
	var platform string
	var sub []byte
	if err := row.Scan(&d.AppID, &d.ID, &d.UserID, &platform, &d.Token, &sub, &d.Status, &d.CreatedAt); err != nil {
		return herald.Device{}, err
	}
	var err error
	if d.Subscription, err = decodeSubscription(sub); err != nil {
		return herald.Device{}, err
	}
	d.Platform, d.CreatedAt = herald.Platform(platform), d.CreatedAt.UTC()
	return d, nil
}

// decodeSubscription decodes a web push device's subscription column
// (NULL for other platforms).
func decodeSubscription(col []byte) (*herald.WebPushSubscription, error) {
	if len(col) == 0 || string(col) == "null" {
		return nil, nil
	}
	sub := new(herald.WebPushSubscription)
	if err := json.Unmarshal(col, sub); err != nil {
		return nil, err
	}
	return sub, nil
}

// AddDevice registers a device; the same token for the same user again
// returns the existing device, reactivated. CodeNotFound when the user does
// not exist.
func (s *Store) AddDevice(ctx context.Context, d herald.Device) (herald.Device, error) {
	var sub *string
	if d.Subscription != nil {
		b, err := json.Marshal(d.Subscription)
		if err != nil {
			return herald.Device{}, wrap(err, "add device of user %q of app %q", d.UserID, d.AppID)
		}
		s := string(b)
		sub = &s
	}
	if d.Status == "" {
		d.Status = herald.DeviceActive
	}
	var out herald.Device
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = scanDevice(tx.QueryRow(ctx, `INSERT INTO devices (`+deviceColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)
			ON CONFLICT (app_id, user_id, token) DO UPDATE SET status = 'active'
			RETURNING `+deviceColumns,
			d.AppID, d.ID, d.UserID, string(d.Platform), d.Token, sub, d.Status, storeutil.Time(d.CreatedAt)))
		if err != nil {
			return err
		}
		// A device belongs to whoever registered it last (a shared or handed-on phone).
		_, err = tx.Exec(ctx, `UPDATE devices SET status = 'invalid' WHERE app_id = $1 AND token = $2 AND user_id <> $3`,
			d.AppID, d.Token, d.UserID)
		return err
	})
	if isForeignKey(err) {
		err = fmt.Errorf("no user %q: %w", d.UserID, herald.ErrNotFound)
	}
	if err != nil {
		return herald.Device{}, wrap(err, "add device of user %q of app %q", d.UserID, d.AppID)
	}
	return out, nil
}

// ListDevices returns the user's devices, oldest first.
func (s *Store) ListDevices(ctx context.Context, appID, userID string) ([]herald.Device, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices WHERE app_id = $1 AND user_id = $2
		ORDER BY created_at, id`, appID, userID)
	if err != nil {
		return nil, wrap(err, "list devices of user %q of app %q", userID, appID)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (herald.Device, error) { return scanDevice(r) })
	return out, wrap(err, "list devices of user %q of app %q", userID, appID)
}

// DeleteDevice removes one device. CodeNotFound when absent.
func (s *Store) DeleteDevice(ctx context.Context, appID, userID, deviceID string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM devices WHERE app_id = $1 AND user_id = $2 AND id = $3`, appID, userID, deviceID)
	return wrap(affected(tag, err), "delete device %q of app %q", deviceID, appID)
}

// SetDeviceStatus marks a device DeviceActive or DeviceInvalid. CodeNotFound when absent.
func (s *Store) SetDeviceStatus(ctx context.Context, appID, deviceID, status string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE devices SET status = $1 WHERE app_id = $2 AND id = $3`, status, appID, deviceID)
	return wrap(affected(tag, err), "set status of device %q of app %q", deviceID, appID)
}

// GetPreferences returns the user's preferences, empty when never set.
// CodeNotFound when the user does not exist.
func (s *Store) GetPreferences(ctx context.Context, appID, userID string) (herald.Preferences, error) {
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT p.doc FROM users u
		LEFT JOIN preferences p ON p.app_id = u.app_id AND p.user_id = u.id
		WHERE u.app_id = $1 AND u.id = $2`, appID, userID).Scan(&doc)
	if err != nil {
		return herald.Preferences{}, wrap(err, "get preferences of user %q of app %q", userID, appID)
	}
	var p herald.Preferences
	if len(doc) > 0 {
		if err := json.Unmarshal(doc, &p); err != nil {
			return herald.Preferences{}, wrap(err, "get preferences of user %q of app %q", userID, appID)
		}
	}
	return p, nil
}

// PutPreferences replaces the user's preferences. CodeNotFound when the user does not exist.
func (s *Store) PutPreferences(ctx context.Context, appID, userID string, p herald.Preferences) error {
	b, err := json.Marshal(p)
	if err == nil {
		_, err = s.pool.Exec(ctx, `INSERT INTO preferences (app_id, user_id, doc) VALUES ($1, $2, $3::jsonb)
			ON CONFLICT (app_id, user_id) DO UPDATE SET doc = EXCLUDED.doc`, appID, userID, string(b))
	}
	if isForeignKey(err) {
		err = fmt.Errorf("no user %q: %w", userID, herald.ErrNotFound)
	}
	return wrap(err, "put preferences of user %q of app %q", userID, appID)
}
