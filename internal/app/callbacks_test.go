package app_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/provider/providertest/sendgridfake"
	"github.com/heraldhq/herald/internal/provider/providertest/twiliofake"
	"github.com/heraldhq/herald/internal/provider/providertest/webpushfake"
)

// publicURL is what the tests' Herald tells the world it is reached at;
// links and callback URLs are built on it, and the tests call the same
// paths on the test server.
const publicURL = "https://herald.example.com"

func callbackConfig(t *testing.T) app.Config {
	cfg := webhookConfig(t)
	cfg.PublicURL = publicURL
	return cfg
}

// count returns how many steps of the first delivery's timeline have status.
func count(n notificationView, status string) int {
	k := 0
	for _, e := range n.Deliveries[0].Timeline {
		if e.Status == status {
			k++
		}
	}
	return k
}

func (c *api) notification(id string) notificationView {
	c.t.Helper()
	var n notificationView
	c.must(200, "GET", "/v1/notifications/"+id, nil).decode(c.t, &n)
	return n
}

// problemSays fails unless r is a problem+json with the status and none
// of the secrets in its body.
func problemSays(t *testing.T, what string, r response, status int, secrets ...string) {
	t.Helper()
	if r.status != status || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("%s: %d %s %s, want %d problem+json", what, r.status, r.header.Get("Content-Type"), r.body, status)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(string(r.body), s) {
			t.Errorf("%s: the answer shows %q: %s", what, s, r.body)
		}
	}
}

