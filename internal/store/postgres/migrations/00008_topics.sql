-- Topics, their subscribers, and the fan-out of each notification sent to
-- a topic. A subscriber row goes with its user (ON DELETE CASCADE). The
-- fan-out row is the fan-out's progress: cursor is the last subscriber
-- (user id, in byte order, as in SQLite) whose deliveries are
-- in the log, written in the same transaction as them, so a fan-out
-- resumes after it.

-- +goose Up
CREATE TABLE topics (
    app_id     text NOT NULL,
    name       text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, name)
);

CREATE TABLE topic_subscribers (
    app_id     text NOT NULL,
    topic      text NOT NULL,
    user_id    text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, topic, user_id),
    FOREIGN KEY (app_id, topic) REFERENCES topics (app_id, name) ON DELETE CASCADE,
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
);
-- Pages of subscribers go in byte order of user id (as in SQLite).
CREATE INDEX topic_subscribers_page ON topic_subscribers (app_id, topic, user_id COLLATE "C");
CREATE INDEX topic_subscribers_user ON topic_subscribers (app_id, user_id);

CREATE TABLE fanouts (
    app_id          text NOT NULL,
    notification_id text NOT NULL,
    topic           text NOT NULL,
    request         jsonb NOT NULL, -- channels and schedule of the send
    cursor          text COLLATE "C" NOT NULL DEFAULT '',
    recipients      integer NOT NULL DEFAULT 0,
    status          text NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (app_id, notification_id)
);
CREATE INDEX fanouts_running ON fanouts (updated_at) WHERE status = 'running';

-- +goose Down
DROP TABLE fanouts;
DROP TABLE topic_subscribers;
DROP TABLE topics;
