package app_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/app"
)

// malformedCase is one bad request: the status it must get (400, 413 or
// 422) and the field its problem must name ("" when the body as a whole
// is at fault).
type malformedCase struct {
	name   string
	method string
	path   string
	body   string
	status int
	field  string
}

// TestMalformedInput: every case of the table is refused with 400, 413 or
// 422 as problem+json naming the field, nothing is logged, queued or
// stored for it, and the process stays healthy.
func TestMalformedInput(t *testing.T) { malformedInput(t, testConfig(t)) }

// TestMalformedInputPostgres: the same on Postgres, which refuses some
// text SQLite takes.
func TestMalformedInputPostgres(t *testing.T) { malformedInput(t, scaledConfig(t)) }

func malformedInput(t *testing.T, cfg app.Config) {
	a := start(t, cfg)
	admin := newAPI(t, a, newApp(t, a, "shop"))
	admin.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com", "phone": "+14155550100"})

	cases := malformedCases()
	if len(cases) < 200 {
		t.Fatalf("the table has %d cases, want at least 200", len(cases))
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("two cases named %q", tc.name)
		}
		seen[tc.name] = true
		if tc.status != 400 && tc.status != 413 && tc.status != 422 {
			t.Fatalf("case %q expects %d", tc.name, tc.status)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			admin.t = t
			before := snapshot(t, admin)
			r := admin.do(tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Errorf("status %d, want %d: %.300s", r.status, tc.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			var p problem
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatalf("problem body %.300s: %v", r.body, err)
			}
			if p.Type == "" || p.Title == "" || p.Status != r.status {
				t.Errorf("problem %+v lacks type/title/status", p)
			}
			if tc.field != "" && !names(p, tc.field) {
				t.Errorf("problem %.300s does not name field %q", r.body, tc.field)
			}
			if after := snapshot(t, admin); after != before {
				t.Errorf("the request left something behind: before %+v, after %+v", before, after)
			}
			admin.must(200, "GET", "/healthz", nil)
		})
	}
	admin.t = t
	admin.must(200, "GET", "/healthz", nil)
	admin.must(200, "GET", "/readyz", nil)
}

func names(p problem, field string) bool {
	for _, e := range p.Errors {
		if e.Field == field {
			return true
		}
	}
	return false
}

// kept is what the app holds that a bad request could have added: the
// notifications in the log (deliveries are queued only from the log),
// whether user bob exists, and ada's devices.
type kept struct {
	notifications, devices int
	bob                    bool
}

func snapshot(t *testing.T, c *api) kept {
	t.Helper()
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	c.must(200, "GET", "/v1/notifications?limit=500", nil).decode(t, &list)
	var devices struct {
		Data []json.RawMessage `json:"data"`
	}
	c.must(200, "GET", "/v1/users/ada/devices", nil).decode(t, &devices)
	return kept{notifications: len(list.Data), devices: len(devices.Data), bob: c.do("GET", "/v1/users/bob", nil).status == 200}
}

// js encodes v as JSON; the table's bodies are mostly built from values.
func js(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(raw)
}

type obj = map[string]any

func badSendTo(to ...any) obj {
	return obj{"to": to, "content": obj{"body": "hi", "subject": "s"}}
}

