package track

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestAcceptedAtReadsTheIDsTime(t *testing.T) {
	before := time.Now().Truncate(time.Millisecond)
	nid := uuid.Must(uuid.NewV7())
	after := time.Now()
	// A delivery id: the notification's first 8 bytes, then a hash, as version 8.
	did := nid
	did[6] = did[6]&0x0f | 0x80
	for _, id := range []uuid.UUID{nid, did} {
		got, ok := acceptedAt(id.String())
		if !ok || got.Before(before) || got.After(after) {
			t.Errorf("acceptedAt(%s) = %v, %v; want between %v and %v", id, got, ok, before, after)
		}
	}
	for _, bad := range []string{uuid.NewString(), "not-a-uuid", ""} {
		if _, ok := acceptedAt(bad); ok {
			t.Errorf("acceptedAt(%q) ok, want not", bad)
		}
	}
}
