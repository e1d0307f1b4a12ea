package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

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
	var dg *string
	if digest != nil {
		d := string(digest)
		dg = &d
	}
	// xmax is 0 on a row this statement inserted, set on one it updated.
	var created bool
	var out herald.Category
	row := s.pool.QueryRow(ctx, `INSERT INTO categories (app_id, `+categoryColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (app_id, name) DO UPDATE SET critical = EXCLUDED.critical, frequency_caps = EXCLUDED.frequency_caps,
			digest = EXCLUDED.digest, updated_at = EXCLUDED.updated_at
		RETURNING `+categoryColumns+`, xmax = 0`, c.AppID, c.Name, c.Critical, string(caps), dg, at)
	out, err = scanCategory(c.AppID, row, &created)
	if err != nil {
		return herald.Category{}, false, wrap(err, "put category %q of app %q", c.Name, c.AppID)
	}
	return out, created, nil
}

// GetCategory returns the category. CodeNotFound when absent.
func (s *Store) GetCategory(ctx context.Context, appID, name string) (herald.Category, error) {
	c, err := scanCategory(appID, s.pool.QueryRow(ctx, `SELECT `+categoryColumns+` FROM categories WHERE app_id = $1 AND name = $2`, appID, name))
	return c, wrap(err, "get category %q of app %q", name, appID)
}

// ListCategories returns the app's categories by name.
func (s *Store) ListCategories(ctx context.Context, appID string) ([]herald.Category, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+categoryColumns+` FROM categories WHERE app_id = $1 ORDER BY name`, appID)
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

// scanCategory reads categoryColumns and, when given, the extra columns after them.
func scanCategory(appID string, row pgx.Row, extra ...any) (herald.Category, error) {
	c := herald.Category{AppID: appID}
	var caps, digest []byte
	dst := append([]any{&c.Name, &c.Critical, &caps, &digest, &c.CreatedAt, &c.UpdatedAt}, extra...)
	if err := row.Scan(dst...); err != nil {
		return herald.Category{}, err
	}
	if err := storeutil.DecodeCategory(&c, caps, digest); err != nil {
		return herald.Category{}, err
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, nil
}