func with(m obj, kv ...any) obj {
	out := obj{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

const (
	goodKey  = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
	goodAuth = "tBHItJI5svbpez7KI4CCXg"
)

func webDevice(endpoint, p256dh, auth string) string {
	return js(obj{"platform": "web", "subscription": obj{"endpoint": endpoint, "keys": obj{"p256dh": p256dh, "auth": auth}}})
}

func malformedCases() []malformedCase {
	var cs []malformedCase
	add := func(name, method, path, body string, status int, field string) {
		cs = append(cs, malformedCase{name, method, path, body, status, field})
	}
	send := func(name, body string, status int, field string) {
		add(name, "POST", "/v1/notifications", body, status, field)
	}
	putBob := func(name, body string, status int, field string) {
		add(name, "PUT", "/v1/users/bob", body, status, field)
	}
	device := func(name, body string, status int, field string) {
		add(name, "POST", "/v1/users/ada/devices", body, status, field)
	}

	// Phones: as a direct recipient and as a user's contact.
	for _, p := range []string{
		"14155550100", "4155550100", "+", "++14155550100", "+1", "+12345", "+1415555010a", "+1-800-FLOWERS",
		"+999999999999", "+0 415 555 0100", "+1 415 555 0100 0100 0100 0100 01", "+" + strings.Repeat("1", 40),
		"+1\u0000415", "+1\t415\n5550100", "+٤١٥٥٥٥٠١٠٠", "+14155550100;ext=1", "tel:+14155550100",
		"+1 (415) 555-01OO", "+44", "+447", "00447911123456", " ", "+1 415 555 0100 #2", "phone",
	} {
		send(fmt.Sprintf("phone %q as recipient", p), js(badSendTo(obj{"phone": p})), 422, "to[0].phone")
		putBob(fmt.Sprintf("phone %q of a user", p), js(obj{"phone": p}), 422, "phone")
	}
	// Emails.
	for _, e := range []string{
		"no-at-sign", "a@", "@example.com", "Ada <a@example.com>", "<a@example.com>", " a@example.com",
		"a@example.com ", "a@example.com, b@example.com", "a@b@c", "a@example.com\r\nBcc: b@example.com",
		`"a b"@example.com`, "a(comment)@example.com", "a..b@example.com", ".a@example.com", "a@-example-.com.",
		"a b@example.com", "a@exa mple.com", "a@\u0000example.com", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com",
		"=?utf-8?q?a?=", "mailto:a@example.com", "a@[999.1.1.1]", "a\\@example.com", "@", "a@@example.com",
	} {
		send(fmt.Sprintf("email %q as recipient", e), js(badSendTo(obj{"email": e})), 422, "to[0].email")
		putBob(fmt.Sprintf("email %q of a user", e), js(obj{"email": e}), 422, "email")
	}
	// Device tokens.
	for name, tok := range map[string]string{
		"short": strings.Repeat("ab", 31), "odd length": strings.Repeat("a", 65), "too long": strings.Repeat("ab", 101),
		"not hex": strings.Repeat("g", 64), "spaces": strings.Repeat("ab ", 22), "base64": strings.Repeat("q83v", 16) + "+/==",
		"unicode": strings.Repeat("é", 32), "empty": "", "uuid": "0198f2b4-7c1e-7000-8000-000000000001",
		"hex with 0x": "0x" + strings.Repeat("ab", 32),
	} {
		field := "token"
		device("APNs token "+name, js(obj{"platform": "ios", "token": tok}), 422, field)
	}
	for name, tok := range map[string]string{
		"short": strings.Repeat("A", 99), "too long": strings.Repeat("A", 4097), "slash": strings.Repeat("A", 120) + "/x",
		"plus": strings.Repeat("A", 120) + "+", "space": strings.Repeat("A", 60) + " " + strings.Repeat("A", 60),
		"unicode": strings.Repeat("ä", 100), "empty": "", "newline": strings.Repeat("A", 120) + "\n",
		"dot": strings.Repeat("A", 120) + ".", "equals": strings.Repeat("A", 120) + "==",
	} {
		device("FCM token "+name, js(obj{"platform": "android", "token": tok}), 422, "token")
	}
	device("unknown platform", js(obj{"platform": "windows", "token": strings.Repeat("ab", 32)}), 422, "platform")
	device("platform missing", js(obj{"token": strings.Repeat("ab", 32)}), 422, "platform")
	device("platform in capitals", js(obj{"platform": "IOS", "token": strings.Repeat("ab", 32)}), 422, "platform")
	device("ios with a subscription", js(obj{"platform": "ios", "token": strings.Repeat("ab", 32),
		"subscription": obj{"endpoint": "https://push.example.com/1"}}), 422, "subscription")
	device("token of the wrong type", `{"platform": "ios", "token": 1234}`, 422, "token")
	device("device body truncated", "{", 400, "")

	// Web push subscriptions.
	pad := func(n int) string { return base64.RawURLEncoding.EncodeToString(make([]byte, n)) }
	notOnCurve := "BA" + strings.Repeat("A", 84) // 65 bytes, 0x04 then zeros: not a point
	for _, c := range []struct{ name, endpoint, p256dh, auth, field string }{
		{"endpoint http", "http://push.example.com/1", goodKey, goodAuth, "subscription.endpoint"},
		{"endpoint ftp", "ftp://push.example.com/1", goodKey, goodAuth, "subscription.endpoint"},
		{"endpoint relative", "/push/1", goodKey, goodAuth, "subscription.endpoint"},
		{"endpoint scheme-relative", "//push.example.com/1", goodKey, goodAuth, "subscription.endpoint"},
		{"endpoint empty", "", goodKey, goodAuth, "subscription.endpoint"},
		{"endpoint with credentials", "https://user:pw@push.example.com/1", goodKey, goodAuth, "subscription.endpoint"},
		{"endpoint opaque", "https:push.example.com", goodKey, goodAuth, "subscription.endpoint"},
		{"endpoint javascript", "javascript:alert(1)", goodKey, goodAuth, "subscription.endpoint"},
		{"endpoint too long", "https://push.example.com/" + strings.Repeat("a", 2048), goodKey, goodAuth, "subscription.endpoint"},
		{"endpoint with a space", "https://push example.com/1", goodKey, goodAuth, "subscription.endpoint"},
		{"endpoint http on a private address", "http://10.0.0.1/push", goodKey, goodAuth, "subscription.endpoint"},
		{"p256dh empty", "https://push.example.com/1", "", goodAuth, "subscription.keys.p256dh"},
		{"p256dh not base64", "https://push.example.com/1", "!!!" + goodKey[3:], goodAuth, "subscription.keys.p256dh"},
		{"p256dh compressed point", "https://push.example.com/1", "Ag" + pad(32)[:42], goodAuth, "subscription.keys.p256dh"},
		{"p256dh 64 bytes", "https://push.example.com/1", pad(64), goodAuth, "subscription.keys.p256dh"},
		{"p256dh 66 bytes", "https://push.example.com/1", goodKey + "AA", goodAuth, "subscription.keys.p256dh"},
		{"p256dh not on the curve", "https://push.example.com/1", notOnCurve, goodAuth, "subscription.keys.p256dh"},
		{"p256dh standard base64", "https://push.example.com/1", strings.NewReplacer("-", "+", "_", "/").Replace(goodKey), goodAuth, "subscription.keys.p256dh"},
		{"auth empty", "https://push.example.com/1", goodKey, "", "subscription.keys.auth"},
		{"auth 15 bytes", "https://push.example.com/1", goodKey, pad(15), "subscription.keys.auth"},
		{"auth 17 bytes", "https://push.example.com/1", goodKey, pad(17), "subscription.keys.auth"},
		{"auth not base64", "https://push.example.com/1", goodKey, "%%%%%%%%%%%%%%%%%%%%%%", "subscription.keys.auth"},
		{"auth 32 bytes", "https://push.example.com/1", goodKey, pad(32), "subscription.keys.auth"},
	} {
		device("web push "+c.name, webDevice(c.endpoint, c.p256dh, c.auth), 422, c.field)
	}
	device("web push without a subscription", js(obj{"platform": "web"}), 422, "subscription")
	device("web push with a token", js(obj{"platform": "web", "token": "x",
		"subscription": obj{"endpoint": "https://push.example.com/1", "keys": obj{"p256dh": goodKey, "auth": goodAuth}}}), 422, "token")
	device("web push keys of the wrong type", `{"platform": "web", "subscription": {"endpoint": "https://push.example.com/1", "keys": ["a", "b"]}}`, 422, "subscription.keys")
	device("web push subscription a string", `{"platform": "web", "subscription": "https://push.example.com/1"}`, 422, "subscription")
	device("web push expirationTime a string", `{"platform": "web", "subscription": {"endpoint": "https://push.example.com/1", "expirationTime": "soon", "keys": {"p256dh": "`+goodKey+`", "auth": "`+goodAuth+`"}}}`, 422, "subscription.expirationTime")
	device("web push unknown key member", `{"platform": "web", "subscription": {"endpoint": "https://push.example.com/1", "keys": {"p256dh": "`+goodKey+`", "auth": "`+goodAuth+`", "secret": "x"}}}`, 422, "subscription.keys.secret")

	// JSON shapes of a send.
	ok := `"content": {"body": "hi"}`
	for _, c := range []struct {
		name, body string
		status     int
		field      string
	}{
		{"empty body", ``, 400, ""},
		{"whitespace body", " \n\t ", 400, ""},
		{"null body", `null`, 400, "body"},
		{"array body", `[]`, 422, "body"},
		{"string body", `"hello"`, 422, "body"},
		{"number body", `42`, 422, "body"},
		{"true body", `true`, 422, "body"},
		{"truncated", `{"to": [{"user_id": "ada"}], ` + ok, 400, ""},
		{"unclosed string", `{"to": [{"user_id": "ada}], ` + ok + `}`, 400, ""},
		{"single quotes", `{'to': [{'user_id': 'ada'}]}`, 400, ""},
		{"trailing comma", `{"to": [{"user_id": "ada"},], ` + ok + `}`, 400, ""},
		{"comment", `{"to": [{"user_id": "ada"}], /* hi */ ` + ok + `}`, 400, ""},
		{"trailing garbage", `{"to": [{"user_id": "ada"}], ` + ok + `}garbage`, 400, ""},
		{"two objects", `{"to": [{"user_id": "ada"}], ` + ok + `} {"to": []}`, 400, ""},
		{"NaN", `{"to": [{"user_id": "ada"}], ` + ok + `, "template_version": NaN}`, 400, ""},
		{"hex number", `{"to": [{"user_id": "ada"}], ` + ok + `, "template_version": 0x10}`, 400, ""},
		{"leading zero", `{"to": [{"user_id": "ada"}], ` + ok + `, "template_version": 01}`, 400, ""},
		{"BOM", "\ufeff" + `{"to": [{"user_id": "ada"}], ` + ok + `}`, 400, ""},
		{"non-UTF-8 bytes outside strings", "{\xff\xfe}", 400, ""},
		{"bad escape", `{"to": [{"user_id": "\x"}], ` + ok + `}`, 400, ""},
		{"raw control character in a string", "{\"to\": [{\"user_id\": \"a\x01b\"}], " + ok + "}", 400, ""},
		{"deep nesting of arrays", `{"to": ` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, 400, ""},
		{"deep nesting in data", `{"to": [{"user_id": "ada"}], "content": {"body": "x", "data": {"k": ` +
			strings.Repeat(`{"k": `, 5000) + `1` + strings.Repeat("}", 5000) + `}}}`, 422, "content.data.k"},
		{"unknown field", `{"to": [{"user_id": "ada"}], ` + ok + `, "colour": "red"}`, 422, "colour"},
		{"unknown field in a recipient", `{"to": [{"user_id": "ada", "name": "Ada"}], ` + ok + `}`, 422, "to[0].name"},
		{"unknown field in content", `{"to": [{"user_id": "ada"}], "content": {"body": "hi", "sound": "ping"}}`, 422, "content.sound"},
		{"to an object", `{"to": {"user_id": "ada"}, ` + ok + `}`, 422, "to"},
		{"to a string", `{"to": "ada", ` + ok + `}`, 422, "to"},
		{"to null", `{"to": null, ` + ok + `}`, 422, "to"},
		{"recipient a string", `{"to": ["ada"], ` + ok + `}`, 422, "to[0]"},
		{"recipient null", `{"to": [null], ` + ok + `}`, 422, "to[0]"},
		{"recipient empty", `{"to": [{}], ` + ok + `}`, 422, "to[0]"},
		{"recipient with two addresses", `{"to": [{"user_id": "ada", "email": "a@example.com"}], ` + ok + `}`, 422, "to[0]"},
		{"user_id a number", `{"to": [{"user_id": 123456}], ` + ok + `}`, 422, "to[0].user_id"},
		{"user_id with a slash", `{"to": [{"user_id": "a/b"}], ` + ok + `}`, 422, "to[0].user_id"},
		{"user_id too long", js(badSendTo(obj{"user_id": strings.Repeat("u", 129)})), 422, "to[0].user_id"},
		{"user_id with a control character", js(badSendTo(obj{"user_id": "a\u0007b"})), 422, "to[0].user_id"},
		{"user_id unknown", js(badSendTo(obj{"user_id": "nobody"})), 422, "to[0].user_id"},
		{"user_id with NUL", `{"to": [{"user_id": "a\u0000"}], ` + ok + `}`, 422, "to[0].user_id"},
		{"topic with a space", js(badSendTo(obj{"topic": "big news"})), 422, "to[0].topic"},
		{"two topics", js(badSendTo(obj{"topic": "a"}, obj{"topic": "b"})), 422, "to[1].topic"},
		{"channels a string", `{"to": [{"user_id": "ada"}], "channels": "email", ` + ok + `}`, 422, "channels"},
		{"channel unknown", js(with(badSendTo(obj{"user_id": "ada"}), "channels", []string{"fax"})), 422, "channels[0]"},
		{"channel in capitals", js(with(badSendTo(obj{"user_id": "ada"}), "channels", []string{"EMAIL"})), 422, "channels[0]"},
		{"channel twice", js(with(badSendTo(obj{"user_id": "ada"}), "channels", []string{"email", "email"})), 422, "channels[1]"},
		{"channel a number", `{"to": [{"user_id": "ada"}], "channels": [1], ` + ok + `}`, 422, "channels[0]"},
		{"fallback with channels", js(with(badSendTo(obj{"user_id": "ada"}), "channels", []string{"email"}, "fallback", []string{"sms"})), 422, "fallback"},
		{"fallback empty", js(with(badSendTo(obj{"user_id": "ada"}), "fallback", []string{})), 422, "fallback"},
		{"fallback unknown", js(with(badSendTo(obj{"user_id": "ada"}), "fallback", []string{"pigeon"})), 422, "fallback[0]"},
		{"fallback_window not a duration", js(with(badSendTo(obj{"user_id": "ada"}), "fallback", []string{"sms"}, "fallback_window", "soon")), 422, "fallback_window"},
		{"fallback_window without fallback", js(with(badSendTo(obj{"user_id": "ada"}), "fallback_window", "10m")), 422, "fallback_window"},
		{"fallback_window negative", js(with(badSendTo(obj{"user_id": "ada"}), "fallback", []string{"sms"}, "fallback_window", "-1m")), 422, "fallback_window"},
		{"category with a space", js(with(badSendTo(obj{"user_id": "ada"}), "category", "big news")), 422, "category"},
		{"category a number", `{"to": [{"user_id": "ada"}], "category": 5, ` + ok + `}`, 422, "category"},
		{"category too long", js(with(badSendTo(obj{"user_id": "ada"}), "category", strings.Repeat("c", 65))), 422, "category"},
		{"priority unknown", js(with(badSendTo(obj{"user_id": "ada"}), "priority", "urgent")), 422, "priority"},
		{"priority a boolean", `{"to": [{"user_id": "ada"}], "priority": true, ` + ok + `}`, 422, "priority"},
		{"no content and no template", `{"to": [{"user_id": "ada"}]}`, 422, "content"},
		{"content null", `{"to": [{"user_id": "ada"}], "content": null}`, 422, "content"},
		{"content empty", `{"to": [{"user_id": "ada"}], "content": {}}`, 422, "content"},
		{"content a string", `{"to": [{"user_id": "ada"}], "content": "hi"}`, 422, "content"},
		{"content an array", `{"to": [{"user_id": "ada"}], "content": [{"type": "text/plain", "value": "hi"}]}`, 422, "content"},
		{"content body a number", `{"to": [{"user_id": "ada"}], "content": {"body": 5}}`, 422, "content.body"},
		{"content body with NUL", `{"to": [{"user_id": "ada"}], "content": {"body": "a\u0000b"}}`, 422, "content.body"},
		{"subject on two lines", js(obj{"to": []any{obj{"user_id": "ada"}}, "content": obj{"body": "x", "subject": "a\r\nBcc: b@example.com"}}), 422, "content.subject"},
		{"content data a list", js(obj{"to": []any{obj{"user_id": "ada"}}, "content": obj{"body": "x", "data": []int{1}}}), 422, "content.data"},
		{"content data value an object", js(obj{"to": []any{obj{"user_id": "ada"}}, "content": obj{"body": "x", "data": obj{"k": obj{}}}}), 422, "content.data.k"},
		{"content data value null", `{"to": [{"user_id": "ada"}], "content": {"body": "x", "data": {"k": null}}}`, 422, "content.data.k"},
		{"content and template", js(with(badSendTo(obj{"user_id": "ada"}), "template", "welcome")), 422, "content"},
		{"template unknown", js(obj{"to": []any{obj{"user_id": "ada"}}, "template": "nope"}), 422, "template"},
		{"template name with a slash", js(obj{"to": []any{obj{"user_id": "ada"}}, "template": "a/b"}), 422, "template"},
		{"template_version without template", js(with(badSendTo(obj{"user_id": "ada"}), "template_version", 2)), 422, "template"},
		{"template_version negative", js(obj{"to": []any{obj{"user_id": "ada"}}, "template": "welcome", "template_version": -1}), 422, "template_version"},
		{"template_version a fraction", `{"to": [{"user_id": "ada"}], "template": "welcome", "template_version": 1.5}`, 422, "template_version"},
		{"template_version huge", `{"to": [{"user_id": "ada"}], "template": "welcome", "template_version": 1e400}`, 422, "template_version"},
		{"template_version past int64", `{"to": [{"user_id": "ada"}], "template": "welcome", "template_version": 99999999999999999999}`, 422, "template_version"},
		{"template_version a string", `{"to": [{"user_id": "ada"}], "template": "welcome", "template_version": "2"}`, 422, "template_version"},
		{"data without template", js(with(badSendTo(obj{"user_id": "ada"}), "data", obj{"name": "Ada"})), 422, "template"},
		{"data an array", `{"to": [{"user_id": "ada"}], "template": "welcome", "data": [1, 2]}`, 422, "data"},
		{"send_at not a time", js(with(badSendTo(obj{"user_id": "ada"}), "send_at", "tomorrow")), 422, "send_at"},
		{"send_at a number", `{"to": [{"user_id": "ada"}], ` + ok + `, "send_at": 1764579600}`, 422, "send_at"},
		{"send_at without zone", js(with(badSendTo(obj{"user_id": "ada"}), "send_at", "2026-12-01T09:00:00")), 422, "send_at"},
		{"send_at year 10000", js(with(badSendTo(obj{"user_id": "ada"}), "send_at", "10000-01-01T00:00:00Z")), 422, "send_at"},
		{"send_at too far", js(with(badSendTo(obj{"user_id": "ada"}), "send_at", "2099-01-01T00:00:00Z")), 422, "send_at"},
		{"send_at_local 24:00", js(with(badSendTo(obj{"user_id": "ada"}), "send_at_local", "24:00")), 422, "send_at_local"},
		{"send_at_local a number", `{"to": [{"user_id": "ada"}], ` + ok + `, "send_at_local": 900}`, 422, "send_at_local"},
		{"event_id", js(with(badSendTo(obj{"user_id": "ada"}), "event_id", "e1")), 422, "event_id"},
	} {
		send("shape: "+c.name, c.body, c.status, c.field)
	}

	// Shapes of the other bodies.
	putBob("user body an array", `[]`, 422, "body")
	putBob("user email a number", `{"email": 12}`, 422, "email")
	putBob("user unknown field", `{"email": "b@example.com", "emial": "x"}`, 422, "emial")
	putBob("user timezone unknown", js(obj{"timezone": "Mars/Olympus"}), 422, "timezone")
	putBob("user timezone Local", js(obj{"timezone": "Local"}), 422, "timezone")
	putBob("user locale not a tag", js(obj{"locale": "english please"}), 422, "locale")
	putBob("user attributes a list", `{"attributes": [1]}`, 422, "attributes")
	putBob("user attribute with NUL", `{"attributes": {"nick": "a\u0000"}}`, 422, "attributes.nick")
	putBob("user trailing garbage", `{"email": "b@example.com"}}`, 400, "")
	putBob("user truncated", `{"email": "b@exam`, 400, "")

	// Sizes.
	big := func(n int) string { return strings.Repeat("x", n) }
	recipients := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = obj{"email": fmt.Sprintf("u%d@example.com", i)}
		}
		return out
	}
	send("size: body over 1 MiB", js(obj{"to": []any{obj{"user_id": "ada"}}, "content": obj{"body": big(1 << 20)}}), 413, "")
	send("size: body of 2 MiB of whitespace", `{"to": [{"user_id": "ada"}], `+ok+strings.Repeat(" ", 2<<20)+`}`, 413, "")
	send("size: body over 1 MiB, malformed", `{"to": [`+big(1<<20), 413, "")
	putBob("size: user body over 1 MiB", js(obj{"attributes": obj{"blob": big(1 << 20)}}), 413, "")
	device("size: device body over 1 MiB", js(obj{"platform": "ios", "token": big(1 << 20)}), 413, "")
	send("size: 1001 recipients", js(obj{"to": recipients(1001), "content": obj{"body": "hi"}}), 422, "to")
	send("size: no recipients", js(obj{"to": []any{}, "content": obj{"body": "hi"}}), 422, "to")
	for _, f := range []string{"title", "body", "subject", "html", "url", "icon"} {
		send("size: content."+f+" over 100,000", js(obj{"to": []any{obj{"user_id": "ada"}}, "content": obj{"body": "x", f: big(100_001)}}), 422, "content."+f)
	}
	send("size: email over 254", js(badSendTo(obj{"email": big(250) + "@example.com"})), 422, "to[0].email")
	send("size: phone over 32", js(badSendTo(obj{"phone": "+1" + strings.Repeat("5", 40)})), 422, "to[0].phone")
	send("size: 101 push data keys", js(obj{"to": []any{obj{"user_id": "ada"}}, "content": obj{"body": "x", "data": manyKeys(101)}}), 422, "content.data")
	send("size: push data over 100,000", js(obj{"to": []any{obj{"user_id": "ada"}}, "content": obj{"body": "x", "data": obj{"blob": big(100_001)}}}), 422, "content.data")
	putBob("size: locale over 35", js(obj{"locale": "en-" + strings.Repeat("a", 40)}), 422, "locale")
	putBob("size: timezone over 64", js(obj{"timezone": strings.Repeat("A", 65)}), 422, "timezone")
	return cs
}

