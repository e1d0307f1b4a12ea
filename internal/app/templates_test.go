package app_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/provider/providertest"
	"github.com/heraldhq/herald/internal/provider/providertest/twiliofake"
	"github.com/heraldhq/herald/internal/provider/providertest/webpushfake"
)

type problemView struct {
	Status int `json:"status"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// wantProblem checks that r is a 422 naming field with a message containing want.
func wantProblem(t *testing.T, r response, field, want string) {
	t.Helper()
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422: %s", r.status, r.body)
	}
	var p problemView
	r.decode(t, &p)
	for _, e := range p.Errors {
		if e.Field == field && strings.Contains(e.Message, want) {
			return
		}
	}
	t.Fatalf("problem %s names no %s with %q", r.body, field, want)
}

type templatedNotification struct {
	ID              string `json:"id"`
	Template        string `json:"template"`
	TemplateVersion int    `json:"template_version"`
	Deliveries      []struct {
		UserID string `json:"user_id"`
		Locale string `json:"locale"`
		Status string `json:"status"`
	} `json:"deliveries"`
}

func send(t *testing.T, c *api, body map[string]any) string {
	t.Helper()
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", body).decode(t, &acc)
	return acc.ID
}

func TestTemplatesSaveReadListPreviewDelete(t *testing.T) {
	a := start(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))

	// Checked at save: the part and the line.
	wantProblem(t, c.do("PUT", "/v1/templates/welcome", map[string]any{
		"email": map[string]any{"subject": "Hi", "html": "<p>\n\n{{.name</p>"}}), "email.html", "line 3:")
	wantProblem(t, c.do("PUT", "/v1/templates/welcome", map[string]any{
		"sms": map[string]any{"text": "ok"}, "locales": map[string]any{"de": map[string]any{"sms": map[string]any{"text": "{{nope}}"}}}}),
		"locales.de.sms.text", `line 1: function "nope" not defined`)
	wantProblem(t, c.do("PUT", "/v1/templates/big", map[string]any{"sms": map[string]any{"text": strings.Repeat("x", 64<<10+1)}}),
		"sms.text", "at most 65536 bytes")
	c.must(404, "GET", "/v1/templates/welcome", nil) // nothing refused was stored

	var v1, v2 struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
	}
	c.must(201, "PUT", "/v1/templates/welcome", map[string]any{"sms": map[string]any{"text": "Hi {{.name}}"}}).decode(t, &v1)
	c.must(200, "PUT", "/v1/templates/welcome", map[string]any{"sms": map[string]any{"text": "Hello {{.name}}"},
		"locales": map[string]any{"de": map[string]any{"sms": map[string]any{"text": "Hallo {{.name}}"}}}}).decode(t, &v2)
	if v1.Version != 1 || v2.Version != 2 {
		t.Fatalf("versions %d, %d, want 1, 2", v1.Version, v2.Version)
	}
	var got struct {
		Version int `json:"version"`
		SMS     struct {
			Text string `json:"text"`
		} `json:"sms"`
		Locales map[string]json.RawMessage `json:"locales"`
	}
	c.must(200, "GET", "/v1/templates/welcome", nil).decode(t, &got)
	if got.Version != 2 || got.SMS.Text != "Hello {{.name}}" || got.Locales["de"] == nil {
		t.Errorf("latest = %+v", got)
	}
	c.must(200, "GET", "/v1/templates/welcome?version=1", nil).decode(t, &got)
	if got.Version != 1 || got.SMS.Text != "Hi {{.name}}" {
		t.Errorf("version 1 = %+v", got)
	}
	c.must(404, "GET", "/v1/templates/welcome?version=3", nil)

	type preview struct {
		Version int    `json:"version"`
		Locale  string `json:"locale"`
		SMS     struct {
			Text string `json:"text"`
		} `json:"sms"`
	}
	for _, tt := range []struct {
		body map[string]any
		want preview
	}{
		{map[string]any{"data": map[string]any{"name": "Ada"}}, preview{Version: 2, SMS: struct {
			Text string `json:"text"`
		}{"Hello Ada"}}},
		{map[string]any{"data": map[string]any{"name": "Ada"}, "locale": "de-CH"}, preview{Version: 2, Locale: "de", SMS: struct {
			Text string `json:"text"`
		}{"Hallo Ada"}}},
		{map[string]any{"data": map[string]any{"name": "Ada"}, "locale": "de", "version": 1}, preview{Version: 1, SMS: struct {
			Text string `json:"text"`
		}{"Hi Ada"}}},
	} {
		var p preview
		c.must(200, "POST", "/v1/templates/welcome/preview", tt.body).decode(t, &p)
		if p != tt.want {
			t.Errorf("preview %v = %+v, want %+v", tt.body, p, tt.want)
		}
	}

	// Lists page by name.
	for _, name := range []string{"a-first", "z-last"} {
		c.must(201, "PUT", "/v1/templates/"+name, map[string]any{"push": map[string]any{"title": name}})
	}
	var names []string
	path := "/v1/templates?limit=2"
	for range 5 {
		var page struct {
			Data []struct {
				Name string `json:"name"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		c.must(200, "GET", path, nil).decode(t, &page)
		for _, d := range page.Data {
			names = append(names, d.Name)
		}
		if page.NextCursor == "" {
			break
		}
		path = "/v1/templates?limit=2&cursor=" + page.NextCursor
	}
	if !slices.Equal(names, []string{"a-first", "welcome", "z-last"}) {
		t.Errorf("listed %v", names)
	}

	// A send key may not manage templates; another app never sees them.
	var key struct{ Key string }
	c.must(201, "POST", "/v1/keys", map[string]any{"name": "svc", "scope": "send"}).decode(t, &key)
	sendOnly := newAPI(t, a, key.Key)
	sendOnly.must(403, "PUT", "/v1/templates/welcome", map[string]any{"sms": map[string]any{"text": "x"}})
	sendOnly.must(403, "POST", "/v1/templates/welcome/preview", map[string]any{})
	other := newAPI(t, a, newApp(t, a, "other"))
	other.must(404, "GET", "/v1/templates/welcome", nil)
	other.must(404, "POST", "/v1/templates/welcome/preview", map[string]any{"data": map[string]any{"name": "x"}})
	other.must(404, "DELETE", "/v1/templates/welcome", nil)

	c.must(204, "DELETE", "/v1/templates/welcome", nil)
	c.must(404, "GET", "/v1/templates/welcome", nil)
	c.must(404, "POST", "/v1/templates/welcome/preview", map[string]any{"data": map[string]any{"name": "x"}})
	c.must(200, "PUT", "/v1/templates/welcome", map[string]any{"sms": map[string]any{"text": "again"}}).decode(t, &v1)
	if v1.Version != 3 {
		t.Errorf("a save after the delete is version %d, want 3: numbers are never reused", v1.Version)
	}
}

