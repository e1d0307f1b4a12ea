package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

const userColumns = `app_id, id, email, phone, locale, timezone, attributes, email_status, phone_status, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (herald.User, error) {
	var u herald.User
	var attrs sql.NullString
	var created, updated int64
	if err := row.Scan(&u.AppID, &u.ID, &u.Email, &u.Phone, &u.Locale, &u.Timezone, &attrs,
		&u.EmailStatus, &u.PhoneStatus, &created, &updated); err != nil {
		return herald.User{}, err
	}
	if attrs.Valid && attrs.String != "" && attrs.String != "null" {
		var err error
		if u.Attributes, err = storeutil.DecodeAttributes([]byte(attrs.String)); err != nil {
			return herald.User{}, err
		}
	}
	u.CreatedAt, u.UpdatedAt = fromUS(created), fromUS(updated)
	return u, nil
}

// PutUser creates or replaces the user's profile, keeping CreatedAt and the
// contact statuses of an existing one, and reports whether it was created.
// Missing times are taken from each other, or from the wall clock.
func (s *Store) PutUser(ctx context.Context, u herald.User) (herald.User, bool, error) {
	storeutil.UserTimes(&u, time.Now)
	var attrs sql.NullString
	if u.Attributes != nil {
		b, err := json.Marshal(u.Attributes)
		if err != nil {
			return herald.User{}, false, wrap(herald.Invalid("attributes", err.Error()), "put user %q of app %q", u.ID, u.AppID)
		}
		attrs = sql.NullString{String: string(b), Valid: true}
	}
	var out herald.User
	var created bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// The write transaction holds SQLite's write lock, so this
		// read-then-write cannot race another writer.
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE app_id = ? AND id = ?`, u.AppID, u.ID).Scan(&n); err != nil {
			return err
		}
		created = n == 0
		var err error
		if created {
			_, err = tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				u.AppID, u.ID, u.Email, u.Phone, u.Locale, u.Timezone, attrs, u.EmailStatus, u.PhoneStatus,
				us(u.CreatedAt), us(u.UpdatedAt))
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE users SET email = ?, phone = ?, locale = ?, timezone = ?,
				attributes = ?, updated_at = ? WHERE app_id = ? AND id = ?`,
				u.Email, u.Phone, u.Locale, u.Timezone, attrs, us(u.UpdatedAt), u.AppID, u.ID)
		}
		if err != nil {
			return err
		}
		out, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE app_id = ? AND id = ?`, u.AppID, u.ID))
		return err
	})
	if err != nil {
		return herald.User{}, false, wrap(err, "put user %q of app %q", u.ID, u.AppID)
	}
	return out, created, nil
}

// GetUser returns the user. CodeNotFound when the app has no such user.
func (s *Store) GetUser(ctx context.Context, appID, userID string) (herald.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE app_id = ? AND id = ?`, appID, userID))
	if err != nil {
		return herald.User{}, wrap(err, "get user %q of app %q", userID, appID)
	}
	return u, nil
}

// DeleteUser erases the user; its devices and preferences go with it (ON
// DELETE CASCADE). CodeNotFound when absent.
func (s *Store) DeleteUser(ctx context.Context, appID, userID string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM users WHERE app_id = ? AND id = ?`, appID, userID)
	return wrap(affected(res, err), "delete user %q of app %q", userID, appID)
}

