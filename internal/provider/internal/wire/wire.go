// Package wire holds the small pieces of the providers' wire protocols
// that several provider kinds share: the Retry-After header and the
// deterministic Message-ID of an email.
package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxWait caps a server-given wait, so that a bad header cannot park a
// delivery for years.
const MaxWait = 24 * time.Hour

// RetryAfter reads a Retry-After header value (seconds or an HTTP date,
// RFC 9110 §10.2.3) as a wait from now, at most MaxWait; zero when absent
// or past.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return Clamp(time.Duration(min(n, int64(MaxWait/time.Second))) * time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		return Clamp(t.Sub(now))
	}
	return 0
}

// Clamp bounds a wait to [0, MaxWait].
func Clamp(d time.Duration) time.Duration { return min(max(d, 0), MaxWait) }

// MessageID is the id-left@domain part of an email's Message-ID for a
// delivery: the same for every attempt of the delivery, so that a repeat
// replaces rather than stacks. An id that is not a safe dot-atom is
// replaced by a hash of it.
func MessageID(deliveryID, domain string) string {
	left := deliveryID
	if !isDotAtom(left) {
		sum := sha256.Sum256([]byte(deliveryID))
		left = hex.EncodeToString(sum[:16])
	}
	return left + "@" + domain
}

// isDotAtom reports whether s is a safe id-left: letters, digits, '-', '_'
// and single inner dots.
func isDotAtom(s string) bool {
	if s == "" || len(s) > 200 || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}
