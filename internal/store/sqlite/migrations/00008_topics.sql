-- Topics, their subscribers, and the fan-out of each notification sent to
-- a topic. A subscriber row goes with its user (ON DELETE CASCADE). The
-- fan-out row is the fan-out's progress: cursor is the last subscriber
-- (user id, in byte order) whose deliveries are in the log, written in
-- the same transaction as them, so a fan-out resumes after it.

-- +goose Up
CREATE TABLE topics (
    app_id     TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, name)
) STRICT;

CREATE TABLE topic_subscribers (
    app_id     TEXT NOT NULL,
    topic      TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, topic, user_id),
    FOREIGN KEY (app_id, topic) REFERENCES topics (app_id, name) ON DELETE CASCADE,
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX topic_subscribers_user ON topic_subscribers (app_id, user_id);

CREATE TABLE fanouts (
    app_id          TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    topic           TEXT NOT NULL,
    request         TEXT NOT NULL, -- channels and schedule of the send, JSON
    cursor          TEXT NOT NULL DEFAULT '',
    recipients      INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (app_id, notification_id)
) STRICT;
CREATE INDEX fanouts_running ON fanouts (updated_at) WHERE status = 'running';

-- +goose Down
DROP TABLE fanouts;
DROP TABLE topic_subscribers;
DROP TABLE topics;
