package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/store/internal/storeutil"
)

// PutTemplate saves t's parts as the next version of its name. The upsert
// of the head row locks it, so concurrent saves get consecutive numbers.
func (s *Store) PutTemplate(ctx context.Context, t herald.Template) (int, error) {
	doc, err := storeutil.EncodeTemplate(t)
	if err != nil {
		return 0, wrap(err, "put template %q of app %q", t.Name, t.AppID)
	}
	var version int
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO templates (app_id, name, latest_version) VALUES ($1, $2, 1)
			ON CONFLICT (app_id, name) DO UPDATE SET latest_version = templates.latest_version + 1, deleted = false
			RETURNING latest_version`, t.AppID, t.Name).Scan(&version)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO template_versions (app_id, name, version, doc, created_at)
			VALUES ($1, $2, $3, $4::jsonb, $5)`, t.AppID, t.Name, version, string(doc), storeutil.Time(t.CreatedAt))
		return err
	})
	return version, wrap(err, "put template %q of app %q", t.Name, t.AppID)
}

// GetTemplate returns a version of the template, or its latest for 0.
func (s *Store) GetTemplate(ctx context.Context, appID, name string, version int) (herald.Template, error) {
	t := herald.Template{AppID: appID, Name: name}
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT v.version, v.doc, v.created_at
		FROM templates t JOIN template_versions v ON v.app_id = t.app_id AND v.name = t.name
		WHERE t.app_id = $1 AND t.name = $2 AND NOT t.deleted
			AND v.version = CASE WHEN $3::integer = 0 THEN t.latest_version ELSE $3::integer END`,
		appID, name, version).Scan(&t.Version, &doc, &t.CreatedAt)
	if err != nil {
		return herald.Template{}, wrap(err, "get template %q version %d of app %q", name, version, appID)
	}
	if err := storeutil.DecodeTemplate(doc, &t); err != nil {
		return herald.Template{}, wrap(err, "get template %q version %d of app %q", name, version, appID)
	}
	t.CreatedAt = t.CreatedAt.UTC()
	return t, nil
}

// LatestTemplateVersion returns the number of the template's latest version.
func (s *Store) LatestTemplateVersion(ctx context.Context, appID, name string) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT latest_version FROM templates
		WHERE app_id = $1 AND name = $2 AND NOT deleted`, appID, name).Scan(&v)
	return v, wrap(err, "latest version of template %q of app %q", name, appID)
}

// ListTemplates returns the latest version of each template, by name.
func (s *Store) ListTemplates(ctx context.Context, appID, cursor string, limit int) ([]herald.Template, string, error) {
	limit = storeutil.Limit(limit)
	after := ""
	if cursor != "" {
		var err error
		if after, err = storeutil.DecodeNameCursor(cursor); err != nil {
			return nil, "", wrap(err, "list templates of app %q", appID)
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT t.name, v.version, v.doc, v.created_at
		FROM templates t JOIN template_versions v
			ON v.app_id = t.app_id AND v.name = t.name AND v.version = t.latest_version
		WHERE t.app_id = $1 AND NOT t.deleted AND t.name > $2
		ORDER BY t.name LIMIT $3`, appID, after, limit+1)
	if err != nil {
		return nil, "", wrap(err, "list templates of app %q", appID)
	}
	defer rows.Close()
	var out []herald.Template
	for rows.Next() {
		t := herald.Template{AppID: appID}
		var doc []byte
		if err := rows.Scan(&t.Name, &t.Version, &doc, &t.CreatedAt); err != nil {
			return nil, "", wrap(err, "list templates of app %q", appID)
		}
		if err := storeutil.DecodeTemplate(doc, &t); err != nil {
			return nil, "", wrap(err, "list templates of app %q: %q", appID, t.Name)
		}
		t.CreatedAt = t.CreatedAt.UTC()
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrap(err, "list templates of app %q", appID)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = storeutil.EncodeNameCursor(out[limit-1].Name)
	}
	return out, next, nil
}

// DeleteTemplate marks the template deleted, keeping its versions.
func (s *Store) DeleteTemplate(ctx context.Context, appID, name string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE templates SET deleted = true
		WHERE app_id = $1 AND name = $2 AND NOT deleted`, appID, name)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap(err, "delete template %q of app %q", name, appID)
}
