package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

const categoryColumns = `name, critical, frequency_caps, digest, created_at, updated_at`

// PutCategory creates or replaces the category and reports whether it was created.
func (s *Store) PutCategory(ctx context.Context, c herald.Category) (herald.Category, bool, error) {
	caps, digest, err := storeutil.EncodeCategory(c)
	if err != nil {
		return herald.Category{}, false, wrap(err, "put category %q of app %q", c.Name, c.AppID)
	}
	at := storeutil.Time(time.Now())
	if !c.UpdatedAt.IsZero() {
		at = storeutil.Time(c.UpdatedAt)
	}
	var dg sql.NullString
	if digest != nil {
		dg = sql.NullString{String: string(digest), Valid: true}
	}
	var out herald.Category
	var created bool
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// The write transaction holds SQLite's write lock, so this
		// read-then-write cannot race another writer.
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM categories WHERE app_id = ? AND name = ?`, c.AppID, c.Name).Scan(&n); err != nil {
			return err
		}
		created = n == 0
		var err error
		if created {
			_, err = tx.ExecContext(ctx, `INSERT INTO categories (app_id, `+categoryColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				c.AppID, c.Name, c.Critical, string(caps), dg, us(at), us(at))
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE categories SET critical = ?, frequency_caps = ?, digest = ?, updated_at = ?
				WHERE app_id = ? AND name = ?`, c.Critical, string(caps), dg, us(at), c.AppID, c.Name)
		}
		if err != nil {
			return err
		}
		out, err = scanCategory(c.AppID, tx.QueryRowContext(ctx, `SELECT `+categoryColumns+` FROM categories WHERE app_id = ? AND name = ?`, c.AppID, c.Name))
		return err
	})
	if err != nil {
		return herald.Category{}, false, wrap(err, "put category %q of app %q", c.Name, c.AppID)
	}
	return out, created, nil
}

// GetCategory returns the category. CodeNotFound when absent.
func (s *Store) GetCategory(ctx context.Context, appID, name string) (herald.Category, error) {
	c, err := scanCategory(appID, s.read.QueryRowContext(ctx, `SELECT `+categoryColumns+` FROM categories WHERE app_id = ? AND name = ?`, appID, name))
	return c, wrap(err, "get category %q of app %q", name, appID)
}

// ListCategories returns the app's categories by name.
func (s *Store) ListCategories(ctx context.Context, appID string) ([]herald.Category, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+categoryColumns+` FROM categories WHERE app_id = ? ORDER BY name`, appID)
	if err != nil {
		return nil, wrap(err, "list categories of app %q", appID)
	}
	defer rows.Close()
	var out []herald.Category
	for rows.Next() {
		c, err := scanCategory(appID, rows)
		if err != nil {
			return nil, wrap(err, "list categories of app %q", appID)
		}
		out = append(out, c)
	}
	return out, wrap(rows.Err(), "list categories of app %q", appID)
}

func scanCategory(appID string, row interface{ Scan(...any) error }) (herald.Category, error) {
	c := herald.Category{AppID: appID}
	var caps string
	var digest sql.NullString
	var created, updated int64
	if err := row.Scan(&c.Name, &c.Critical, &caps, &digest, &created, &updated); err != nil {
		return herald.Category{}, err
	}
	var dg []byte
	if digest.Valid {
		dg = []byte(digest.String)
	}
	if err := storeutil.DecodeCategory(&c, []byte(caps), dg); err != nil {
		return herald.Category{}, err
	}
	c.CreatedAt, c.UpdatedAt = fromUS(created), fromUS(updated)
	return c, nil
}
