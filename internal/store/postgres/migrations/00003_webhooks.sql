-- Outbound webhooks: each app's endpoints (the signing secret sealed by
-- the caller) and the posts waiting to be made, each with its due time, so
-- that a failing endpoint's retries wait here and hold up nothing else.

-- +goose Up
CREATE TABLE webhooks (
    app_id      text NOT NULL,
    id          text NOT NULL,
    url         text NOT NULL,
    events      jsonb NOT NULL,
    secret      bytea NOT NULL,
    disabled_at timestamptz,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (app_id, id)
);

CREATE TABLE webhook_posts (
    id         text PRIMARY KEY,
    app_id     text NOT NULL,
    webhook_id text NOT NULL,
    payload    bytea NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    due_at     timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    FOREIGN KEY (app_id, webhook_id) REFERENCES webhooks (app_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_posts_due ON webhook_posts (due_at);
CREATE INDEX webhook_posts_webhook ON webhook_posts (app_id, webhook_id);

-- +goose Down
DROP TABLE webhook_posts;
DROP TABLE webhooks;