// TestTemplatedSendRendersEachRecipientsLocale: each user's locale picks
// the variant (then the app's default locale, then the base parts), the
// rendering happens at accept, a pinned version stays pinned, and GET
// /v1/notifications/{id} shows which version and variant each delivery got.
func TestTemplatedSendRendersEachRecipientsLocale(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	c := emailSetup(t, smtpd, 3)
	c.must(201, "PUT", "/v1/users/hans", map[string]any{"email": "hans@example.com", "locale": "de-AT"})
	c.must(201, "PUT", "/v1/users/pierre", map[string]any{"email": "pierre@example.com", "locale": "fr"})
	c.must(201, "PUT", "/v1/templates/order", map[string]any{
		"email":   map[string]any{"subject": "Order {{.id}} shipped", "text": "Hi {{.name}}, order {{.id}} is on its way."},
		"locales": map[string]any{"de": map[string]any{"email": map[string]any{"subject": "Bestellung {{.id}} versandt", "text": "Hallo {{.name}}!"}}},
	})
	// Version 2 changes the base subject; version 1 stays as it was.
	c.must(200, "PUT", "/v1/templates/order", map[string]any{
		"email":   map[string]any{"subject": "Your order {{.id}}", "text": "Hi {{.name}}, order {{.id}} is on its way."},
		"locales": map[string]any{"de": map[string]any{"email": map[string]any{"subject": "Bestellung {{.id}} versandt", "text": "Hallo {{.name}}!"}}},
	})

	to := []any{map[string]any{"user_id": "ada"}, map[string]any{"user_id": "hans"}, map[string]any{"user_id": "pierre"},
		map[string]any{"email": "direct@example.com"}}
	id := send(t, c, map[string]any{"to": to, "template": "order", "data": map[string]any{"id": 42, "name": "friend"}})
	c.waitDone(id, 20*time.Second)
	var n templatedNotification
	c.must(200, "GET", "/v1/notifications/"+id, nil).decode(t, &n)
	if n.Template != "order" || n.TemplateVersion != 2 {
		t.Errorf("notification names template %q version %d, want order 2", n.Template, n.TemplateVersion)
	}
	locales := map[string]string{}
	for _, d := range n.Deliveries {
		if d.Status != "sent" {
			t.Errorf("delivery %+v not sent", d)
		}
		locales[d.UserID] = d.Locale
	}
	if want := map[string]string{"ada": "", "hans": "de", "pierre": "", "": ""}; fmt.Sprint(locales) != fmt.Sprint(want) {
		t.Errorf("delivery locales = %v, want %v", locales, want)
	}
	subjects := map[string]string{}
	for _, m := range smtpd.WaitForMessages(t, 4, 10*time.Second) {
		subjects[m.To[0]] = m.Subject
	}
	want := map[string]string{"ada@example.com": "Your order 42", "hans@example.com": "Bestellung 42 versandt",
		"pierre@example.com": "Your order 42", "direct@example.com": "Your order 42"}
	if fmt.Sprint(subjects) != fmt.Sprint(want) {
		t.Errorf("subjects = %v, want %v", subjects, want)
	}

	// The app's default locale now serves those without a variant of their
	// own; version 1 is pinned.
	c.must(200, "PUT", "/v1/app", map[string]any{"default_locale": "de"})
	id = send(t, c, map[string]any{"to": []any{map[string]any{"user_id": "pierre"}}, "template": "order", "template_version": 1,
		"data": map[string]any{"id": 7, "name": "Pierre"}})
	c.waitDone(id, 20*time.Second)
	c.must(200, "GET", "/v1/notifications/"+id, nil).decode(t, &n)
	if n.TemplateVersion != 1 || n.Deliveries[0].Locale != "de" {
		t.Errorf("pinned send: version %d, locale %q, want 1, de", n.TemplateVersion, n.Deliveries[0].Locale)
	}
	msgs := smtpd.WaitForMessages(t, 5, 10*time.Second)
	if m := msgs[4]; m.Subject != "Bestellung 7 versandt" || !strings.Contains(string(m.Data), "Hallo Pierre!") {
		t.Errorf("pinned send mailed %q: %s", m.Subject, m.Data)
	}

	// A channel the template has no part for, and a version it does not have.
	wantProblem(t, c.do("POST", "/v1/notifications", map[string]any{"to": to[:1], "channels": []string{"sms"},
		"template": "order", "data": map[string]any{}}), "channels[0]", `template "order" has no sms part`)
	wantProblem(t, c.do("POST", "/v1/notifications", map[string]any{"to": to[:1], "template": "order", "template_version": 9,
		"data": map[string]any{}}), "template_version", "no version 9")
	wantProblem(t, c.do("POST", "/v1/notifications", map[string]any{"to": to[:1], "template": "nope"}), "template", `no template "nope"`)
	wantProblem(t, c.do("POST", "/v1/notifications", map[string]any{"to": to[:1], "template": "order",
		"content": map[string]any{"body": "x"}}), "content", "either template")
}

