-- The SMS-pumping guard of an app: the regions it may send SMS to (ISO
-- 3166 alpha-2 codes, comma-separated, empty for all) and its daily SMS
-- budget (0 for none), and the count of SMS accepted per app and UTC day,
-- with whether that day's warning (80%) and exceeded alert went out.

-- +goose Up
ALTER TABLE apps ADD COLUMN sms_allowed_countries TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN sms_daily_budget INTEGER NOT NULL DEFAULT 0;
CREATE TABLE sms_budget_days (
    app_id   TEXT NOT NULL,
    day      TEXT NOT NULL,
    used     INTEGER NOT NULL,
    warned   INTEGER NOT NULL DEFAULT 0,
    exceeded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, day)
) STRICT;

-- +goose Down
DROP TABLE sms_budget_days;
ALTER TABLE apps DROP COLUMN sms_daily_budget;
ALTER TABLE apps DROP COLUMN sms_allowed_countries;
