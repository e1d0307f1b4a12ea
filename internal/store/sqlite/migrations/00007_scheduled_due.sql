-- Scheduled deliveries (send_at, quiet hours, deferring caps) wait in the
-- log with their due time, like retries: the reconciler's scan and its
-- partial index cover them too. The predicate is the exact text of the
-- scan's, so that the planner can use the index.

-- +goose Up
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (due_at)
    WHERE status IN ('accepted', 'queued', 'scheduled', 'sending');

-- +goose Down
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (due_at)
    WHERE status IN ('accepted', 'queued', 'sending');
