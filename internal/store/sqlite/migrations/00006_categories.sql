-- Each app's categories: whether one is critical (it bypasses opt-outs)
-- and the frequency caps its deliveries are held to, as a JSON array.

-- +goose Up
CREATE TABLE categories (
    app_id         TEXT NOT NULL,
    name           TEXT NOT NULL,
    critical       INTEGER NOT NULL DEFAULT 0,
    frequency_caps TEXT NOT NULL DEFAULT '[]',
    digest         TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (app_id, name)
) STRICT;

-- +goose Down
DROP TABLE categories;