// TestTemplateDataCannotInjectHTMLOrHeaders: HTML-injection data renders
// escaped in the email HTML, and a subject with CR/LF in the data reaches
// the SMTP server as one header line, adding no header and no recipient.
func TestTemplateDataCannotInjectHTMLOrHeaders(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	c := emailSetup(t, smtpd, 3)
	c.must(201, "PUT", "/v1/templates/reset", map[string]any{"email": map[string]any{
		"subject": "Hello {{.name}}",
		"html":    `<p>Hello {{.name}}</p><a href="{{.link}}">reset</a>`,
		"text":    "Hello {{.name}}",
	}})
	data := map[string]any{"name": "Eve\r\nBcc: victim@example.com\r\nX-Injected: yes\r\n\r\n<script>alert(1)</script>",
		"link": "javascript:alert(document.cookie)"}

	var p struct {
		Email struct{ Subject, HTML string } `json:"email"`
	}
	c.must(200, "POST", "/v1/templates/reset/preview", map[string]any{"data": data}).decode(t, &p)
	if strings.ContainsAny(p.Email.Subject, "\r\n") || strings.Contains(p.Email.HTML, "<script>") || strings.Contains(p.Email.HTML, "javascript:") {
		t.Errorf("preview = %+v", p.Email)
	}

	id := send(t, c, map[string]any{"to": []any{map[string]any{"user_id": "ada"}}, "template": "reset", "data": data})
	if n := c.waitDone(id, 20*time.Second); n.Deliveries[0].Status != "sent" {
		t.Fatalf("delivery = %+v", n.Deliveries[0])
	}
	m := smtpd.WaitForMessages(t, 1, 10*time.Second)[0]
	if len(m.To) != 1 || m.To[0] != "ada@example.com" {
		t.Errorf("RCPT TO = %v: the data added a recipient", m.To)
	}
	if m.Header == nil {
		t.Fatalf("the message does not parse: %s", m.Data)
	}
	for _, h := range []string{"Bcc", "X-Injected"} {
		if v := m.Header.Get(h); v != "" {
			t.Errorf("the data added the header %s: %q", h, v)
		}
	}
	if want := "Hello Eve Bcc: victim@example.com X-Injected: yes <script>alert(1)</script>"; m.Subject != want {
		t.Errorf("subject = %q, want %q", m.Subject, want)
	}
	body := string(m.Data)
	if strings.Contains(body, "<script>") && strings.Contains(body, "text/html") && !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the html part carries the script unescaped: %s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(body, "#ZgotmplZ") {
		t.Errorf("the html part is not escaped: %s", body)
	}
}