// TestTwilioStatusCallbacks: status callbacks signed as Twilio signs them
// (the same HMAC that reproduces Twilio's published vector, see
// twilio.TestSignaturePublishedVector) move the delivery on, once; an
// absent, wrong or replayed-after-change signature moves nothing.
func TestTwilioStatusCallbacks(t *testing.T) {
	c, a, twiliod := smsSetup(t, callbackConfig(t))
	r := newReceiver(t)
	createWebhook(t, c, r.srv.URL, "delivery.delivered", "contact.invalid")
	hooks := newAPI(t, a, "")
	callbackURL := publicURL + "/hooks/twilio/status"
	post := func(form url.Values, signature string) response {
		t.Helper()
		headers := []string{"Content-Type", "application/x-www-form-urlencoded"}
		if signature != "" {
			headers = append(headers, "X-Twilio-Signature", signature)
		}
		return hooks.do("POST", "/hooks/twilio/status", form.Encode(), headers...)
	}
	sign := func(form url.Values) string { return twiliofake.Sign(twilioToken, callbackURL, form) }

	// Herald told Twilio where to call back.
	id := sendSMS(t, c)
	n := c.waitDone(id, 20*time.Second)
	sid := n.Deliveries[0].ProviderMessageID
	if got := twiliod.Requests()[0].Get("StatusCallback"); got != callbackURL {
		t.Errorf("StatusCallback = %q, want %q", got, callbackURL)
	}

	delivered := twiliofake.StatusCallback(twilioSID, sid, "delivered", "")
	problemSays(t, "no signature", post(delivered, ""), 401, sid)
	problemSays(t, "signed with another token", post(delivered, twiliofake.Sign("other-token", callbackURL, delivered)), 403, sid, twilioToken)
	problemSays(t, "signed for another URL", post(delivered, twiliofake.Sign(twilioToken, "https://evil.example/hooks/twilio/status", delivered)), 403)
	tampered := twiliofake.StatusCallback(twilioSID, sid, "failed", "30003")
	problemSays(t, "a signature of other parameters", post(tampered, sign(delivered)), 403)
	unknown := twiliofake.StatusCallback(twilioSID, "SM00000000000000000000000000000000", "delivered", "")
	problemSays(t, "an unknown message", post(unknown, sign(unknown)), 403, "SM00000000000000000000000000000000")
	if n := c.notification(id); n.Deliveries[0].Status != "sent" {
		t.Fatalf("after refused callbacks the delivery is %s, want sent", n.Deliveries[0].Status)
	}

	if res := post(delivered, sign(delivered)); res.status != 204 {
		t.Fatalf("a signed callback: %d %s", res.status, res.body)
	}
	// Replayed as it was, and a late failure: neither moves the status.
	post(delivered, sign(delivered))
	late := twiliofake.StatusCallback(twilioSID, sid, "undelivered", "30003")
	if res := post(late, sign(late)); res.status != 204 {
		t.Fatalf("a late callback: %d %s", res.status, res.body)
	}
	n = c.notification(id)
	if d := n.Deliveries[0]; d.Status != "delivered" || count(n, "delivered") != 1 || count(n, "failed") != 0 {
		t.Errorf("after delivered, a replay and a late undelivered: %s, timeline %v", d.Status, timeline(n))
	}
	// Each step from the provider's acceptance on names its message.
	var withIDs struct {
		Deliveries []struct {
			Timeline []struct {
				Status            string `json:"status"`
				ProviderMessageID string `json:"provider_message_id"`
			} `json:"timeline"`
		} `json:"deliveries"`
	}
	c.must(200, "GET", "/v1/notifications/"+id, nil).decode(t, &withIDs)
	for _, e := range withIDs.Deliveries[0].Timeline {
		want := ""
		if e.Status == "sent" || e.Status == "delivered" {
			want = sid
		}
		if e.ProviderMessageID != want {
			t.Errorf("the %s step names provider message %q, want %q", e.Status, e.ProviderMessageID, want)
		}
	}
	got := r.waitPosts(t, 1)
	if p := decodePayload(t, got[0]); p.Type != "delivery.delivered" || p.Data.NotificationID != id || p.Data.Provider != "twilio" {
		t.Errorf("webhook = %s", got[0].body)
	}

	// A number the carrier cannot reach: failed, and the contact disabled.
	id2 := sendSMS(t, c)
	sid2 := c.waitDone(id2, 20*time.Second).Deliveries[0].ProviderMessageID
	failed := twiliofake.StatusCallback(twilioSID, sid2, "undelivered", "30006")
	if res := post(failed, sign(failed)); res.status != 204 {
		t.Fatalf("an undelivered callback: %d %s", res.status, res.body)
	}
	if d := c.notification(id2).Deliveries[0]; d.Status != "failed" || d.Reason != "invalid_recipient" {
		t.Errorf("after undelivered 30006: %s %s, want failed invalid_recipient", d.Status, d.Reason)
	}
	got = r.waitPosts(t, 2)
	if p := decodePayload(t, got[1]); p.Type != "contact.invalid" || p.Data.UserID != "ada" {
		t.Errorf("webhook = %s", got[1].body)
	}
	var acc struct {
		Deliveries []struct{ Status, Reason string }
	}
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"sms"}, "content": map[string]any{"body": "again"}}).decode(t, &acc)
	if acc.Deliveries[0].Status != "suppressed" || acc.Deliveries[0].Reason != "invalid_recipient" {
		t.Errorf("next SMS = %+v, want suppressed invalid_recipient", acc.Deliveries[0])
	}
	if n := len(r.posts()); n != 2 {
		t.Errorf("the endpoint got %d posts, want 2 (the replay posted again?)", n)
	}
}

const sendgridKey = "SG.test-key"

// emailTracking starts Herald with a SendGrid provider whose Event Webhook
// key is the published test key, and a user ada with an email address.
func emailTracking(t *testing.T, cfg app.Config) (*api, *api, *sendgridfake.Server, *receiver) {
	t.Helper()
	sendgridd := sendgridfake.New(t, sendgridfake.WithAPIKey(sendgridKey))
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))
	c.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com"})
	c.must(200, "PUT", "/v1/providers/email", []map[string]any{{"kind": "sendgrid", "settings": map[string]any{
		"api_key": sendgridKey, "from": "shop@example.com", "endpoint": sendgridd.URL(), "ca_pem": sendgridd.CAPEM(),
		"webhook_public_key": sendgridfake.EventKey}}})
	r := newReceiver(t)
	createWebhook(t, c, r.srv.URL, "delivery.opened", "delivery.clicked", "delivery.failed", "contact.invalid", "user.unsubscribed")
	return c, newAPI(t, a, ""), sendgridd, r
}

