-- Templates: one row per name with the number of its latest version, and
-- every saved version, immutable. A delete marks the name deleted and
-- keeps its versions, so version numbers are never reused and a cache
-- keyed by (app, name, version) can never serve a stale template.

-- An app's default locale picks the template variant of recipients whose
-- own locale has none.

-- +goose Up
ALTER TABLE apps ADD COLUMN default_locale text NOT NULL DEFAULT '';

-- Names compare by bytes (COLLATE "C"), as in SQLite, so that both
-- dialects order and page a list identically.
CREATE TABLE templates (
    app_id         text NOT NULL,
    name           text COLLATE "C" NOT NULL,
    latest_version integer NOT NULL,
    deleted        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (app_id, name)
);

CREATE TABLE template_versions (
    app_id     text NOT NULL,
    name       text NOT NULL,
    version    integer NOT NULL,
    doc        jsonb NOT NULL, -- the base parts and "locales"
    created_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, name, version)
);

-- +goose Down
DROP TABLE template_versions;
DROP TABLE templates;
ALTER TABLE apps DROP COLUMN default_locale;
