package app_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/app"
)

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// TestBadInput: every kind of bad request gets the right status as problem+json naming the field.
func TestBadInput(t *testing.T) { badInput(t, testConfig(t)) }

// TestBadInputPostgres: the same on Postgres, which refuses some text SQLite takes.
func TestBadInputPostgres(t *testing.T) { badInput(t, scaledConfig(t)) }

func badInput(t *testing.T, cfg app.Config) {
	a := start(t, cfg)
	admin := newAPI(t, a, newApp(t, a, "shop"))
	admin.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com"})

	var sendKey struct{ Key string }
	admin.must(201, "POST", "/v1/keys", map[string]any{"name": "billing", "scope": "send"}).decode(t, &sendKey)
	sender := newAPI(t, a, sendKey.Key)
	anonymous := newAPI(t, a, "")
	forged := newAPI(t, a, "hrd_a_0000000000000000000000000000000")

	huge := `{"to":[{"user_id":"ada"}],"content":{"body":"` + strings.Repeat("x", 2<<20) + `"}}`
	cases := []struct {
		name   string
		c      *api
		method string
		path   string
		body   any
		status int
		field  string
	}{
		{"malformed JSON", admin, "POST", "/v1/notifications", `{"to": [`, 400, ""},
		{"unknown field", admin, "PUT", "/v1/users/bob", `{"email": "b@example.com", "emial": "x"}`, 422, "emial"},
		{"wrong type", admin, "PUT", "/v1/users/bob", `{"email": 12}`, 422, "email"},
		{"NUL in text", admin, "PUT", "/v1/users/bob", `{"email": "b@example.com", "attributes": {"nick": "a\u0000"}}`, 422, "attributes.nick"},
		{"bad cursor", admin, "GET", "/v1/notifications?cursor=Z2FyYmFnZQ", nil, 422, "cursor"},
		{"invalid UTF-8 id", admin, "GET", "/v1/notifications/%FF%FE", nil, 404, ""},
		{"invalid email", admin, "PUT", "/v1/users/bob", map[string]any{"email": "not-an-email"}, 422, "email"},
		{"invalid phone", admin, "PUT", "/v1/users/bob", map[string]any{"phone": "+1555"}, 422, "phone"},
		{"invalid timezone", admin, "PUT", "/v1/users/bob", map[string]any{"timezone": "Mars/Olympus"}, 422, "timezone"},
		{"invalid direct email", admin, "POST", "/v1/notifications",
			map[string]any{"to": []any{map[string]any{"email": "nope@"}}, "content": map[string]any{"body": "hi"}}, 422, "to[0].email"},
		{"invalid direct phone", admin, "POST", "/v1/notifications",
			map[string]any{"to": []any{map[string]any{"email": "a@example.com"}, map[string]any{"phone": "12345"}}, "content": map[string]any{"body": "hi"}}, 422, "to[1].phone"},
		{"unknown channel", admin, "POST", "/v1/notifications",
			map[string]any{"to": []any{map[string]any{"user_id": "ada"}}, "channels": []string{"pigeon"}, "content": map[string]any{"body": "hi"}}, 422, "channels[0]"},
		{"unknown user", admin, "POST", "/v1/notifications",
			map[string]any{"to": []any{map[string]any{"user_id": "nobody"}}, "content": map[string]any{"body": "hi"}}, 422, "to[0].user_id"},
		{"no recipients", admin, "POST", "/v1/notifications", map[string]any{"to": []any{}, "content": map[string]any{"body": "hi"}}, 422, "to"},
		{"bad provider settings", admin, "PUT", "/v1/providers/email",
			[]map[string]any{{"kind": "smtp", "settings": map[string]any{"endpoint": "127.0.0.1:25"}}}, 422, "[0].settings.from"},
		{"unknown provider kind", admin, "PUT", "/v1/providers/email", []map[string]any{{"kind": "carrier-pigeon"}}, 422, "[0].kind"},
		{"channel endpoint, unreachable channel", admin, "POST", "/v1/sms/send",
			map[string]any{"to": []any{map[string]any{"email": "a@example.com"}}, "content": []any{map[string]any{"type": "text/plain", "value": "x"}}}, 422, "to"},
		{"channel endpoint, two-line subject", admin, "POST", "/v1/email/send",
			map[string]any{"to": []any{map[string]any{"email": "a@example.com"}}, "subject": "a\nb", "content": []any{map[string]any{"type": "text/plain", "value": "x"}}}, 422, "subject"},
		{"empty provider list", admin, "PUT", "/v1/providers/email", []any{}, 422, "body"},
		{"oversized body", admin, "POST", "/v1/notifications", huge, 413, ""},
		{"fallback to a topic", admin, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"topic": "news"}},
			"fallback": []string{"push", "sms"}, "content": map[string]any{"body": "hi"}}, 422, "fallback"},
		{"send_at and send_at_local", admin, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
			"content": map[string]any{"body": "hi"}, "send_at": "2026-12-01T09:00:00Z", "send_at_local": "09:00"}, 422, "send_at_local"},
		{"send_at_local not a time", admin, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
			"content": map[string]any{"body": "hi"}, "send_at_local": "9am"}, 422, "send_at_local"},
		{"send_at too far ahead", admin, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
			"content": map[string]any{"body": "hi"}, "send_at": "2099-01-01T00:00:00Z"}, 422, "send_at"},
		{"analytics, from not a time", admin, "GET", "/v1/analytics?from=yesterday", nil, 422, "from"},
		{"analytics, from after to", admin, "GET", "/v1/analytics?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", nil, 422, "from"},
		{"analytics, over a year", admin, "GET", "/v1/analytics?from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", nil, 422, "from"},
		{"analytics, unknown channel", admin, "GET", "/v1/analytics?channel=fax", nil, 422, "channel"},
		{"analytics, send key", sender, "GET", "/v1/analytics", nil, 403, ""},
		{"no key", anonymous, "GET", "/v1/users/ada", nil, 401, ""},
		{"unknown key", forged, "GET", "/v1/users/ada", nil, 401, ""},
		{"send key on an admin route", sender, "GET", "/v1/users/ada", nil, 403, ""},
		{"send key creating keys", sender, "POST", "/v1/keys", map[string]any{"name": "x", "scope": "admin"}, 403, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.t = t
			r := tc.c.do(tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("Content-Type %q, want application/problem+json", ct)
			}
			var p problem
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatalf("problem body %s: %v", r.body, err)
			}
			if p.Type == "" || p.Title == "" || p.Status != tc.status {
				t.Fatalf("problem %+v lacks type/title/status", p)
			}
			if tc.field == "" {
				return
			}
			for _, e := range p.Errors {
				if e.Field == tc.field {
					return
				}
			}
			t.Fatalf("problem %s does not name field %q", r.body, tc.field)
		})
	}

	// A send key may send and read what it sent.
	var acc struct{ ID string }
	sender.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"content": map[string]any{"body": "hi"}}).decode(t, &acc)
	sender.must(200, "GET", "/v1/notifications/"+acc.ID, nil)
}
