-- Herald's schema for PostgreSQL. Ids are caller-supplied text (UUIDv7);
-- times are timestamptz (microseconds). Tables are created unqualified, in
-- the first schema of the connection's search_path.

-- +goose Up
CREATE TABLE apps (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id         text PRIMARY KEY,
    app_id     text NOT NULL,
    name       text NOT NULL,
    scope      text NOT NULL,
    prefix     text NOT NULL,
    hash       bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX api_keys_app ON api_keys (app_id);

CREATE TABLE users (
    app_id       text NOT NULL,
    id           text NOT NULL,
    email        text NOT NULL DEFAULT '',
    phone        text NOT NULL DEFAULT '',
    locale       text NOT NULL DEFAULT '',
    timezone     text NOT NULL DEFAULT '',
    attributes   jsonb,
    email_status text NOT NULL DEFAULT '',
    phone_status text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (app_id, id)
);

CREATE TABLE devices (
    id           text PRIMARY KEY,
    app_id       text NOT NULL,
    user_id      text NOT NULL,
    platform     text NOT NULL,
    token        text NOT NULL,
    subscription jsonb,
    status       text NOT NULL,
    created_at   timestamptz NOT NULL,
    UNIQUE (app_id, user_id, token),
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
);

CREATE INDEX devices_token ON devices (app_id, token);

CREATE TABLE preferences (
    app_id  text NOT NULL,
    user_id text NOT NULL,
    doc     jsonb NOT NULL,
    PRIMARY KEY (app_id, user_id),
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
);

CREATE TABLE provider_configs (
    app_id  text NOT NULL,
    channel text NOT NULL,
    sealed  bytea NOT NULL,
    PRIMARY KEY (app_id, channel)
);

CREATE TABLE notifications (
    app_id     text NOT NULL,
    id         text NOT NULL,
    category   text NOT NULL DEFAULT '',
    priority   text NOT NULL DEFAULT '',
    content    jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, id)
);

CREATE TABLE deliveries (
    id                  text PRIMARY KEY,
    app_id              text NOT NULL,
    notification_id     text NOT NULL,
    user_id             text NOT NULL DEFAULT '',
    channel             text NOT NULL,
    priority            text NOT NULL DEFAULT '',
    address             text NOT NULL DEFAULT '',
    device_id           text NOT NULL DEFAULT '',
    platform            text NOT NULL DEFAULT '',
    status              text NOT NULL,
    reason              text NOT NULL DEFAULT '',
    provider            text NOT NULL DEFAULT '',
    provider_message_id text NOT NULL DEFAULT '',
    attempts            integer NOT NULL DEFAULT 0,
    due_at              timestamptz NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX deliveries_notification ON deliveries (app_id, notification_id);
-- notification_id too, so that the EXISTS of a user filter is one lookup.
CREATE INDEX deliveries_user ON deliveries (app_id, user_id, notification_id);
-- The reconciler's scan; small because finished deliveries leave it.
CREATE INDEX deliveries_due ON deliveries (due_at)
    WHERE status IN ('accepted', 'queued', 'sending');

CREATE TABLE events (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id          text NOT NULL,
    notification_id text NOT NULL,
    delivery_id     text NOT NULL DEFAULT '',
    channel         text NOT NULL DEFAULT '',
    status          text NOT NULL,
    reason          text NOT NULL DEFAULT '',
    attempt         integer NOT NULL DEFAULT 0,
    provider        text NOT NULL DEFAULT '',
    detail          text NOT NULL DEFAULT '',
    at              timestamptz NOT NULL
);
CREATE INDEX events_notification ON events (app_id, notification_id, seq);

CREATE TABLE idempotency (
    app_id          text NOT NULL,
    key             text NOT NULL,
    request_hash    bytea,
    notification_id text NOT NULL DEFAULT '',
    -- json, not jsonb: a replay must return the first answer byte for byte.
    response        json,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (app_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE leases;
DROP TABLE idempotency;
DROP TABLE events;
DROP TABLE deliveries;
DROP TABLE notifications;
DROP TABLE provider_configs;
DROP TABLE preferences;
DROP TABLE devices;
DROP TABLE users;
DROP TABLE api_keys;
DROP TABLE apps;
