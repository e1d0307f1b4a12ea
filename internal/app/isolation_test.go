package app_test

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/httpapi"
)

// TestTenantIsolation covers every route of internal/httpapi (routes.go
// and tracking.go) with what isolation between apps means for it: a route
// that takes an id answers 404 to another app's key and leaves the owner's
// object untouched; a list or an aggregate never shows another app's
// objects; a write into the caller's namespace (PUT /v1/users/ada) makes
// the caller's own object and never touches another app's; a route
// outside /v1 says why it needs no key. A route missing from the tables
// fails the test, and so does a row for a route that no longer exists.
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
		{"POST /v1/keys/{id}/rotate", "/v1/keys/" + key.ID + "/rotate", map[string]any{"grace_period_seconds": 0}},
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
	}
	covered := map[string]bool{}
	cover := func(route string) {
		t.Helper()
		if covered[route] {
			t.Errorf("route %s is listed twice in the isolation tables", route)
		}
		covered[route] = true
	}
	// Lists and aggregates, checked before the other app makes objects of
	// its own: they must not show the owner's.
	for _, tc := range isolationLists(owner, other, key.ID, hook.ID) {
		cover(tc.route)
		t.Run(tc.route, func(t *testing.T) {
			owner.t, other.t = t, t
			defer func() { owner.t, other.t = t, t }()
			tc.check(t)
		})
	}
	owner.t, other.t = t, t
	for _, tc := range cases {
		cover(tc.route)
		method := strings.Fields(tc.route)[0]
		t.Run(tc.route, func(t *testing.T) {
			other.t = t
			if r := other.do(method, tc.path, tc.body); r.status != 404 {
				t.Fatalf("%s %s with another app's key: %d %s, want 404", method, tc.path, r.status, r.body)
			}
		})
	}
	other.t = t
	// The owner's key survived the other app's revoke and rotate.
	if got, ok := findKey(t, owner, key.ID); !ok || got.ExpiresAt != nil {
		t.Errorf("owner's key after the other app's revoke and rotate = %+v, %v; want it live, without expiry", got, ok)
	}

	// Writes into the caller's own namespace: each makes the caller's
	// object (checked below, or by the lists above staying empty).
	for _, route := range []string{
		"PUT /v1/users/{user_id}",           // the other app's ada is its own, checked below
		"PUT /v1/providers/{channel}",       // keyed by (app, channel); the owner's list is read back below
		"PUT /v1/templates/{name}",          // the other app's welcome starts at version 1, checked below
		"PUT /v1/categories/{name}",         // checked below
		"PUT /v1/topics/{name}/subscribers", // checked below
		"PUT /v1/app",                       // the caller's app only, checked below
		"POST /v1/keys",                     // a key of the caller's app; GET /v1/keys above
		"POST /v1/users/import",             // checked below
		"POST /v1/notifications",            // to the caller's users and topics, checked below
		"POST /v1/email/send",               // to addresses, as a notification of the caller's app
		"POST /v1/sms/send",                 // likewise
		"POST /v1/push/send",                // likewise
		"POST /v1/webhooks",                 // the caller's endpoints; GET /v1/webhooks below
	} {
		cover(route)
	}
	// Outside /v1: no API key, so nothing of an app to isolate, or a
	// credential of its own that names one object.
	for _, route := range []string{
		"GET /healthz",      // liveness, no data
		"GET /readyz",       // readiness, no data
		"GET /metrics",      // deployment-wide counters, no object of any app; keep it off the public network
		"GET /openapi.yaml", // the API description
		"GET /admin",        // static pages of the web UI, which call /v1 with the key an operator pastes
		"GET /admin/",       // likewise
		"GET /debug/pprof/", // operator diagnostics, only with --pprof
		"GET /debug/pprof/cmdline",
		"GET /debug/pprof/profile",
		"GET /debug/pprof/symbol",
		"POST /debug/pprof/symbol",
		"GET /debug/pprof/trace",
		"POST " + httpapi.TwilioStatusPath, // verified by Twilio's signature under the app's own credentials
		"POST /hooks/sendgrid/events",      // verified by SendGrid's signature; events name deliveries by id
		"GET /t/c/{token}",                 // signed tracking link of one delivery
		"GET /t/o/{token}",                 // likewise
		"GET /u/{token}",                   // signed unsubscribe link of one user
		"POST /u/{token}",                  // likewise
	} {
		cover(route)
	}

	var routes []string
	for _, file := range []string{"../httpapi/routes.go", "../httpapi/tracking.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`m\.Handle(?:Func)?\("((?:GET|PUT|POST|DELETE|PATCH) /[^"]*)"`).FindAllStringSubmatch(string(src), -1) {
			routes = append(routes, m[1])
		}
		if strings.Contains(string(src), `"POST "+TwilioStatusPath`) {
			routes = append(routes, "POST "+httpapi.TwilioStatusPath)
		}
	}
	if len(routes) < 50 {
		t.Fatalf("found only %d routes in routes.go and tracking.go: has the way routes are declared changed?", len(routes))
	}
	var missing []string
	known := map[string]bool{}
	for _, r := range routes {
		known[r] = true
		if !covered[r] {
			missing = append(missing, r)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("routes missing from the isolation tables: %v", missing)
	}
	var stale []string
	for r := range covered {
		if !known[r] {
			stale = append(stale, r)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("isolation tables list routes that do not exist: %v", stale)
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
	// The other app's settings and imports are its own.
	other.must(200, "PUT", "/v1/app", map[string]any{"default_locale": "fr"})
	var ownerApp struct {
		DefaultLocale string `json:"default_locale"`
	}
	if owner.must(200, "GET", "/v1/app", nil).decode(t, &ownerApp); ownerApp.DefaultLocale != "" {
		t.Errorf("another app's PUT /v1/app set the owner's default locale to %q", ownerApp.DefaultLocale)
	}
	other.must(200, "POST", "/v1/users/import", "user_id,email\nada,imported@example.com\n", "Content-Type", "text/csv")
	owner.must(200, "GET", "/v1/users/ada", nil).decode(t, &u)
	if u.Email != "ada@example.com" {
		t.Errorf("another app's import changed the owner's user: email %q", u.Email)
	}
	other.must(200, "PUT", "/v1/providers/email", []map[string]any{{"kind": "smtp", "settings": map[string]any{
		"endpoint": "smtp.example.com:587", "from": "other@example.com"}}})
	var provs struct{ Providers []struct{ Kind string } }
	if owner.must(200, "GET", "/v1/providers/email", nil).decode(t, &provs); len(provs.Providers) != 1 || provs.Providers[0].Kind != "log" {
		t.Errorf("owner's email providers after the other app's PUT = %+v, want its log provider", provs)
	}
}

type isolationList struct {
	route string
	check func(t *testing.T)
}

// isolationLists are the list and aggregate routes, each with a check
// that the other app sees none of the owner's objects while the owner does.
func isolationLists(owner, other *api, keyID, hookID string) []isolationList {
	var ids struct {
		Data []struct {
			ID   string
			Name string
		}
	}
	has := func(t *testing.T, c *api, path, id string) bool {
		t.Helper()
		ids.Data = nil
		c.must(200, "GET", path, nil).decode(t, &ids)
		for _, d := range ids.Data {
			if d.ID == id || d.Name == id {
				return true
			}
		}
		return false
	}
	empty := func(t *testing.T, path string) {
		t.Helper()
		ids.Data = nil
		if other.must(200, "GET", path, nil).decode(t, &ids); len(ids.Data) != 0 {
			t.Errorf("other app's GET %s lists %+v, want nothing", path, ids.Data)
		}
	}
	ownerHasOtherNot := func(path, id string) func(t *testing.T) {
		return func(t *testing.T) {
			if !has(t, owner, path, id) {
				t.Fatalf("owner's GET %s does not list %s", path, id)
			}
			empty(t, path)
		}
	}
	// totalOf polls an aggregate of the owner until it counts something,
	// then requires the other app's to count nothing.
	aggregate := func(path string, count func(t *testing.T, c *api) int64) func(t *testing.T) {
		return func(t *testing.T) {
			deadline := time.Now().Add(10 * time.Second)
			for count(t, owner) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("owner's GET %s never counted its notification", path)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if n := count(t, other); n != 0 {
				t.Errorf("other app's GET %s counts %d, want 0", path, n)
			}
		}
	}
	return []isolationList{
		{"GET /v1/keys", func(t *testing.T) {
			if !has(t, owner, "/v1/keys", keyID) {
				t.Fatalf("owner's GET /v1/keys does not list %s", keyID)
			}
			if has(t, other, "/v1/keys", keyID) || len(ids.Data) != 1 {
				t.Errorf("other app's GET /v1/keys lists %+v, want only its own initial key", ids.Data)
			}
		}},
		{"GET /v1/notifications", func(t *testing.T) {
			owner.must(200, "GET", "/v1/notifications", nil).decode(t, &ids)
			if len(ids.Data) == 0 {
				t.Fatal("owner's GET /v1/notifications is empty")
			}
			empty(t, "/v1/notifications")
		}},
		{"GET /v1/webhooks", ownerHasOtherNot("/v1/webhooks", hookID)},
		{"GET /v1/templates", ownerHasOtherNot("/v1/templates", "welcome")},
		{"GET /v1/categories", ownerHasOtherNot("/v1/categories", "security")},
		// The owner has no dead letter here (its delivery goes to the log
		// provider); the other app's list must be empty all the same.
		{"GET /v1/dead-letters", func(t *testing.T) { empty(t, "/v1/dead-letters") }},
		{"GET /v1/analytics", aggregate("/v1/analytics", func(t *testing.T, c *api) int64 {
			var a struct{ Total int64 }
			c.must(200, "GET", "/v1/analytics", nil).decode(t, &a)
			return a.Total
		})},
		{"GET /v1/stats", aggregate("/v1/stats", func(t *testing.T, c *api) int64 {
			var st struct{ Totals map[string]int64 }
			c.must(200, "GET", "/v1/stats", nil).decode(t, &st)
			var n int64
			for _, v := range st.Totals {
				n += v
			}
			return n
		})},
		{"GET /v1/app", func(t *testing.T) {
			var mine, theirs struct{ ID, Name string }
			owner.must(200, "GET", "/v1/app", nil).decode(t, &mine)
			other.must(200, "GET", "/v1/app", nil).decode(t, &theirs)
			if mine.Name != "owner" || theirs.Name != "other" || mine.ID == theirs.ID {
				t.Errorf("GET /v1/app: owner sees %+v, other sees %+v", mine, theirs)
			}
		}},
	}
}
