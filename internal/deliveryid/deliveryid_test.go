package deliveryid

import (
	"testing"

	"github.com/google/uuid"
)

// TestNewUnchanged: delivery ids are derived as they always were (from
// uuid.NewSHA1), so a notification accepted again names the same
// deliveries whichever version of Herald derived them.
func TestNewUnchanged(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "email||ada@example.com|", "push|u1|" + string(make([]byte, 300)) + "|opted_out"} {
		nid := uuid.Must(uuid.NewV7())
		h := uuid.NewSHA1(nid, []byte(key))
		var want uuid.UUID
		copy(want[:8], nid[:8])
		copy(want[8:], h[8:])
		want[6] = want[6]&0x0f | 0x80
		want[8] = want[8]&0x3f | 0x80
		if got := New(nid, key); got != want.String() {
			t.Errorf("New(%s, %.20q) = %s, want %s", nid, key, got, want)
		}
	}
}