// sendMail sends ada a marketing email and returns the notification id
// and the Mail Send request SendGrid received for it.
func sendMail(t *testing.T, c *api, sendgridd *sendgridfake.Server, html string) (string, sendgridfake.Request) {
	t.Helper()
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "category": "marketing",
		"content": map[string]any{"subject": "Sale", "body": "Sale on now", "html": html}}).decode(t, &acc)
	n := c.waitDone(acc.ID, 20*time.Second)
	for _, req := range sendgridd.Requests() {
		if len(req.Mail.Personalizations) == 1 && req.Mail.Personalizations[0].CustomArgs["herald_delivery_id"] == n.Deliveries[0].ID {
			return acc.ID, req
		}
	}
	t.Fatalf("SendGrid never received delivery %s", n.Deliveries[0].ID)
	return "", sendgridfake.Request{}
}

// event is one Event Webhook event about a Mail Send request.
func event(req sendgridfake.Request, kind string, extra ...string) map[string]any {
	args := req.Mail.Personalizations[0].CustomArgs
	e := map[string]any{"email": "ada@example.com", "event": kind, "timestamp": time.Now().Unix(),
		"sg_event_id": kind + "-" + args["herald_delivery_id"], "sg_message_id": req.MessageID + ".filter",
		"herald_delivery_id": args["herald_delivery_id"], "herald_app_id": args["herald_app_id"],
		"herald_notification_id": args["herald_notification_id"]}
	for i := 0; i+1 < len(extra); i += 2 {
		e[extra[i]] = extra[i+1]
	}
	return e
}