// TestTemplateRenderErrorsAre422AtPreviewAndSend: a missing key, a render
// over the time cap and one over the size cap refuse the send before
// anything is written or queued.
func TestTemplateRenderErrorsAre422AtPreviewAndSend(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	c := emailSetup(t, smtpd, 3)
	c.must(201, "PUT", "/v1/templates/t", map[string]any{"email": map[string]any{"subject": "Hi {{.user.name}}",
		"text": "{{range .spin}}{{end}}{{range .fill}}0123456789{{end}}"}})
	to := []any{map[string]any{"user_id": "ada"}}
	for _, tt := range []struct {
		name        string
		data        map[string]any
		field, want string
	}{
		{"missing key", map[string]any{"user": map[string]any{}}, "data.user.name", "email.subject line 1"},
		{"time cap", map[string]any{"user": map[string]any{"name": "a"}, "spin": 100_000_000_000}, "template", "took longer than 1s"},
		{"size cap", map[string]any{"user": map[string]any{"name": "a"}, "spin": 0, "fill": 20_000}, "template", "renders more than 100000 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, c.do("POST", "/v1/templates/t/preview", map[string]any{"data": tt.data}), tt.field, tt.want)
			wantProblem(t, c.do("POST", "/v1/notifications", map[string]any{"to": to, "template": "t", "data": tt.data}), tt.field, tt.want)
		})
	}
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	c.must(200, "GET", "/v1/notifications", nil).decode(t, &list)
	if len(list.Data) != 0 {
		t.Errorf("refused sends left %d notifications", len(list.Data))
	}
	if len(smtpd.Messages()) != 0 {
		t.Errorf("a refused send was mailed")
	}
}

