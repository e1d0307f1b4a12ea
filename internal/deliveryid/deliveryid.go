// Package deliveryid derives delivery ids from their notification's id
// and what they address, so that writing the same delivery twice (a
// repeated accept, a fallback step taken again) names the same row.
package deliveryid

import (
	"crypto/sha1"

	"github.com/google/uuid"

	"github.com/heraldhq/herald"
)

// New derives a delivery's id from its notification's id and key:
// deterministic, and time-ordered like the notification's UUIDv7, so that
// the log's indexes grow at their end instead of at random pages. It is a
// UUIDv8: the notification id's first eight bytes (its millisecond
// timestamp and random bits), then eight bytes of a SHA-1 over the
// notification id and the key.
//
// The hash is uuid.NewSHA1(notification id, key)'s, computed here on a
// stack buffer with the notification id parsed once per notification.
func New(nid uuid.UUID, key string) string {
	var buf [256]byte
	h := sha1.Sum(append(append(buf[:0], nid[:]...), key...))
	var id uuid.UUID
	copy(id[:8], nid[:8])
	copy(id[8:], h[8:16])
	id[6] = id[6]&0x0f | 0x80 // version 8
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id.String()
}

// Key is what a delivery's id is derived from besides its notification:
// its channel, user, address and, for one that is suppressed from the
// start, the reason (a user's suppressed no_address delivery has no
// address to tell it apart).
func Key(d herald.Delivery) string {
	return string(d.Channel) + "|" + d.UserID + "|" + d.Address + "|" + d.Reason
}