// TestSendGridSignedEvents: events signed with SendGrid's published test
// key move deliveries on; a missing, wrong or stale signature moves
// nothing, and a replayed batch moves nothing twice.
func TestSendGridSignedEvents(t *testing.T) {
	c, hooks, sendgridd, r := emailTracking(t, callbackConfig(t))
	post := func(body []byte, timestamp, signature string) response {
		t.Helper()
		var h []string
		if timestamp != "" {
			h = append(h, "X-Twilio-Email-Event-Webhook-Timestamp", timestamp)
		}
		if signature != "" {
			h = append(h, "X-Twilio-Email-Event-Webhook-Signature", signature)
		}
		return hooks.do("POST", "/hooks/sendgrid/events", body, h...)
	}
	batch := func(events ...map[string]any) []byte {
		b, err := json.Marshal(events)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	id, req := sendMail(t, c, sendgridd, "<p>Hi</p>")
	body := batch(event(req, "processed"), event(req, "delivered"), event(req, "open"))
	ts, sig := sendgridfake.SignEvents(time.Now(), body)
	_, otherSig := sendgridfake.SignEvents(time.Now(), batch(event(req, "delivered")))
	staleTS, staleSig := sendgridfake.SignEvents(time.Now().Add(-11*time.Minute), body)

	problemSays(t, "no signature", post(body, "", ""), 401)
	problemSays(t, "a signature of another body", post(body, ts, otherSig), 403)
	problemSays(t, "a timestamp other than the signed one", post(body, ts+"1", sig), 403)
	problemSays(t, "a stale signature", post(body, staleTS, staleSig), 403)
	if n := c.notification(id); n.Deliveries[0].Status != "sent" {
		t.Fatalf("after refused batches the delivery is %s, want sent", n.Deliveries[0].Status)
	}

	if res := post(body, ts, sig); res.status != 204 {
		t.Fatalf("a signed batch: %d %s", res.status, res.body)
	}
	// The same batch again, and a late "delivered" on its own.
	post(body, ts, sig)
	late := batch(event(req, "delivered"))
	lts, lsig := sendgridfake.SignEvents(time.Now(), late)
	post(late, lts, lsig)
	n := c.notification(id)
	if d := n.Deliveries[0]; d.Status != "opened" || count(n, "delivered") != 1 || count(n, "opened") != 1 {
		t.Errorf("after delivered+open, a replay and a late delivered: %s, timeline %v", d.Status, timeline(n))
	}

	// A signed body that is no event array is malformed.
	bad := []byte(`{"event":"delivered"}`)
	bts, bsig := sendgridfake.SignEvents(time.Now(), bad)
	problemSays(t, "an object, not an array", post(bad, bts, bsig), 400)

	// A bounce fails the delivery and disables the address.
	id2, req2 := sendMail(t, c, sendgridd, "<p>Hi</p>")
	bounce := batch(event(req2, "bounce", "type", "bounce", "reason", "550 5.1.1 no such user"))
	bts, bsig = sendgridfake.SignEvents(time.Now(), bounce)
	if res := post(bounce, bts, bsig); res.status != 204 {
		t.Fatalf("a bounce: %d %s", res.status, res.body)
	}
	if d := c.notification(id2).Deliveries[0]; d.Status != "failed" || d.Reason != "invalid_recipient" {
		t.Errorf("after a bounce: %s %s, want failed invalid_recipient", d.Status, d.Reason)
	}
	var types []string
	for _, p := range r.waitPosts(t, 3) {
		types = append(types, decodePayload(t, p).Type)
	}
	slices.Sort(types) // the posts of one event go out in any order
	if strings.Join(types, " ") != "contact.invalid delivery.failed delivery.opened" {
		t.Errorf("webhook events = %v", types)
	}
}

// TestSendGridSpamReportOptsOut: a spam report turns email off for the
// user and goes out as user.unsubscribed.
func TestSendGridSpamReportOptsOut(t *testing.T) {
	c, hooks, sendgridd, r := emailTracking(t, callbackConfig(t))
	id, req := sendMail(t, c, sendgridd, "<p>Hi</p>")
	body, _ := json.Marshal([]map[string]any{event(req, "spamreport")})
	ts, sig := sendgridfake.SignEvents(time.Now(), body)
	for range 2 { // the second time changes nothing
		if res := hooks.do("POST", "/hooks/sendgrid/events", body, "X-Twilio-Email-Event-Webhook-Timestamp", ts,
			"X-Twilio-Email-Event-Webhook-Signature", sig); res.status != 204 {
			t.Fatalf("a spam report: %d %s", res.status, res.body)
		}
	}
	var prefs struct {
		Channels map[string]bool `json:"channels"`
	}
	c.must(200, "GET", "/v1/users/ada/preferences", nil).decode(t, &prefs)
	if on, ok := prefs.Channels["email"]; !ok || on {
		t.Errorf("preferences after a spam report: %+v, want email off", prefs)
	}
	n := c.notification(id)
	if n.Deliveries[0].Status != "sent" || count(n, "unsubscribed") != 1 {
		t.Errorf("after a spam report: %s, timeline %v", n.Deliveries[0].Status, timeline(n))
	}
	p := decodePayload(t, r.waitPosts(t, 1)[0])
	if p.Type != "user.unsubscribed" || p.Data.UserID != "ada" || p.Data.Channel != "email" {
		t.Errorf("webhook = %+v", p)
	}
}

var (
	hrefRE  = regexp.MustCompile(`href="([^"]*)"`)
	pixelRE = regexp.MustCompile(`<img src="([^"]*/t/o/[^"]*)"`)
)

// path is a link's path on the test server, checked to be on the public URL.
func path(t *testing.T, link string) string {
	t.Helper()
	if !strings.HasPrefix(link, publicURL+"/") {
		t.Fatalf("link %q is not on the public URL %s", link, publicURL)
	}
	return strings.TrimPrefix(link, publicURL)
}

// TestClickOpenAndOneClickUnsubscribe: the email's links go through
// Herald; the pixel records opened, a click records clicked (once) and
// redirects to the original URL, a tampered link is 404; the unsubscribe
// page changes nothing until confirmed, and the RFC 8058 one-click POST
// opts the user out, shows in the timeline and goes out as
// user.unsubscribed.
func TestClickOpenAndOneClickUnsubscribe(t *testing.T) { clickOpenUnsubscribe(t, callbackConfig(t)) }

// TestClickOpenAndOneClickUnsubscribePostgres: the same on Postgres and an
// external JetStream.
func TestClickOpenAndOneClickUnsubscribePostgres(t *testing.T) {
	cfg := scaledConfig(t)
	cfg.PublicURL = publicURL
	cfg.WebhookRetryBase = 50 * time.Millisecond
	clickOpenUnsubscribe(t, cfg)
}

func clickOpenUnsubscribe(t *testing.T, cfg app.Config) {
	c, hooks, sendgridd, r := emailTracking(t, cfg)
	const sale = "https://shop.example.com/sale?x=1&y=2"
	id, req := sendMail(t, c, sendgridd,
		`<html><body><p><a href="https://shop.example.com/sale?x=1&amp;y=2">Sale</a> <a href="mailto:help@example.com">Help</a></p></body></html>`)

	var html string
	for _, part := range req.Mail.Content {
		if part.Type == "text/html" {
			html = part.Value
		}
	}
	hrefs := hrefRE.FindAllStringSubmatch(html, -1)
	if len(hrefs) != 2 || !strings.HasPrefix(hrefs[0][1], publicURL+"/t/c/") || hrefs[1][1] != "mailto:help@example.com" {
		t.Fatalf("links in the sent HTML: %v\n%s", hrefs, html)
	}
	pixel := pixelRE.FindStringSubmatch(html)
	if pixel == nil {
		t.Fatalf("no open pixel in the sent HTML:\n%s", html)
	}
	unsub := req.Mail.Headers["List-Unsubscribe"]
	if !strings.HasPrefix(unsub, "<"+publicURL+"/u/") || !strings.HasSuffix(unsub, ">") ||
		req.Mail.Headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Fatalf("List-Unsubscribe headers = %q", req.Mail.Headers)
	}

	// Open, then click twice.
	if res := hooks.must(200, "GET", path(t, pixel[1]), nil); res.header.Get("Content-Type") != "image/gif" {
		t.Errorf("pixel Content-Type = %q", res.header.Get("Content-Type"))
	}
	click := path(t, hrefs[0][1])
	for range 2 {
		if res := hooks.must(302, "GET", click, nil); res.header.Get("Location") != sale {
			t.Errorf("click redirects to %q, want %q", res.header.Get("Location"), sale)
		}
	}
	n := c.notification(id)
	if d := n.Deliveries[0]; d.Status != "clicked" || count(n, "opened") != 1 || count(n, "clicked") != 1 {
		t.Errorf("after an open and two clicks: %s, timeline %v", d.Status, timeline(n))
	}
	// A tampered token is not found, and never a redirect.
	i := len("/t/c/") + 10
	swap := byte('A')
	if click[i] == 'A' {
		swap = 'B'
	}
	flipped := click[:i] + string(swap) + click[i+1:]
	res := hooks.do("GET", flipped, nil)
	problemSays(t, "a tampered click link", res, 404)
	if res.header.Get("Location") != "" {
		t.Errorf("a tampered link redirects to %q", res.header.Get("Location"))
	}

	// The page asks; only the POST acts.
	u := path(t, strings.Trim(unsub, "<>"))
	page := hooks.must(200, "GET", u, nil)
	if !strings.Contains(string(page.body), `<form method="post">`) {
		t.Errorf("the unsubscribe page has no form:\n%s", page.body)
	}
	if n := c.notification(id); count(n, "unsubscribed") != 0 {
		t.Fatalf("a GET unsubscribed: timeline %v", timeline(n))
	}
	for range 2 { // a repeat changes nothing
		hooks.must(204, "POST", u, "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded")
	}
	var prefs struct {
		Channels   map[string]bool            `json:"channels"`
		Categories map[string]map[string]bool `json:"categories"`
	}
	c.must(200, "GET", "/v1/users/ada/preferences", nil).decode(t, &prefs)
	emailOn, set := prefs.Channels["email"]
	if on, ok := prefs.Categories["marketing"]["email"]; !ok || on || (set && !emailOn) {
		t.Errorf("preferences after one-click: %+v, want marketing email off and email on", prefs)
	}
	n = c.notification(id)
	if n.Deliveries[0].Status != "clicked" || count(n, "unsubscribed") != 1 {
		t.Errorf("after one-click: %s, timeline %v", n.Deliveries[0].Status, timeline(n))
	}
	var types []string
	var unsubscribed webhookPayload
	for _, p := range r.waitPosts(t, 3) {
		w := decodePayload(t, p)
		types = append(types, w.Type)
		if w.Type == "user.unsubscribed" {
			unsubscribed = w
		}
	}
	slices.Sort(types) // up to 8 posts go out at once, so in any order
	if strings.Join(types, " ") != "delivery.clicked delivery.opened user.unsubscribed" ||
		unsubscribed.Data.UserID != "ada" || unsubscribed.Data.Channel != "email" || unsubscribed.Data.NotificationID != id {
		t.Errorf("webhook events = %v, user.unsubscribed = %+v", types, unsubscribed.Data)
	}

	// The next marketing email is suppressed as opted out.
	var acc struct {
		Deliveries []struct{ Status, Reason string }
	}
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "category": "marketing", "content": map[string]any{"body": "more"}}).decode(t, &acc)
	if acc.Deliveries[0].Status != "suppressed" || acc.Deliveries[0].Reason != "opted_out" {
		t.Errorf("next marketing email = %+v, want suppressed opted_out", acc.Deliveries[0])
	}
}

