package app_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRequestCaps: every cap of docs/security.md answers its status, as
// problem+json naming the field where there is one, and nothing crashes.
func TestRequestCaps(t *testing.T) {
	a := start(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	c.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com"})

	overMiB := `{"x":"` + strings.Repeat("x", 1<<20) + `"}`
	many := make([]any, 1001)
	for i := range many {
		many[i] = map[string]any{"email": "a@example.com"}
	}
	send := func(extra map[string]any) map[string]any {
		req := map[string]any{"to": []any{map[string]any{"user_id": "ada"}}, "content": map[string]any{"body": "hi"}}
		for k, v := range extra {
			req[k] = v
		}
		return req
	}
	big := func(n int) string { return strings.Repeat("x", n) }
	countries := make([]string, 301)
	for i := range countries {
		countries[i] = "US"
	}
	cases := []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"body over 1 MiB, send", "POST", "/v1/notifications", overMiB, 413, ""},
		{"body over 1 MiB, channel send", "POST", "/v1/sms/send", overMiB, 413, ""},
		{"body over 1 MiB, user", "PUT", "/v1/users/bob", overMiB, 413, ""},
		{"body over 1 MiB, template", "PUT", "/v1/templates/big", overMiB, 413, ""},
		{"body over 1 MiB, providers", "PUT", "/v1/providers/email", overMiB, 413, ""},
		{"body over 1 MiB, webhook", "POST", "/v1/webhooks", overMiB, 413, ""},
		{"body over 1 MiB, app", "PUT", "/v1/app", overMiB, 413, ""},
		{"body over 1 MiB, preferences", "PUT", "/v1/users/ada/preferences", overMiB, 413, ""},
		{"body over 1 MiB, topic", "PUT", "/v1/topics/news/subscribers", overMiB, 413, ""},
		{"body over 64 KiB, Twilio callback", "POST", "/hooks/twilio/status", "MessageSid=" + big(70<<10), 413, ""},
		{"1001 recipients", "POST", "/v1/notifications", map[string]any{"to": many, "content": map[string]any{"body": "hi"}}, 422, "to"},
		{"content.body over 100,000 characters", "POST", "/v1/notifications", send(map[string]any{"content": map[string]any{"body": big(100_001)}}), 422, "content.body"},
		{"content.data over 4 KiB", "POST", "/v1/notifications", send(map[string]any{"content": map[string]any{"body": "hi", "data": map[string]string{"k": big(5000)}}}), 422, "content.data"},
		{"data over 64 KiB", "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
			"template": "welcome", "data": map[string]any{"k": big(70 << 10)}}, 422, "data"},
		{"attributes over 16 KiB", "PUT", "/v1/users/bob", map[string]any{"email": "b@example.com", "attributes": map[string]any{"k": big(17 << 10)}}, 422, "attributes"},
		{"template part over 64 KiB", "PUT", "/v1/templates/big", map[string]any{"email": map[string]any{"subject": "s", "text": big(65 << 10)}}, 422, "email.text"},
		{"webhook URL over 2048 characters", "POST", "/v1/webhooks", map[string]any{"url": "https://example.com/" + big(2048), "events": []string{"delivery.dead"}}, 422, "url"},
		{"limit over 500, notifications", "GET", "/v1/notifications?limit=501", nil, 422, "limit"},
		{"limit over 500, dead letters", "GET", "/v1/dead-letters?limit=501", nil, 422, "limit"},
		{"limit over 500, templates", "GET", "/v1/templates?limit=501", nil, 422, "limit"},
		{"limit over 500, subscribers", "GET", "/v1/topics/news/subscribers?limit=501", nil, 422, "limit"},
		{"over 300 SMS countries", "PUT", "/v1/app", map[string]any{"sms_allowed_countries": countries}, 422, "sms_allowed_countries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			r := c.do(tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.status, tc.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("Content-Type %q, want application/problem+json", ct)
			}
			var p problem
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatalf("problem body %.300s: %v", r.body, err)
			}
			if tc.field == "" {
				return
			}
			for _, e := range p.Errors {
				if e.Field == tc.field {
					return
				}
			}
			t.Fatalf("problem %.500s does not name field %q", r.body, tc.field)
		})
	}
}
