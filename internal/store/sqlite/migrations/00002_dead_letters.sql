-- The dead-letter list (GET /v1/dead-letters): a small index, since only
-- dead deliveries enter it. The predicate is the exact text of the query's
-- so that SQLite's planner can use the partial index.

-- +goose Up
CREATE INDEX deliveries_dead ON deliveries (app_id, id) WHERE status = 'dead';

-- +goose Down
DROP INDEX deliveries_dead;