// TestUnsubscribeFormEverything: the page's form with scope=all turns the
// channel off; a bad scope is 422 naming it; a tampered token is 404.
func TestUnsubscribeFormEverything(t *testing.T) {
	c, hooks, sendgridd, _ := emailTracking(t, callbackConfig(t))
	_, req := sendMail(t, c, sendgridd, "<p>Hi</p>")
	u := path(t, strings.Trim(req.Mail.Headers["List-Unsubscribe"], "<>"))
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	res := hooks.do("POST", u, "scope=some", form...)
	problemSays(t, "a bad scope", res, 422)
	if !strings.Contains(string(res.body), `"field":"scope"`) {
		t.Errorf("a bad scope: %s, want the field named", res.body)
	}
	problemSays(t, "a tampered token", hooks.do("POST", u+"x", "scope=all", form...), 404)
	page := hooks.must(200, "POST", u, "scope=all", form...)
	if !strings.Contains(string(page.body), "You are unsubscribed") {
		t.Errorf("confirmation page:\n%s", page.body)
	}
	var prefs struct {
		Channels map[string]bool `json:"channels"`
	}
	c.must(200, "GET", "/v1/users/ada/preferences", nil).decode(t, &prefs)
	if on, ok := prefs.Channels["email"]; !ok || on {
		t.Errorf("preferences after scope=all: %+v, want email off", prefs)
	}
}