// SetContactStatus marks the user's email or SMS contact usable ("") or
// DeviceInvalid. CodeNotFound when the user is absent, CodeInvalid for push.
func (s *Store) SetContactStatus(ctx context.Context, appID, userID string, c herald.Channel, status string) error {
	col, err := storeutil.ContactColumn(c)
	if err != nil {
		return wrap(err, "set %s status of user %q of app %q", c, userID, appID)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE users SET `+col+` = ? WHERE app_id = ? AND id = ?`, status, appID, userID)
	return wrap(affected(res, err), "set %s status of user %q of app %q", c, userID, appID)
}

const deviceColumns = `app_id, id, user_id, platform, token, subscription, status, created_at`

func scanDevice(row interface{ Scan(...any) error }) (herald.Device, error) {
	var d herald.Device
	var platform string
	var sub sql.NullString
	var created int64
	if err := row.Scan(&d.AppID, &d.ID, &d.UserID, &platform, &d.Token, &sub, &d.Status, &created); err != nil {
		return herald.Device{}, err
	}
	var err error
	if d.Subscription, err = decodeSubscription(sub); err != nil {
		return herald.Device{}, err
	}
	d.Platform, d.CreatedAt = herald.Platform(platform), fromUS(created)
	return d, nil
}

// decodeSubscription decodes a web push device's subscription column
// (NULL or empty for other platforms).
func decodeSubscription(col sql.NullString) (*herald.WebPushSubscription, error) {
	if !col.Valid || col.String == "" {
		return nil, nil
	}
	sub := new(herald.WebPushSubscription)
	if err := json.Unmarshal([]byte(col.String), sub); err != nil {
		return nil, err
	}
	return sub, nil
}

// AddDevice registers a device; the same token for the same user again
// returns the existing device, reactivated. CodeNotFound when the user does
// not exist.
func (s *Store) AddDevice(ctx context.Context, d herald.Device) (herald.Device, error) {
	var sub sql.NullString
	if d.Subscription != nil {
		b, err := json.Marshal(d.Subscription)
		if err != nil {
			return herald.Device{}, wrap(err, "add device of user %q of app %q", d.UserID, d.AppID)
		}
		sub = sql.NullString{String: string(b), Valid: true}
	}
	if d.Status == "" {
		d.Status = herald.DeviceActive
	}
	var out herald.Device
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = scanDevice(tx.QueryRowContext(ctx, `INSERT INTO devices (`+deviceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (app_id, user_id, token) DO UPDATE SET status = 'active'
			RETURNING `+deviceColumns,
			d.AppID, d.ID, d.UserID, string(d.Platform), d.Token, sub, d.Status, us(storeutil.Time(d.CreatedAt))))
		if err != nil {
			return err
		}
		// A device belongs to whoever registered it last (a shared or handed-on phone).
		_, err = tx.ExecContext(ctx, `UPDATE devices SET status = 'invalid' WHERE app_id = ? AND token = ? AND user_id <> ?`,
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
	rows, err := s.read.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE app_id = ? AND user_id = ?
		ORDER BY created_at, id`, appID, userID)
	if err != nil {
		return nil, wrap(err, "list devices of user %q of app %q", userID, appID)
	}
	defer rows.Close()
	var out []herald.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, wrap(err, "list devices of user %q of app %q", userID, appID)
		}
		out = append(out, d)
	}
	return out, wrap(rows.Err(), "list devices of user %q of app %q", userID, appID)
}

// DeleteDevice removes one device. CodeNotFound when absent.
func (s *Store) DeleteDevice(ctx context.Context, appID, userID, deviceID string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM devices WHERE app_id = ? AND user_id = ? AND id = ?`, appID, userID, deviceID)
	return wrap(affected(res, err), "delete device %q of app %q", deviceID, appID)
}

// SetDeviceStatus marks a device DeviceActive or DeviceInvalid. CodeNotFound when absent.
func (s *Store) SetDeviceStatus(ctx context.Context, appID, deviceID, status string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE devices SET status = ? WHERE app_id = ? AND id = ?`, status, appID, deviceID)
	return wrap(affected(res, err), "set status of device %q of app %q", deviceID, appID)
}

// GetPreferences returns the user's preferences, empty when never set.
// CodeNotFound when the user does not exist.
func (s *Store) GetPreferences(ctx context.Context, appID, userID string) (herald.Preferences, error) {
	var doc sql.NullString
	err := s.read.QueryRowContext(ctx, `SELECT p.doc FROM users u
		LEFT JOIN preferences p ON p.app_id = u.app_id AND p.user_id = u.id
		WHERE u.app_id = ? AND u.id = ?`, appID, userID).Scan(&doc)
	if err != nil {
		return herald.Preferences{}, wrap(err, "get preferences of user %q of app %q", userID, appID)
	}
	var p herald.Preferences
	if doc.Valid {
		if err := json.Unmarshal([]byte(doc.String), &p); err != nil {
			return herald.Preferences{}, wrap(err, "get preferences of user %q of app %q", userID, appID)
		}
	}
	return p, nil
}

// PutPreferences replaces the user's preferences. CodeNotFound when the user does not exist.
func (s *Store) PutPreferences(ctx context.Context, appID, userID string, p herald.Preferences) error {
	b, err := json.Marshal(p)
	if err == nil {
		_, err = s.w.ExecContext(ctx, `INSERT INTO preferences (app_id, user_id, doc) VALUES (?, ?, ?)
			ON CONFLICT (app_id, user_id) DO UPDATE SET doc = excluded.doc`, appID, userID, string(b))
	}
	if isForeignKey(err) {
		err = fmt.Errorf("no user %q: %w", userID, herald.ErrNotFound)
	}
	return wrap(err, "put preferences of user %q of app %q", userID, appID)
}
