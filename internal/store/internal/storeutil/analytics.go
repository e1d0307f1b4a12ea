package storeutil

import (
	"fmt"
	"time"

	"github.com/heraldhq/herald"
)

// IDLowerBound is the smallest delivery id accepted at t or later. A
// delivery id starts with its notification's UUIDv7, whose first 48 bits
// are the acceptance time in Unix milliseconds, and ids are lowercase hex,
// so their text order is their time order: a range of ids is a range of
// the primary key, which analytics scans instead of needing an index on
// created_at (one more B-tree for every accepted delivery to update).
func IDLowerBound(t time.Time) string {
	ms := max(t.UnixMilli(), 0)
	return fmt.Sprintf("%08x-%04x-0000-0000-000000000000", uint64(ms)>>16, uint64(ms)&0xffff)
}

// IDSlack widens an id range around its period: an id's time and the
// delivery's created_at are read from the clock a moment apart.
const IDSlack = time.Second

// FunnelStage is the CASE expression that ranks an event's status in the
// funnel: 1 sent, 2 delivered, 3 opened, 4 clicked.
const FunnelStage = `CASE e.status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'opened' THEN 3 WHEN 'clicked' THEN 4 ELSE 0 END`

// AddStage counts n deliveries whose furthest funnel stage is stage.
func AddStage(f *herald.Funnel, stage int, n int64) {
	if stage >= 1 {
		f.Sent += n
	}
	if stage >= 2 {
		f.Delivered += n
	}
	if stage >= 3 {
		f.Opened += n
	}
	if stage >= 4 {
		f.Clicked += n
	}
}