// TestSendGridEventsOfAnotherAppsKey: a batch signed with one app's key
// moves nothing of another app whose SendGrid has a key of its own, even
// though its events name that app's deliveries.
func TestSendGridEventsOfAnotherAppsKey(t *testing.T) {
	sendgridd := sendgridfake.New(t, sendgridfake.WithAPIKey(sendgridKey))
	a := start(t, callbackConfig(t))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	c := newAPI(t, a, newApp(t, a, "other"))
	c.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com"})
	c.must(200, "PUT", "/v1/providers/email", []map[string]any{{"kind": "sendgrid", "settings": map[string]any{
		"api_key": sendgridKey, "from": "shop@example.com", "endpoint": sendgridd.URL(), "ca_pem": sendgridd.CAPEM(),
		"webhook_public_key": base64.StdEncoding.EncodeToString(der)}}})
	id, req := sendMail(t, c, sendgridd, "<p>Hi</p>")
	hooks := newAPI(t, a, "")
	body, _ := json.Marshal([]map[string]any{event(req, "delivered")})

	ts, sig := sendgridfake.SignEvents(time.Now(), body) // the published key, not this app's
	problemSays(t, "signed with another key", hooks.do("POST", "/hooks/sendgrid/events", body,
		"X-Twilio-Email-Event-Webhook-Timestamp", ts, "X-Twilio-Email-Event-Webhook-Signature", sig), 403)
	if d := c.notification(id).Deliveries[0]; d.Status != "sent" {
		t.Fatalf("after a batch signed with another key: %s, want sent", d.Status)
	}
	ts, sig = sendgridfake.SignEventsWith(key, time.Now(), body)
	hooks.must(204, "POST", "/hooks/sendgrid/events", body,
		"X-Twilio-Email-Event-Webhook-Timestamp", ts, "X-Twilio-Email-Event-Webhook-Signature", sig)
	if d := c.notification(id).Deliveries[0]; d.Status != "delivered" {
		t.Errorf("after a batch signed with the app's key: %s, want delivered", d.Status)
	}
}

