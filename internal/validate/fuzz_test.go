package validate_test

import (
	"crypto/ecdh"
	"encoding/base64"
	"net"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/validate"
)

// FuzzPhone: a number Phone accepts comes back in E.164 (a plus and at
// most 15 digits) made of the digits given, and is accepted again
// unchanged; anything without the leading plus is refused.
func FuzzPhone(f *testing.F) {
	for _, s := range []string{"+14155550100", "+1 415 555 0100", "+447911123456", "+4915123456789",
		"+1 (415) 555-0100", "+44 (0)20 7946 0958", "+8613800138000", "+33612345678", "+12345",
		"14155550100", "+", "++14155550100", "+1415555010a", "+٤١٥٥٥٥٠١٠٠", "+1\x00415", "+1-800-FLOWERS",
		"+14155550100;ext=12", "+14155550100 x12", "+" + strings.Repeat("9", 31)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := validate.Phone(in)
		if err != nil {
			if out != "" {
				t.Fatalf("Phone(%q) = %q with error %v", in, out, err)
			}
			return
		}
		if !strings.HasPrefix(in, "+") {
			t.Fatalf("Phone(%q) accepted a number without the leading +", in)
		}
		if len(out) < 2 || len(out) > 16 || out[0] != '+' || strings.Trim(out[1:], "0123456789") != "" {
			t.Fatalf("Phone(%q) = %q, not E.164", in, out)
		}
		// The number sent to is the digits given: none added (letters read
		// as digits), none dropped (an extension, a trunk prefix), but for
		// the customary "(0)" ("+44 (0)20 …").
		digits := func(s string) string {
			return strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return r
				}
				return -1
			}, s)
		}
		if digits(in) != out[1:] && digits(strings.Replace(in, "(0)", "", 1)) != out[1:] {
			t.Fatalf("Phone(%q) = %q: not the digits given", in, out)
		}
		again, err := validate.Phone(out)
		if err != nil || again != out {
			t.Fatalf("Phone(%q) = %q, but Phone(%q) = %q, %v", in, out, out, again, err)
		}
	})
}

// FuzzEmail: an address Email accepts is a bare address of at most 254
// bytes, valid UTF-8, with no control character or space that could
// break an SMTP command or a header line, and a non-empty local part and
// domain.
func FuzzEmail(f *testing.F) {
	for _, s := range []string{"a@example.com", "first.last+tag@sub.example.co.uk", "Ada <a@example.com>",
		"<a@example.com>", "a@", "@example.com", " a@example.com", "a@example.com, b@example.com",
		`"a b"@example.com`, "a@[127.0.0.1]", "a@example.com\r\nBcc: b@example.com", "a(comment)@example.com",
		"ü@example.com", "a@exämple.com", "a\xff@example.com", "a@b@c", "=?utf-8?q?a?=@example.com",
		strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if validate.Email(in) != nil {
			return
		}
		if len(in) > validate.MaxEmailLength || !utf8.ValidString(in) {
			t.Fatalf("Email accepted %q: too long or not UTF-8", in)
		}
		for _, r := range in {
			if r < 0x21 || r == 0x7f || r == '<' || r == '>' || r == ',' {
				t.Fatalf("Email accepted %q, which holds %q", in, r)
			}
		}
		at := strings.LastIndexByte(in, '@')
		if at <= 0 || at == len(in)-1 {
			t.Fatalf("Email accepted %q without a local part and a domain", in)
		}
	})
}

