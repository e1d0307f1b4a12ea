package httpapi

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/validate"
)

// badRequest fails unless err is what decoding promises for bad input: a
// 400, 413 or 422, the 422 naming at least one field.
func badRequest(t *testing.T, err error) {
	t.Helper()
	var e *herald.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a herald.Error", err, err)
	}
	switch e.Code {
	case herald.CodeMalformed, herald.CodeTooLarge:
	case herald.CodeInvalid:
		if len(e.Fields) == 0 {
			t.Fatalf("422 without a field: %v", err)
		}
		for _, f := range e.Fields {
			if f.Field == "" {
				t.Fatalf("422 naming an empty field: %v", err)
			}
		}
	default:
		t.Fatalf("error code %q for bad input: %v", e.Code, err)
	}
}

// accepted fails if decodeJSON took data that is not one valid JSON
// value or that carries a NUL, which the store cannot keep.
func accepted(t *testing.T, data []byte) {
	t.Helper()
	if !json.Valid(data) {
		t.Fatalf("decoded %q, which is not valid JSON", data)
	}
	if _, nul := findNUL(data); nul {
		t.Fatalf("decoded %q, which holds a NUL", data)
	}
}

// FuzzDecodeSend: a POST /v1/notifications body either fails as a 400 or
// a 422 naming a field, or becomes a request whose every recipient has
// exactly one address, whose channels, category and priority are valid,
// and which has content or a template.
func FuzzDecodeSend(f *testing.F) {
	for _, s := range []string{
		`{"to": [{"user_id": "ada"}], "content": {"body": "hi"}}`,
		`{"to": [{"email": "a@example.com"}, {"phone": "+14155550100"}, {"topic": "news"}], "channels": ["push", "email"],
		  "category": "transactional", "priority": "high", "content": {"title": "t", "body": "b", "data": {"n": 1, "b": true}}}`,
		`{"to": [{"user_id": "ada"}], "template": "welcome", "data": {"name": "Ada"}, "template_version": 3}`,
		`{"to": [{"user_id": "ada"}], "fallback": ["push", "sms"], "fallback_window": "10m", "content": {"body": "x"}}`,
		`{"to": [{"user_id": "ada"}], "content": {"body": "hi"}, "send_at": "2026-12-01T09:00:00Z"}`,
		`{"to": [{"user_id": "ada"}], "content": {"body": "hi"}, "send_at_local": "09:00", "event_id": "e1"}`,
		`{"to": [{"user_id": "ada", "email": "a@example.com"}], "content": {"body": "hi"}}`,
		`{"to": [], "content": null}`, `{"to": {"user_id": "ada"}}`, `{"to": [{"user_id": 1}]}`,
		`{"to": [{"user_id": "a/b"}], "content": {"data": {"x": [1]}}}`, `{"TO": [{"USER_ID": "ada"}], "Content": {"Body": "x"}}`,
		`{"to": [{"user_id": "ada"}], "template_version": 1e400}`, `{"to": [{"user_id": "ada"}], "template_version": 1.5}`,
		`{"to": [{"user_id": "a\u0000"}]}`, `{"a": 1} {"b": 2}`, `[`, ``, `null`, "\xff\xfe", `{"to": [{"user_id": "ada"}]}x`,
		`{"to": [{"user_id": "ada"}], "to": [{"email": "a@example.com"}], "content": {"body": "dup"}}`,
		strings.Repeat("[", 200) + strings.Repeat("]", 200),
	} {
		f.Add([]byte(s))
	}
	s := &server{maxRecipients: 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		var body sendRequestBody
		if err := decodeJSON(data, &body); err != nil {
			badRequest(t, err)
			return
		}
		accepted(t, data)
		req, err := s.sendRequest(body)
		if err != nil {
			badRequest(t, err)
			return
		}
		if len(req.To) == 0 || len(req.To) > s.maxRecipients {
			t.Fatalf("%d recipients accepted", len(req.To))
		}
		for i, rc := range req.To {
			if !oneAddress(rc) {
				t.Fatalf("recipient %d %+v accepted without exactly one address", i, rc)
			}
			if rc.UserID != "" && !validUserID(rc.UserID) {
				t.Fatalf("user id %q accepted", rc.UserID)
			}
			if rc.Topic != "" && validate.Topic(rc.Topic) != nil {
				t.Fatalf("topic %q accepted", rc.Topic)
			}
		}
		for _, c := range append(append([]herald.Channel{}, req.Channels...), req.Fallback...) {
			if !c.Valid() {
				t.Fatalf("channel %q accepted", c)
			}
		}
		if req.Category != "" && validate.Category(req.Category) != nil {
			t.Fatalf("category %q accepted", req.Category)
		}
		if req.Priority != "" && !req.Priority.Valid() {
			t.Fatalf("priority %q accepted", req.Priority)
		}
		if body.Content == nil && req.Template == "" {
			t.Fatal("accepted with neither content nor template")
		}
	})
}

// FuzzDecodeDevice: a POST /v1/users/{id}/devices body either fails as a
// 400 or a 422 naming a field, or becomes a device the validate package
// accepts: decoding never lets through what validation refuses.
func FuzzDecodeDevice(f *testing.F) {
	key := "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
	for _, s := range []string{
		`{"platform": "ios", "token": "` + strings.Repeat("ab", 32) + `"}`,
		`{"platform": "android", "token": "` + strings.Repeat("A", 140) + `:APA91b"}`,
		`{"platform": "web", "subscription": {"endpoint": "https://push.example.com/1", "expirationTime": null,
		  "keys": {"p256dh": "` + key + `", "auth": "tBHItJI5svbpez7KI4CCXg"}}}`,
		`{"platform": "web", "subscription": {"endpoint": "http://push.example.com/1", "keys": {"p256dh": "` + key + `", "auth": "tBHItJI5svbpez7KI4CCXg"}}}`,
		`{"platform": "web", "token": "x", "subscription": {"endpoint": "https://p/1", "keys": {"p256dh": "BA", "auth": "AA"}}}`,
		`{"platform": "ios", "subscription": {}}`, `{"platform": "windows", "token": "x"}`, `{"platform": "ios", "token": 5}`,
		`{"platform": "web", "subscription": {"endpoint": "https://p/1", "expirationTime": "soon"}}`,
		`{"platform": "web", "subscription": []}`, `{}`, `[]`, `"ios"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req addDeviceRequest
		if err := decodeJSON(data, &req); err != nil {
			badRequest(t, err)
			return
		}
		accepted(t, data)
		d, err := deviceFromRequest(req)
		if err != nil {
			badRequest(t, err)
			return
		}
		switch d.Platform {
		case herald.PlatformWeb:
			if err := validate.WebPushSubscription(d.Subscription); err != nil || d.Token != d.Subscription.Endpoint {
				t.Fatalf("web device %+v accepted: %v", d, err)
			}
		case herald.PlatformIOS, herald.PlatformAndroid:
			if err := validate.DeviceToken(d.Platform, d.Token); err != nil || d.Subscription != nil {
				t.Fatalf("device %+v accepted: %v", d, err)
			}
		default:
			t.Fatalf("device of platform %q accepted", d.Platform)
		}
	})
}