// TestCallbackBodiesAreCapped: an oversized callback is 413 before any
// work, and a tracking route never needs an API key.
func TestCallbackBodiesAreCapped(t *testing.T) {
	a := start(t, callbackConfig(t))
	hooks := newAPI(t, a, "")
	big := "MessageSid=" + strings.Repeat("x", 70<<10)
	problemSays(t, "a 70 KiB status callback", hooks.do("POST", "/hooks/twilio/status", big,
		"Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", "x"), 413)
	problemSays(t, "a made-up click link", hooks.do("GET", "/t/c/bm90LWEtdG9rZW4", nil), 404)
	problemSays(t, "a made-up open pixel", hooks.do("GET", "/t/o/bm90LWEtdG9rZW4", nil), 404)
	problemSays(t, "a made-up unsubscribe link", hooks.do("GET", "/u/bm90LWEtdG9rZW4", nil), 404)
}

// TestPushClickGoesThroughHerald: a web push's url (content and data)
// reaches the browser as a click link, and the click records clicked and
// leads to the original.
func TestPushClickGoesThroughHerald(t *testing.T) {
	vapid, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vapidPub := base64.RawURLEncoding.EncodeToString(vapid.PublicKey().Bytes())
	webd := webpushfake.New(t, webpushfake.RequireVAPID(vapidPub))
	a := start(t, callbackConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	c.must(200, "PUT", "/v1/providers/push", []map[string]any{{"kind": "webpush", "settings": map[string]any{
		"vapid_public_key": vapidPub, "vapid_private_key": base64.RawURLEncoding.EncodeToString(vapid.Bytes()),
		"subject": "mailto:ops@example.com", "ca_pem": webd.CAPEM()}}})
	c.must(201, "PUT", "/v1/users/ada", map[string]any{})
	c.must(201, "POST", "/v1/users/ada/devices", map[string]any{"platform": "web", "subscription": webd.NewSubscription()})
	const order = "https://shop.example/orders/42"
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"content": map[string]any{"title": "Shipped", "body": "Tuesday", "url": order,
			"data": map[string]any{"url": order + "?from=data", "order": "42"}}}).decode(t, &acc)
	c.waitDone(acc.ID, 20*time.Second)

	var payload struct {
		URL  string            `json:"url"`
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(webd.Requests()[0].Payload, &payload); err != nil {
		t.Fatal(err)
	}
	if payload.Data["order"] != "42" || !strings.HasPrefix(payload.Data["url"], publicURL+"/t/c/") {
		t.Errorf("push data = %v, want url as a click link and the rest as sent", payload.Data)
	}
	hooks := newAPI(t, a, "")
	if res := hooks.must(302, "GET", path(t, payload.URL), nil); res.header.Get("Location") != order {
		t.Errorf("the push's click leads to %q, want %q", res.header.Get("Location"), order)
	}
	if d := c.notification(acc.ID).Deliveries[0]; d.Status != "clicked" {
		t.Errorf("after the click the push is %s, want clicked", d.Status)
	}
}