// FuzzDeviceToken: an accepted APNs token is an even number of hex
// digits within the bounds, an accepted FCM token uses only its
// alphabet, and a web device never takes a token.
func FuzzDeviceToken(f *testing.F) {
	for _, s := range []string{strings.Repeat("ab", 32), strings.Repeat("0", 63), strings.Repeat("f", 202),
		strings.Repeat("A", 152) + ":APA91b", strings.Repeat("x", 99), "", strings.Repeat("é", 60),
		strings.Repeat("ab", 31) + "g0"} {
		for _, p := range []string{"ios", "android", "web", "windows"} {
			f.Add(p, s)
		}
	}
	f.Fuzz(func(t *testing.T, platform, token string) {
		err := validate.DeviceToken(herald.Platform(platform), token)
		if err != nil {
			return
		}
		switch herald.Platform(platform) {
		case herald.PlatformIOS:
			if len(token) < 64 || len(token) > 200 || len(token)%2 != 0 || strings.Trim(token, "0123456789abcdefABCDEF") != "" {
				t.Fatalf("APNs token %q accepted", token)
			}
		case herald.PlatformAndroid:
			if len(token) < 100 || len(token) > 4096 ||
				strings.Trim(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:-") != "" {
				t.Fatalf("FCM token %q accepted", token)
			}
		default:
			t.Fatalf("platform %q took token %q", platform, token)
		}
	})
}

// FuzzWebPushSubscription: an accepted endpoint is an absolute https URL
// (http only on loopback) without credentials, an accepted p256dh decodes
// to a point on P-256, an accepted auth secret to 16 bytes; and the whole
// subscription is accepted exactly when each member is.
func FuzzWebPushSubscription(f *testing.F) {
	key := "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
	auth := "tBHItJI5svbpez7KI4CCXg"
	for _, c := range [][3]string{
		{"https://fcm.googleapis.com/fcm/send/abc", key, auth},
		{"http://127.0.0.1:8443/push/1", key + "=", auth + "=="},
		{"http://localhost/push", key, auth},
		{"http://push.example.com/1", key, auth},
		{"ftp://push.example.com/1", key, auth},
		{"https://user:pw@push.example.com/1", key, auth},
		{"https:opaque", key, auth},
		{"//push.example.com/1", key, auth},
		{"https://[::1]/x", key, auth},
		{"https://push.example.com/\xff", key, auth},
		{"https://push.example.com/1", "BA" + strings.Repeat("A", 85), auth},
		{"https://push.example.com/1", base64.RawURLEncoding.EncodeToString(make([]byte, 65)), auth},
		{"https://push.example.com/1", key, base64.RawURLEncoding.EncodeToString(make([]byte, 15))},
		{"https://push.example.com/1", key, "!!!"},
		{"", "", ""},
	} {
		f.Add(c[0], c[1], c[2])
	}
	f.Fuzz(func(t *testing.T, endpoint, p256dh, authSecret string) {
		errE := validate.WebPushEndpoint(endpoint)
		errP := validate.WebPushP256dh(p256dh)
		errA := validate.WebPushAuth(authSecret)
		sub := &herald.WebPushSubscription{Endpoint: endpoint}
		sub.Keys.P256dh, sub.Keys.Auth = p256dh, authSecret
		whole := validate.WebPushSubscription(sub)
		if (whole == nil) != (errE == nil && errP == nil && errA == nil) {
			t.Fatalf("subscription %+v: whole %v, members %v %v %v", sub, whole, errE, errP, errA)
		}
		if errE == nil {
			u, err := url.Parse(endpoint)
			if err != nil || !utf8.ValidString(endpoint) || u.Host == "" || u.User != nil || u.Opaque != "" ||
				len(endpoint) > validate.MaxEndpointLength {
				t.Fatalf("endpoint %q accepted", endpoint)
			}
			if u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname())) {
				t.Fatalf("endpoint %q accepted with scheme %q", endpoint, u.Scheme)
			}
		}
		if errP == nil {
			b := decode(t, p256dh)
			if len(b) != 65 {
				t.Fatalf("p256dh %q accepted: %d bytes", p256dh, len(b))
			}
			if _, err := ecdh.P256().NewPublicKey(b); err != nil {
				t.Fatalf("p256dh %q accepted: %v", p256dh, err)
			}
		}
		if errA == nil {
			if b := decode(t, authSecret); len(b) != 16 {
				t.Fatalf("auth %q accepted: %d bytes", authSecret, len(b))
			}
		}
	})
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback()
}

func decode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		t.Fatalf("%q accepted but does not decode: %v", s, err)
	}
	return b
}
