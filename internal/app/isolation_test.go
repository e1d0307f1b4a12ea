package app_test

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestTenantIsolation: every /v1 route that takes an id answers 404 to
// another app's key, and leaves the owner's object untouched. The table is
// checked against internal/httpapi/routes.go, so a new route with an id
// cannot be added without a row here.
func TestTenantIsolation(t *testing.T) {
	a := start(t, testConfig(t))
	owner := newAPI(t, a, newApp(t, a, "owner"))
	other := newAPI(t, a, newApp(t, a, "other"))

	owner.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com"})
	var dev struct{ ID string }
	owner.must(201, "POST", "/v1/users/ada/devices", map[string]any{"platform": "android", "token": strings.Repeat("f", 140)}).decode(t, &dev)
	owner.must(200, "PUT", "/v1/users/ada/preferences", map[string]any{"channels": map[string]bool{"sms": false}})
	owner.must(200, "PUT", "/v1/providers/email", []map[string]any{{"kind": "log"}})
	var key struct{ ID string }
	owner.must(201, "POST", "/v1/keys", map[string]any{"name": "ci", "scope": "send"}).decode(t, &key)
	var hook struct{ ID string }
	owner.must(201, "POST", "/v1/webhooks", map[string]any{"url": "https://hooks.example.com/owner",
		"events": []string{"user.unsubscribed"}}).decode(t, &hook)
	owner.must(201, "PUT", "/v1/categories/security", map[string]any{"critical": true})
	owner.must(201, "PUT", "/v1/templates/welcome", map[string]any{"sms": map[string]any{"text": "Hi {{.name}}"}})
	owner.must(200, "PUT", "/v1/topics/news/subscribers", map[string]any{"add": []string{"ada"}})
	var n struct {
		ID         string
		Deliveries []struct{ ID string }
	}
	owner.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "content": map[string]any{"body": "hi"}}).decode(t, &n)

	cases := []struct {
		route string // as in routes.go
		path  string
		body  any
	}{
		{"DELETE /v1/keys/{id}", "/v1/keys/" + key.ID, nil},
		{"GET /v1/users/{user_id}", "/v1/users/ada", nil},
		{"DELETE /v1/users/{user_id}", "/v1/users/ada", nil},
		{"POST /v1/users/{user_id}/devices", "/v1/users/ada/devices", map[string]any{"platform": "android", "token": strings.Repeat("e", 140)}},
		{"GET /v1/users/{user_id}/devices", "/v1/users/ada/devices", nil},
		{"DELETE /v1/users/{user_id}/devices/{device_id}", "/v1/users/ada/devices/" + dev.ID, nil},
		{"GET /v1/users/{user_id}/preferences", "/v1/users/ada/preferences", nil},
		{"PUT /v1/users/{user_id}/preferences", "/v1/users/ada/preferences", map[string]any{"channels": map[string]bool{"email": false}}},
		{"GET /v1/notifications/{id}", "/v1/notifications/" + n.ID, nil},
		{"DELETE /v1/notifications/{id}", "/v1/notifications/" + n.ID, nil},
		{"GET /v1/providers/{channel}", "/v1/providers/email", nil},
		// Another app's delivery is 404, never 409 (which would tell it exists).
		{"POST /v1/dead-letters/{delivery_id}/replay", "/v1/dead-letters/" + n.Deliveries[0].ID + "/replay", nil},
		{"DELETE /v1/webhooks/{id}", "/v1/webhooks/" + hook.ID, nil},
		{"GET /v1/categories/{name}", "/v1/categories/security", nil},
		{"GET /v1/templates/{name}", "/v1/templates/welcome", nil},
		{"POST /v1/templates/{name}/preview", "/v1/templates/welcome/preview", map[string]any{"data": map[string]any{"name": "x"}}},
		{"DELETE /v1/templates/{name}", "/v1/templates/welcome", nil},
		{"GET /v1/topics/{name}", "/v1/topics/news", nil},
		{"GET /v1/topics/{name}/subscribers", "/v1/topics/news/subscribers", nil},
		// PUT /v1/users/{user_id}, PUT /v1/providers/{channel}, PUT /v1/templates/{name},
		// PUT /v1/categories/{name} and PUT /v1/topics/{name}/subscribers address the
		// caller's own namespace: they create the caller's object, never touch another app's.
		{"PUT /v1/users/{user_id}", "", nil},
		{"PUT /v1/providers/{channel}", "", nil},
		{"PUT /v1/templates/{name}", "", nil},
		{"PUT /v1/categories/{name}", "", nil},
		{"PUT /v1/topics/{name}/subscribers", "", nil},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.route] = true
		if tc.path == "" {
			continue
		}
		method := strings.Fields(tc.route)[0]
		t.Run(tc.route, func(t *testing.T) {
			other.t = t
			if r := other.do(method, tc.path, tc.body); r.status != 404 {
				t.Fatalf("%s %s with another app's key: %d %s, want 404", method, tc.path, r.status, r.body)
			}
		})
	}
	other.t = t

	src, err := os.ReadFile("../httpapi/routes.go")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, m := range regexp.MustCompile(`"((?:GET|PUT|POST|DELETE|PATCH) /v1/[^"]*\{[^"]*)"`).FindAllStringSubmatch(string(src), -1) {
		if !covered[m[1]] {
			missing = append(missing, m[1])
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("routes with an id missing from the isolation table: %v", missing)
	}

	// The other app's category of the same name is its own.
	other.must(201, "PUT", "/v1/categories/security", map[string]any{"critical": false})
	var cat struct{ Critical bool }
	if owner.must(200, "GET", "/v1/categories/security", nil).decode(t, &cat); !cat.Critical {
		t.Error("another app's PUT /v1/categories/security changed the owner's category")
	}

	// The other app creating a user with the same id makes its own user.
	other.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "someone-else@example.com"})
	// The owner's objects are untouched.
	var u struct{ Email string }
	owner.must(200, "GET", "/v1/users/ada", nil).decode(t, &u)
	if u.Email != "ada@example.com" {
		t.Errorf("owner's user email = %q", u.Email)
	}
	var devs struct{ Data []struct{ ID string } }
	owner.must(200, "GET", "/v1/users/ada/devices", nil).decode(t, &devs)
	if len(devs.Data) != 1 || devs.Data[0].ID != dev.ID {
		t.Errorf("owner's devices = %+v", devs)
	}
	var prefs struct{ Channels map[string]bool }
	owner.must(200, "GET", "/v1/users/ada/preferences", nil).decode(t, &prefs)
	if prefs.Channels["sms"] != false || len(prefs.Channels) != 1 {
		t.Errorf("owner's preferences = %+v", prefs)
	}
	owner.must(200, "GET", "/v1/notifications/"+n.ID, nil)
	// The other app saving a template of the same name starts its own at version 1.
	var tv struct {
		Version int
		SMS     struct{ Text string }
	}
	other.must(201, "PUT", "/v1/templates/welcome", map[string]any{"sms": map[string]any{"text": "other"}}).decode(t, &tv)
	owner.must(200, "GET", "/v1/templates/welcome", nil).decode(t, &tv)
	if tv.Version != 1 || tv.SMS.Text != "Hi {{.name}}" {
		t.Errorf("owner's template = %+v, want its own version 1 untouched", tv)
	}
	// Another app's topic of the same name is not the other app's to send to,
	// and its own topic of that name is its own.
	other.must(422, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"topic": "news"}},
		"content": map[string]any{"body": "hi"}})
	other.must(200, "PUT", "/v1/topics/news/subscribers", map[string]any{"add": []string{"ada"}})
	var topic struct{ Subscribers int }
	owner.must(200, "GET", "/v1/topics/news", nil).decode(t, &topic)
	if topic.Subscribers != 1 {
		t.Errorf("owner's topic has %d subscribers, want its 1", topic.Subscribers)
	}
	other.must(200, "PUT", "/v1/topics/news/subscribers", map[string]any{"remove": []string{"ada"}})
	owner.must(200, "GET", "/v1/topics/news", nil).decode(t, &topic)
	if topic.Subscribers != 1 {
		t.Errorf("owner's topic has %d subscribers after the other app's remove, want 1", topic.Subscribers)
	}
	var list struct{ Data []struct{ ID string } }
	other.must(200, "GET", "/v1/notifications", nil).decode(t, &list)
	if len(list.Data) != 0 {
		t.Errorf("other app lists %d notifications, want 0", len(list.Data))
	}
	other.must(200, "GET", "/v1/webhooks", nil).decode(t, &list)
	if len(list.Data) != 0 {
		t.Errorf("other app lists %d webhooks, want 0", len(list.Data))
	}
	owner.must(200, "GET", "/v1/webhooks", nil).decode(t, &list)
	if len(list.Data) != 1 || list.Data[0].ID != hook.ID {
		t.Errorf("owner's webhooks = %+v, want its one endpoint untouched", list.Data)
	}
}
