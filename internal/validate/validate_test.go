package validate_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/validate"
)

func TestEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{"a@example.com", true},
		{"first.last+tag@sub.example.co.uk", true},
		{"", false},
		{"no-at-sign", false},
		{"Ada <a@example.com>", false},
		{"<a@example.com>", false},
		{"a@", false},
		{"@example.com", false},
		{" a@example.com", false},
		{"a@example.com, b@example.com", false},
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com", true}, // 254
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", false},
	}
	for _, tt := range tests {
		if err := validate.Email(tt.in); (err == nil) != tt.ok {
			t.Errorf("Email(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestPhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"+14155550100", "+14155550100", true},
		{"+1 415 555 0100", "+14155550100", true},
		{"+447911123456", "+447911123456", true},
		{"+4915123456789", "+4915123456789", true},
		{"14155550100", "", false},
		{"+12345", "", false},
		{"+1415555010a", "", false},
		{"", "", false},
		{"+" + strings.Repeat("1", 40), "", false},
	}
	for _, tt := range tests {
		got, err := validate.Phone(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Phone(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestTimezone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{"", true},
		{"UTC", true},
		{"Europe/Berlin", true},
		{"America/New_York", true},
		{"Local", false},
		{"Mars/Olympus", false},
		{"../../etc/passwd", false},
	}
	for _, tt := range tests {
		if err := validate.Timezone(tt.in); (err == nil) != tt.ok {
			t.Errorf("Timezone(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestLocale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{"", true},
		{"de", true},
		{"en-US", true},
		{"zh-Hant-TW", true},
		{"en_US", true}, // x/text accepts the underscore form and canonicalises it
		{"not a locale", false},
		{"e", false},
		{strings.Repeat("a", 40), false},
	}
	for _, tt := range tests {
		if err := validate.Locale(tt.in); (err == nil) != tt.ok {
			t.Errorf("Locale(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestDeviceToken(t *testing.T) {
	t.Parallel()
	apns := strings.Repeat("ab12", 16)
	fcm := "dQw4w9WgXcQ:APA91b" + strings.Repeat("A-_z9", 30)
	tests := []struct {
		p     herald.Platform
		token string
		ok    bool
	}{
		{herald.PlatformIOS, apns, true},
		{herald.PlatformIOS, strings.ToUpper(apns), true},
		{herald.PlatformIOS, apns[:62], false},
		{herald.PlatformIOS, apns[:63] + "g", false},
		{herald.PlatformIOS, apns + "a", false},
		{herald.PlatformIOS, strings.Repeat("ab", 101), false},
		{herald.PlatformAndroid, fcm, true},
		{herald.PlatformAndroid, fcm[:99], false},
		{herald.PlatformAndroid, fcm + " ", false},
		{herald.PlatformAndroid, fcm + "/", false},
		{herald.PlatformAndroid, strings.Repeat("a", 4097), false},
		{herald.PlatformWeb, "https://push.example.com/x", false},
		{herald.Platform("blackberry"), apns, false},
	}
	for _, tt := range tests {
		if err := validate.DeviceToken(tt.p, tt.token); (err == nil) != tt.ok {
			t.Errorf("DeviceToken(%s, %q) = %v, want ok=%v", tt.p, tt.token, err, tt.ok)
		}
	}
}

func TestWebPushSubscription(t *testing.T) {
	t.Parallel()
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256dh := base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes())
	auth := base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	offCurve := append([]byte{4}, []byte(strings.Repeat("\x01", 64))...)

	sub := func(endpoint, p256dh, auth string) *herald.WebPushSubscription {
		s := &herald.WebPushSubscription{Endpoint: endpoint}
		s.Keys.P256dh, s.Keys.Auth = p256dh, auth
		return s
	}
	tests := []struct {
		name    string
		sub     *herald.WebPushSubscription
		wantErr string // prefix of the message, "" when valid
	}{
		{"valid", sub("https://fcm.googleapis.com/fcm/send/abc", p256dh, auth), ""},
		{"padded keys", sub("https://push.example.com/x", p256dh+"=", base64.URLEncoding.EncodeToString(make([]byte, 16))), ""},
		{"http loopback", sub("http://127.0.0.1:8443/push/1", p256dh, auth), ""},
		{"http localhost", sub("http://localhost/push/1", p256dh, auth), ""},
		{"http ipv6 loopback", sub("http://[::1]:9/p", p256dh, auth), ""},
		{"nil", nil, "must"},
		{"http remote", sub("http://push.example.com/x", p256dh, auth), "endpoint"},
		{"relative", sub("/push/1", p256dh, auth), "endpoint"},
		{"ftp", sub("ftp://push.example.com/x", p256dh, auth), "endpoint"},
		{"userinfo", sub("https://u:p@push.example.com/x", p256dh, auth), "endpoint"},
		{"long", sub("https://push.example.com/"+strings.Repeat("a", 2048), p256dh, auth), "endpoint"},
		{"short p256dh", sub("https://push.example.com/x", p256dh[:40], auth), "keys.p256dh"},
		{"std base64 p256dh", sub("https://push.example.com/x", base64.StdEncoding.EncodeToString(key.PublicKey().Bytes())+"+/", auth), "keys.p256dh"},
		{"off curve", sub("https://push.example.com/x", base64.RawURLEncoding.EncodeToString(offCurve), auth), "keys.p256dh"},
		{"auth 15 bytes", sub("https://push.example.com/x", p256dh, base64.RawURLEncoding.EncodeToString(make([]byte, 15))), "keys.auth"},
		{"empty auth", sub("https://push.example.com/x", p256dh, ""), "keys.auth"},
	}
	for _, tt := range tests {
		err := validate.WebPushSubscription(tt.sub)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want one starting with %q", tt.name, err, tt.wantErr)
		}
	}
}
