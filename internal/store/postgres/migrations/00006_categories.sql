-- Each app's categories: whether one is critical (it bypasses opt-outs)
-- and the frequency caps its deliveries are held to, as a JSON array.

-- +goose Up
CREATE TABLE categories (
    app_id         text NOT NULL,
    name           text NOT NULL,
    critical       boolean NOT NULL DEFAULT false,
    frequency_caps jsonb NOT NULL DEFAULT '[]',
    digest         jsonb,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (app_id, name)
);

-- +goose Down
DROP TABLE categories;
