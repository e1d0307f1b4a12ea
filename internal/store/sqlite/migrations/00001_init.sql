-- Herald's schema for SQLite. Times are INTEGER unix microseconds (UTC);
-- ids are caller-supplied TEXT (UUIDv7); JSON documents are TEXT.

-- +goose Up
CREATE TABLE apps (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX api_keys_app ON api_keys (app_id);

CREATE TABLE users (
    app_id       TEXT NOT NULL,
    id           TEXT NOT NULL,
    email        TEXT NOT NULL DEFAULT '',
    phone        TEXT NOT NULL DEFAULT '',
    locale       TEXT NOT NULL DEFAULT '',
    timezone     TEXT NOT NULL DEFAULT '',
    attributes   TEXT,
    email_status TEXT NOT NULL DEFAULT '',
    phone_status TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (app_id, id)
) STRICT;

CREATE TABLE devices (
    id           TEXT PRIMARY KEY,
    app_id       TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    platform     TEXT NOT NULL,
    token        TEXT NOT NULL,
    subscription TEXT,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (app_id, user_id, token),
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX devices_token ON devices (app_id, token);

CREATE TABLE preferences (
    app_id  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    doc     TEXT NOT NULL,
    PRIMARY KEY (app_id, user_id),
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
) STRICT;

CREATE TABLE provider_configs (
    app_id  TEXT NOT NULL,
    channel TEXT NOT NULL,
    sealed  BLOB NOT NULL,
    PRIMARY KEY (app_id, channel)
) STRICT;

CREATE TABLE notifications (
    app_id     TEXT NOT NULL,
    id         TEXT NOT NULL,
    category   TEXT NOT NULL DEFAULT '',
    priority   TEXT NOT NULL DEFAULT '',
    content    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE deliveries (
    id                  TEXT PRIMARY KEY,
    app_id              TEXT NOT NULL,
    notification_id     TEXT NOT NULL,
    user_id             TEXT NOT NULL DEFAULT '',
    channel             TEXT NOT NULL,
    priority            TEXT NOT NULL DEFAULT '',
    address             TEXT NOT NULL DEFAULT '',
    device_id           TEXT NOT NULL DEFAULT '',
    platform            TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL,
    reason              TEXT NOT NULL DEFAULT '',
    provider            TEXT NOT NULL DEFAULT '',
    provider_message_id TEXT NOT NULL DEFAULT '',
    attempts            INTEGER NOT NULL DEFAULT 0,
    due_at              INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX deliveries_notification ON deliveries (app_id, notification_id);
-- notification_id too, so that the EXISTS of a user filter is one lookup.
CREATE INDEX deliveries_user ON deliveries (app_id, user_id, notification_id);
-- The reconciler's scan; the predicate is the exact text of its query so
-- that SQLite's planner can use the partial index.
CREATE INDEX deliveries_due ON deliveries (due_at)
    WHERE status IN ('accepted', 'queued', 'sending');

-- Events are clustered by notification (WITHOUT ROWID), so that a
-- notification's timeline is one range read and an event one B-tree
-- insert. seq orders them; the store assigns it (see nextSeq).
CREATE TABLE events (
    app_id          TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    delivery_id     TEXT NOT NULL DEFAULT '',
    channel         TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    attempt         INTEGER NOT NULL DEFAULT 0,
    provider        TEXT NOT NULL DEFAULT '',
    detail          TEXT NOT NULL DEFAULT '',
    at              INTEGER NOT NULL,
    PRIMARY KEY (app_id, notification_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE idempotency (
    app_id          TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    BLOB,
    notification_id TEXT NOT NULL DEFAULT '',
    response        BLOB,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (app_id, key)
) STRICT;
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

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