// TestTemplatedSMSAndWebPushCarryTheirOwnParts: each channel sends its own
// part, a locale variant replaces only the channels it has, and the web
// push payload carries the template's url and icon.
func TestTemplatedSMSAndWebPushCarryTheirOwnParts(t *testing.T) {
	vapid, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vapidPub := base64.RawURLEncoding.EncodeToString(vapid.PublicKey().Bytes())
	const twilioSID, twilioToken = "AC0123456789abcdef0123456789abcdef", "twilio-secret"
	webd := webpushfake.New(t, webpushfake.RequireVAPID(vapidPub))
	twiliod := twiliofake.New(t, twiliofake.WithAccount(twilioSID, twilioToken))

	a := start(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	c.must(200, "PUT", "/v1/providers/push", []map[string]any{{"kind": "webpush", "settings": map[string]any{
		"vapid_public_key": vapidPub, "vapid_private_key": base64.RawURLEncoding.EncodeToString(vapid.Bytes()),
		"subject": "mailto:ops@example.com", "ca_pem": webd.CAPEM()}}})
	c.must(200, "PUT", "/v1/providers/sms", []map[string]any{{"kind": "twilio", "settings": map[string]any{
		"account_sid": twilioSID, "auth_token": twilioToken, "from": "+15005550006",
		"endpoint": twiliod.URL(), "ca_pem": twiliod.CAPEM()}}})
	c.must(201, "PUT", "/v1/users/lena", map[string]any{"phone": "+14155550100", "locale": "de-DE"})
	c.must(201, "POST", "/v1/users/lena/devices", map[string]any{"platform": "web", "subscription": webd.NewSubscription()})

	c.must(201, "PUT", "/v1/templates/shipped", map[string]any{
		"sms": map[string]any{"text": "Order {{.id}} shipped"},
		"push": map[string]any{"title": "Order {{.id}}", "body": "On its way", "url": "https://shop.example/o/{{.id}}",
			"icon": "https://shop.example/icon.png", "data": map[string]any{"order": "{{.id}}"}},
		"locales": map[string]any{"de": map[string]any{"sms": map[string]any{"text": "Bestellung {{.id}} versandt"}}},
	})
	id := send(t, c, map[string]any{"to": []any{map[string]any{"user_id": "lena"}}, "template": "shipped",
		"data": map[string]any{"id": 42}})
	for _, d := range c.waitDone(id, 20*time.Second).Deliveries {
		if d.Status != "sent" {
			t.Errorf("%s delivery %s %s: %+v", d.Channel, d.Status, d.Reason, d.Timeline)
		}
	}
	var n templatedNotification
	c.must(200, "GET", "/v1/notifications/"+id, nil).decode(t, &n)
	if len(n.Deliveries) != 2 || n.Deliveries[0].Locale != "de" || n.Deliveries[1].Locale != "de" {
		t.Errorf("deliveries %+v, want push and sms in the de variant", n.Deliveries)
	}

	if reqs := twiliod.Requests(); len(reqs) != 1 || reqs[0].Get("Body") != "Bestellung 42 versandt" {
		t.Errorf("Twilio got %v, want the de sms text", reqs)
	}
	reqs := webd.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the push service got %d requests", len(reqs))
	}
	var payload map[string]any
	if err := json.Unmarshal(reqs[0].Payload, &payload); err != nil {
		t.Fatal(err)
	}
	// The url is a click link on Herald that leads to the template's.
	link, _ := payload["url"].(string)
	_, path, ok := strings.Cut(link, "/t/c/")
	if !ok {
		t.Fatalf("the push url %q is not a click link", link)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(c.base + "/t/c/" + path)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Location"); res.StatusCode != http.StatusFound || got != "https://shop.example/o/42" {
		t.Errorf("the click link answers %d to %q, want 302 to the template's url", res.StatusCode, got)
	}
	payload["url"] = "https://shop.example/o/42"
	want := map[string]any{"title": "Order 42", "body": "On its way", "url": "https://shop.example/o/42",
		"icon": "https://shop.example/icon.png", "data": map[string]any{"order": "42"}}
	if fmt.Sprint(payload) != fmt.Sprint(want) {
		t.Errorf("the browser decrypted %v, want the base push part %v", payload, want)
	}
}

// TestTemplateSavedOnOneProcessIsUsedByTheNextSendOnAnother: two API
// processes on one Postgres and one JetStream; the second caches version 1
// by rendering it, the first saves version 2, and the second's next send
// renders version 2: no stale cache survives a save elsewhere.
func TestTemplateSavedOnOneProcessIsUsedByTheNextSendOnAnother(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := scaledConfig(t)
	one := start(t, cfg)
	cfg.DataDir = t.TempDir()
	two := start(t, cfg)
	key := newApp(t, one, "shop")
	c1, c2 := newAPI(t, one, key), newAPI(t, two, key)
	configureEmail(t, c1, smtpd)

	saveAndSend := func(subject string, version int) {
		t.Helper()
		var saved struct{ Version int }
		c1.must(map[bool]int{true: 201, false: 200}[version == 1], "PUT", "/v1/templates/news",
			map[string]any{"email": map[string]any{"subject": subject, "text": "Hi {{.name}}"}}).decode(t, &saved)
		if saved.Version != version {
			t.Fatalf("saved version %d, want %d", saved.Version, version)
		}
		id := send(t, c2, map[string]any{"to": []any{map[string]any{"user_id": "ada"}}, "template": "news",
			"data": map[string]any{"name": "Ada"}})
		c2.waitDone(id, 30*time.Second)
		var n templatedNotification
		c2.must(200, "GET", "/v1/notifications/"+id, nil).decode(t, &n)
		if n.TemplateVersion != version {
			t.Errorf("process two rendered version %d, want %d", n.TemplateVersion, version)
		}
		msgs := smtpd.WaitForMessages(t, version, 10*time.Second)
		if got := msgs[version-1].Subject; got != subject {
			t.Errorf("mailed subject %q, want %q", got, subject)
		}
	}
	saveAndSend("First edition", 1)
	saveAndSend("Second edition", 2)
}
