-- Templates: one row per name with the number of its latest version, and
-- every saved version, immutable. A delete marks the name deleted and
-- keeps its versions, so version numbers are never reused and a cache
-- keyed by (app, name, version) can never serve a stale template.

-- An app's default locale picks the template variant of recipients whose
-- own locale has none.

-- +goose Up
ALTER TABLE apps ADD COLUMN default_locale TEXT NOT NULL DEFAULT '';

CREATE TABLE templates (
    app_id         TEXT NOT NULL,
    name           TEXT NOT NULL,
    latest_version INTEGER NOT NULL,
    deleted        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE template_versions (
    app_id     TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    doc        TEXT NOT NULL, -- JSON: the base parts and "locales"
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, name, version)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE template_versions;
DROP TABLE templates;
ALTER TABLE apps DROP COLUMN default_locale;