func manyKeys(n int) obj {
	out := obj{}
	for i := range n {
		out[fmt.Sprintf("k%d", i)] = "v"
	}
	return out
}

// TestPrivateWebPushEndpointRefusedAtRegistration: without
// --allow-private-targets, a web push subscription naming a loopback,
// private or link-local address is refused when the device is registered
// (422 naming subscription.endpoint), not left to fail at every send.
func TestPrivateWebPushEndpointRefusedAtRegistration(t *testing.T) {
	cfg := testConfig(t)
	cfg.AllowPrivateTargets = false
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))
	c.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com"})
	for _, endpoint := range []string{
		"https://10.0.0.1/push/1",
		"https://192.168.1.20/push/1",
		"https://127.0.0.1:8443/push/1",
		"http://127.0.0.1/push/1",
		"https://[::1]/push/1",
		"https://169.254.169.254/latest/meta-data",
		"https://[fd00::1]/push/1",
	} {
		body := json.RawMessage(webDevice(endpoint, goodKey, goodAuth))
		var p struct {
			Errors []struct{ Field string }
		}
		c.must(422, "POST", "/v1/users/ada/devices", body).decode(t, &p)
		if len(p.Errors) != 1 || p.Errors[0].Field != "subscription.endpoint" {
			t.Errorf("%s: errors %+v, want one naming subscription.endpoint", endpoint, p.Errors)
		}
	}
	c.must(201, "POST", "/v1/users/ada/devices", json.RawMessage(webDevice("https://push.example.com/send/1", goodKey, goodAuth)))
}
