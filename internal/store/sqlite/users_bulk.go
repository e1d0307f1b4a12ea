package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// PutUsers implements herald.ContactStore: one write transaction, one
// prepared upsert. Whether a row existed is read first, inside the
// transaction, which holds SQLite's write lock.
func (s *Store) PutUsers(ctx context.Context, users []herald.User) (int, error) {
	if len(users) == 0 {
		return 0, nil
	}
	created := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		exists, err := tx.PrepareContext(ctx, `SELECT count(*) FROM users WHERE app_id = ? AND id = ?`)
		if err != nil {
			return err
		}
		defer exists.Close()
		upsert, err := tx.PrepareContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (app_id, id) DO UPDATE SET email = excluded.email, phone = excluded.phone,
				locale = excluded.locale, timezone = excluded.timezone, attributes = excluded.attributes,
				updated_at = excluded.updated_at`)
		if err != nil {
			return err
		}
		defer upsert.Close()
		for _, u := range users {
			storeutil.UserTimes(&u, time.Now)
			var attrs sql.NullString
			if u.Attributes != nil {
				b, err := json.Marshal(u.Attributes)
				if err != nil {
					return herald.Invalid("attributes", err.Error())
				}
				attrs = sql.NullString{String: string(b), Valid: true}
			}
			var n int
			if err := exists.QueryRowContext(ctx, u.AppID, u.ID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				created++
			}
			if _, err := upsert.ExecContext(ctx, u.AppID, u.ID, u.Email, u.Phone, u.Locale, u.Timezone, attrs,
				u.EmailStatus, u.PhoneStatus, us(u.CreatedAt), us(u.UpdatedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, wrap(err, "put %d users of app %q", len(users), users[0].AppID)
	}
	return created, nil
}
