-- A delivery of a fallback notification with a window carries the time
-- at which, still sent without a receipt, it hands over to the user's
-- next channel. The reconciler scans the partial index, which holds only
-- sent deliveries with such a time; a receipt (any status change) takes a
-- delivery out of it, and the step clears the time.

-- +goose Up
ALTER TABLE deliveries ADD COLUMN fallback_due INTEGER;
CREATE INDEX deliveries_fallback_due ON deliveries (fallback_due)
    WHERE status = 'sent' AND fallback_due IS NOT NULL;

-- +goose Down
DROP INDEX deliveries_fallback_due;
ALTER TABLE deliveries DROP COLUMN fallback_due;
