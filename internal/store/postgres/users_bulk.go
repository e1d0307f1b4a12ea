package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// PutUsers implements herald.ContactStore: every upsert of PutUser in one
// transaction, sent as one pipelined batch.
func (s *Store) PutUsers(ctx context.Context, users []herald.User) (int, error) {
	if len(users) == 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	for _, u := range users {
		storeutil.UserTimes(&u, time.Now)
		var attrs *string
		if u.Attributes != nil {
			raw, err := json.Marshal(u.Attributes)
			if err != nil {
				return 0, wrap(herald.Invalid("attributes", err.Error()), "put user %q of app %q", u.ID, u.AppID)
			}
			a := string(raw)
			attrs = &a
		}
		// xmax is 0 only on a row this statement inserted.
		b.Queue(`INSERT INTO users (`+userColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11)
			ON CONFLICT (app_id, id) DO UPDATE SET email = EXCLUDED.email, phone = EXCLUDED.phone,
				locale = EXCLUDED.locale, timezone = EXCLUDED.timezone, attributes = EXCLUDED.attributes,
				updated_at = EXCLUDED.updated_at
			RETURNING (xmax = 0)`,
			u.AppID, u.ID, u.Email, u.Phone, u.Locale, u.Timezone, attrs, u.EmailStatus, u.PhoneStatus,
			u.CreatedAt, u.UpdatedAt)
	}
	created := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res := tx.SendBatch(ctx, b)
		for range users {
			var inserted bool
			if err := res.QueryRow().Scan(&inserted); err != nil {
				res.Close()
				return err
			}
			if inserted {
				created++
			}
		}
		return res.Close()
	})
	if err != nil {
		return 0, wrap(err, "put %d users of app %q", len(users), users[0].AppID)
	}
	return created, nil
}
