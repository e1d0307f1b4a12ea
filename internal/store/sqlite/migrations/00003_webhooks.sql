-- Outbound webhooks: each app's endpoints (the signing secret sealed by
-- the caller) and the posts waiting to be made, each with its due time, so
-- that a failing endpoint's retries wait here and hold up nothing else.

-- +goose Up
CREATE TABLE webhooks (
    app_id      TEXT NOT NULL,
    id          TEXT NOT NULL,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL, -- JSON array of event names
    secret      BLOB NOT NULL,
    disabled_at INTEGER,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, id)
) STRICT;

CREATE TABLE webhook_posts (
    id         TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    payload    BLOB NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_at     INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (app_id, webhook_id) REFERENCES webhooks (app_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX webhook_posts_due ON webhook_posts (due_at);
CREATE INDEX webhook_posts_webhook ON webhook_posts (app_id, webhook_id);

-- +goose Down
DROP TABLE webhook_posts;
DROP TABLE webhooks;
