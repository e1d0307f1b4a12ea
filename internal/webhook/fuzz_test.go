package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/webhook"
)

// verifies is a Standard Webhooks receiver: any of the space-separated
// "v1,<base64>" signatures must be HMAC-SHA256 of "id.timestamp.body".
func verifies(key []byte, id, timestamp string, body []byte, header string) bool {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + timestamp + "."))
	m.Write(body)
	want := m.Sum(nil)
	for _, s := range strings.Fields(header) {
		v, sig, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// FuzzSign: the header Sign makes is one "v1," signature a receiver
// following the spec accepts for that post, and for another post only
// when the spec signs the same text; it never holds a space or a line
// break that would split the header.
func FuzzSign(f *testing.F) {
	f.Add([]byte("whsec-key-32-bytes-long-0123456"), "msg_p5jXN8AQM9LWM0D4loKWxJek", int64(1614265330),
		[]byte(`{"test": 2432232314}`), "msg_p5jXN8AQM9LWM0D4loKWxJek", int64(1614265330), []byte(`{"test": 2432232315}`))
	f.Add([]byte("k"), "a.1", int64(2), []byte("x"), "a", int64(12), []byte("x"))
	f.Add([]byte{}, "", int64(-1), []byte{}, "", int64(-1), []byte("\n"))
	f.Fuzz(func(t *testing.T, key []byte, id1 string, ts1 int64, body1 []byte, id2 string, ts2 int64, body2 []byte) {
		h := webhook.Sign(key, id1, ts1, body1)
		if !strings.HasPrefix(h, "v1,") || strings.ContainsAny(h, " \r\n") {
			t.Fatalf("Sign = %q", h)
		}
		if b, err := base64.StdEncoding.Strict().DecodeString(h[3:]); err != nil || len(b) != sha256.Size {
			t.Fatalf("Sign = %q: not base64 of 32 bytes", h)
		}
		s1, s2 := strconv.FormatInt(ts1, 10), strconv.FormatInt(ts2, 10)
		if !verifies(key, id1, s1, body1, h) {
			t.Fatalf("Sign(%q, %d, %q) does not verify", id1, ts1, body1)
		}
		same := id1+"."+s1+"."+string(body1) == id2+"."+s2+"."+string(body2)
		if got := verifies(key, id2, s2, body2, h); got != same {
			t.Fatalf("signature of (%q, %d, %q) verifies for (%q, %d, %q): %v", id1, ts1, body1, id2, ts2, body2, got)
		}
	})
}
