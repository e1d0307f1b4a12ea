package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/provider/providertest/apnsfake"
	"github.com/heraldhq/herald/internal/provider/providertest/sendgridfake"
	"github.com/heraldhq/herald/internal/provider/providertest/twiliofake"
)

// fallbackRig is a running Herald with APNs, Twilio and SendGrid pointed
// at their fakes, and one app.
type fallbackRig struct {
	c         *api
	hooks     *api // without a key, for provider callbacks
	apnsd     *apnsfake.Server
	twiliod   *twiliofake.Server
	sendgridd *sendgridfake.Server
}

func newFallbackRig(t *testing.T) *fallbackRig {
	t.Helper()
	return newFallbackRigWith(t, testConfig(t))
}

func newFallbackRigWith(t *testing.T, cfg app.Config) *fallbackRig {
	t.Helper()
	const teamID, keyID = "TEAM123456", "KEY1234567"
	apnsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(apnsKey)
	r := &fallbackRig{
		apnsd:     apnsfake.New(t, apnsfake.WithKey(teamID, keyID, &apnsKey.PublicKey)),
		twiliod:   twiliofake.New(t, twiliofake.WithAccount(twilioSID, twilioToken)),
		sendgridd: sendgridfake.New(t, sendgridfake.WithAPIKey(sendgridKey)),
	}
	a := start(t, cfg)
	r.hooks = newAPI(t, a, "")
	r.c = newAPI(t, a, newApp(t, a, "shop"))
	r.c.must(200, "PUT", "/v1/providers/push", []map[string]any{
		{"kind": "apns", "settings": map[string]any{"team_id": teamID, "key_id": keyID, "topic": apnsfake.DefaultTopic,
			"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})),
			"endpoint":    r.apnsd.URL(), "ca_pem": r.apnsd.CAPEM()}}})
	r.c.must(200, "PUT", "/v1/providers/sms", []map[string]any{{"kind": "twilio", "settings": map[string]any{
		"account_sid": twilioSID, "auth_token": twilioToken, "from": "+15005550006",
		"endpoint": r.twiliod.URL(), "ca_pem": r.twiliod.CAPEM()}}})
	r.c.must(200, "PUT", "/v1/providers/email", []map[string]any{{"kind": "sendgrid", "settings": map[string]any{
		"api_key": sendgridKey, "from": "shop@example.com", "endpoint": r.sendgridd.URL(), "ca_pem": r.sendgridd.CAPEM()}}})
	return r
}

// user creates a user with a phone and an email address and an iPhone
// for each token given.
func (r *fallbackRig) user(t *testing.T, id string, iosTokens ...string) {
	t.Helper()
	r.c.must(201, "PUT", "/v1/users/"+id, map[string]any{"email": id + "@example.com", "phone": "+14155550100"})
	for _, tok := range iosTokens {
		r.c.must(201, "POST", "/v1/users/"+id+"/devices", map[string]any{"platform": "ios", "token": tok})
	}
}

type acceptedView struct {
	ID         string
	Deliveries []struct{ ID, Channel, Status, Reason string }
}

func (r *fallbackRig) send(t *testing.T, userID string, fallback []string, headers ...string) acceptedView {
	t.Helper()
	var acc acceptedView
	r.c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": userID}},
		"fallback": fallback, "content": map[string]any{"title": "Your code", "body": "Your code is 123456", "subject": "Code"}},
		headers...).decode(t, &acc)
	return acc
}

// steps lists a notification's deliveries as "channel status reason",
// sorted (the API lists them by id, which says nothing of their order).
func steps(n notificationView) []string {
	var out []string
	for _, d := range n.Deliveries {
		out = append(out, strings.TrimSpace(d.Channel+" "+d.Status+" "+d.Reason))
	}
	slices.Sort(out)
	return out
}

// firstDetail is the detail of the first timeline step of the notification's delivery on channel c.
func firstDetail(t *testing.T, n notificationView, c string) string {
	t.Helper()
	for _, d := range n.Deliveries {
		if d.Channel == c && len(d.Timeline) > 0 {
			return d.Timeline[0].Detail
		}
	}
	t.Fatalf("no %s delivery with a timeline in %+v", c, n)
	return ""
}

func wantSteps(t *testing.T, n notificationView, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := steps(n); !slices.Equal(got, want) {
		t.Errorf("deliveries = %q, want %q", got, want)
	}
}

// TestFallbackInvalidPushTokenTriesSMS: APNs answers 410 for the user's
// only iPhone; the push fails as invalid_recipient and, in the same log
// commit, the SMS delivery appears, which Twilio accepts. Email is never
// tried. With two iPhones both gone, the SMS is still sent once.
func TestFallbackInvalidPushTokenTriesSMS(t *testing.T) { invalidPushTokenTriesSMS(t, testConfig(t)) }

// TestFallbackInvalidPushTokenTriesSMSScaled is the same on Postgres and
// an external NATS server, where the store locks the notification's row
// to decide the step.
func TestFallbackInvalidPushTokenTriesSMSScaled(t *testing.T) {
	invalidPushTokenTriesSMS(t, scaledConfig(t))
}

func invalidPushTokenTriesSMS(t *testing.T, cfg app.Config) {
	r := newFallbackRigWith(t, cfg)
	tok := strings.Repeat("b2", 32)
	r.apnsd.Unregister(tok)
	r.user(t, "ada", tok)

	acc := r.send(t, "ada", []string{"push", "sms", "email"})
	if len(acc.Deliveries) != 1 || acc.Deliveries[0].Channel != "push" {
		t.Fatalf("accepted %+v, want the push delivery only", acc.Deliveries)
	}
	n := r.c.waitDone(acc.ID, 30*time.Second)
	wantSteps(t, n, "push failed invalid_recipient", "sms sent")
	if got, want := firstDetail(t, n, "sms"), "fallback: push could not reach the user (invalid_recipient); trying sms"; got != want {
		t.Errorf("the sms delivery's first step says %q, want %q", got, want)
	}
	if r.apnsd.Received() != 0 || r.twiliod.Received() != 1 || r.sendgridd.Received() != 0 {
		t.Errorf("APNs accepted %d, Twilio %d, SendGrid %d; want 0, 1, 0",
			r.apnsd.Received(), r.twiliod.Received(), r.sendgridd.Received())
	}

	// Two devices, both gone: one SMS, after the second failure.
	tok1, tok2 := strings.Repeat("c3", 32), strings.Repeat("d4", 32)
	r.apnsd.Unregister(tok1)
	r.apnsd.Unregister(tok2)
	r.user(t, "bob", tok1, tok2)
	n = r.c.waitDone(r.send(t, "bob", []string{"push", "sms"}).ID, 30*time.Second)
	wantSteps(t, n, "push failed invalid_recipient", "push failed invalid_recipient", "sms sent")
	if r.twiliod.Received() != 2 {
		t.Errorf("Twilio accepted %d messages in all, want 2", r.twiliod.Received())
	}
}

// TestFallbackWithoutDevicesGoesStraightToSMS: a user with no device is
// answered with a suppressed push (no_address, the skip noted on its
// timeline) and a live SMS delivery.
func TestFallbackWithoutDevicesGoesStraightToSMS(t *testing.T) {
	r := newFallbackRig(t)
	r.user(t, "ada")
	acc := r.send(t, "ada", []string{"push", "sms", "email"})
	var got []string
	for _, d := range acc.Deliveries {
		got = append(got, strings.TrimSpace(d.Channel+" "+d.Status+" "+d.Reason))
	}
	if want := []string{"push suppressed no_address", "sms accepted"}; !slices.Equal(got, want) {
		t.Errorf("accepted %q, want %q", got, want)
	}
	n := r.c.waitDone(acc.ID, 30*time.Second)
	wantSteps(t, n, "push suppressed no_address", "sms sent")
	if got, want := firstDetail(t, n, "push"), "fallback: push could not reach the user (no_address); trying sms"; got != want {
		t.Errorf("the push delivery's step says %q, want %q", got, want)
	}
	if r.twiliod.Received() != 1 || r.sendgridd.Received() != 0 {
		t.Errorf("Twilio accepted %d, SendGrid %d; want 1, 0", r.twiliod.Received(), r.sendgridd.Received())
	}
}

// TestFallbackSkipsEveryChannelThatCannotReach: no device and SMS turned
// off in the user's preferences: push and SMS are both recorded as
// skipped, each saying why and what comes next, and the email is sent.
func TestFallbackSkipsEveryChannelThatCannotReach(t *testing.T) {
	r := newFallbackRig(t)
	r.user(t, "ada")
	r.c.must(200, "PUT", "/v1/users/ada/preferences", map[string]any{"channels": map[string]bool{"sms": false}})
	n := r.c.waitDone(r.send(t, "ada", []string{"push", "sms", "email"}).ID, 30*time.Second)
	wantSteps(t, n, "push suppressed no_address", "sms suppressed opted_out", "email sent")
	for c, want := range map[string]string{
		"push":  "fallback: push could not reach the user (no_address); trying sms",
		"sms":   "fallback: sms could not reach the user (opted_out); trying email",
		"email": "fallback: sms could not reach the user (opted_out); trying email",
	} {
		if got := firstDetail(t, n, c); got != want {
			t.Errorf("the %s delivery's first step says %q, want %q", c, got, want)
		}
	}
	if r.twiliod.Received() != 0 || r.sendgridd.Received() != 1 {
		t.Errorf("Twilio accepted %d, SendGrid %d; want 0, 1", r.twiliod.Received(), r.sendgridd.Received())
	}
	// Nothing can reach a user with only SMS, turned off: the plan ends there.
	n = r.c.waitDone(r.send(t, "ada", []string{"push", "sms"}).ID, 30*time.Second)
	wantSteps(t, n, "push suppressed no_address", "sms suppressed opted_out")
	if got, want := firstDetail(t, n, "sms"), "fallback: sms could not reach the user (opted_out); no channel left to try"; got != want {
		t.Errorf("the last skipped step says %q, want %q", got, want)
	}
}

// TestFallbackCriticalCategoryIgnoresOptOut: a critical category's plan
// does not skip a channel the user turned off, at acceptance or in a step
// after a failure.
func TestFallbackCriticalCategoryIgnoresOptOut(t *testing.T) {
	r := newFallbackRig(t)
	tok := strings.Repeat("a7", 32)
	r.apnsd.Unregister(tok)
	r.user(t, "ada", tok)
	r.c.must(200, "PUT", "/v1/users/ada/preferences", map[string]any{"channels": map[string]bool{"sms": false}})
	r.c.must(201, "PUT", "/v1/categories/security", map[string]any{"critical": true})
	var acc acceptedView
	r.c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"category": "security", "fallback": []string{"push", "sms", "email"},
		"content": map[string]any{"title": "New sign-in", "body": "A new sign-in to your account", "subject": "New sign-in"}}).decode(t, &acc)
	n := r.c.waitDone(acc.ID, 30*time.Second)
	wantSteps(t, n, "push failed invalid_recipient", "sms sent")
	if r.twiliod.Received() != 1 || r.sendgridd.Received() != 0 {
		t.Errorf("Twilio accepted %d, SendGrid %d; want 1, 0", r.twiliod.Received(), r.sendgridd.Received())
	}
}

// TestFallbackPushSentSendsNothingElse: a push that reaches APNs ends the
// plan. The step would be written in the commit of the push's outcome, so
// once the push is sent the deliveries are final.
func TestFallbackPushSentSendsNothingElse(t *testing.T) {
	r := newFallbackRig(t)
	r.user(t, "ada", strings.Repeat("e5", 32))
	n := r.c.waitDone(r.send(t, "ada", []string{"push", "sms", "email"}).ID, 30*time.Second)
	wantSteps(t, n, "push sent")
	if r.apnsd.Received() != 1 || r.twiliod.Received() != 0 || r.sendgridd.Received() != 0 {
		t.Errorf("APNs accepted %d, Twilio %d, SendGrid %d; want 1, 0, 0",
			r.apnsd.Received(), r.twiliod.Received(), r.sendgridd.Received())
	}
}

// TestFallbackPermanentSMSFailureTriesEmail: Twilio refuses the message
// for good (400 with a code that is neither the recipient's nor the
// account's fault): the SMS fails as provider_rejected and the email is sent.
func TestFallbackPermanentSMSFailureTriesEmail(t *testing.T) {
	r := newFallbackRig(t)
	r.user(t, "ada")
	r.twiliod.FailNext(1, http.StatusBadRequest, 21617, 0) // the body is too long
	n := r.c.waitDone(r.send(t, "ada", []string{"sms", "email"}).ID, 30*time.Second)
	wantSteps(t, n, "sms failed provider_rejected", "email sent")
	if got, want := firstDetail(t, n, "email"), "fallback: sms could not reach the user (provider_rejected); trying email"; got != want {
		t.Errorf("the email delivery's first step says %q, want %q", got, want)
	}
	if r.sendgridd.Received() != 1 {
		t.Errorf("SendGrid accepted %d, want 1", r.sendgridd.Received())
	}
}

// TestFallbackUndeliveredSMSTriesEmail: Twilio accepted the SMS, then
// reports it undelivered in a signed status callback: the failure and the
// email delivery are written together, and a replay of the callback adds
// nothing.
func TestFallbackUndeliveredSMSTriesEmail(t *testing.T) {
	r := newFallbackRigWith(t, callbackConfig(t))
	r.user(t, "ada")
	id := r.send(t, "ada", []string{"sms", "email"}).ID
	n := r.c.waitDone(id, 30*time.Second)
	wantSteps(t, n, "sms sent")
	undelivered := twiliofake.StatusCallback(twilioSID, n.Deliveries[0].ProviderMessageID, "undelivered", "30003")
	signature := twiliofake.Sign(twilioToken, publicURL+"/hooks/twilio/status", undelivered)
	for range 2 {
		r.hooks.must(204, "POST", "/hooks/twilio/status", undelivered.Encode(),
			"Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", signature)
	}
	n = r.c.waitDone(id, 30*time.Second)
	wantSteps(t, n, "sms failed provider_rejected", "email sent")
	if got, want := firstDetail(t, n, "email"), "fallback: sms could not reach the user (provider_rejected); trying email"; got != want {
		t.Errorf("the email delivery's first step says %q, want %q", got, want)
	}
	if r.sendgridd.Received() != 1 {
		t.Errorf("SendGrid accepted %d, want 1", r.sendgridd.Received())
	}
}

// waitSteps polls the notification until its deliveries read want (see steps).
func (r *fallbackRig) waitSteps(t *testing.T, id string, want ...string) notificationView {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := r.c.notification(id)
		if slices.Equal(steps(n), want) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("notification %s: deliveries %q after 30s, want %q", id, steps(n), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFallbackWindowWithoutReceipt: with "fallback_window", an SMS still
// sent without a delivery receipt when the window ends hands over to
// email; the SMS stays sent, its timeline shows the step. An SMS whose
// receipt came in time ends the plan: a later notification's window,
// which ends after it, is seen to hand over first.
func TestFallbackWindowWithoutReceipt(t *testing.T) {
	r := newFallbackRigWith(t, callbackConfig(t))
	send := func(user string) string {
		t.Helper()
		var acc acceptedView
		r.c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": user}},
			"fallback": []string{"sms", "email"}, "fallback_window": "1s",
			"content": map[string]any{"body": "Your code is 123456", "subject": "Code"}}).decode(t, &acc)
		return acc.ID
	}
	r.user(t, "ada")
	r.user(t, "bob")
	delivered := send("bob")
	sid := r.c.waitDone(delivered, 30*time.Second).Deliveries[0].ProviderMessageID
	receipt := twiliofake.StatusCallback(twilioSID, sid, "delivered", "")
	r.hooks.must(204, "POST", "/hooks/twilio/status", receipt.Encode(), "Content-Type", "application/x-www-form-urlencoded",
		"X-Twilio-Signature", twiliofake.Sign(twilioToken, publicURL+"/hooks/twilio/status", receipt))
	silent := send("ada")

	n := r.waitSteps(t, silent, "sms sent", "email sent")
	want := "fallback: sms could not reach the user (no receipt within 1s); trying email"
	if got := firstDetail(t, n, "email"); got != want {
		t.Errorf("the email delivery's first step says %q, want %q", got, want)
	}
	var step []string
	for _, d := range n.Deliveries {
		for _, e := range d.Timeline {
			if e.Status == "fallback" {
				step = append(step, d.Channel+": "+e.Detail)
			}
		}
	}
	if !slices.Equal(step, []string{"sms: " + want}) {
		t.Errorf("fallback steps on the timeline: %q, want one on the sms delivery", step)
	}
	wantSteps(t, r.c.notification(delivered), "sms delivered")
	if r.sendgridd.Received() != 1 {
		t.Errorf("SendGrid accepted %d, want 1", r.sendgridd.Received())
	}
}

// TestFallbackIdempotentReplay: the same request with the same
// Idempotency-Key answers the first answer and starts nothing new; the
// plan runs once.
func TestFallbackIdempotentReplay(t *testing.T) {
	r := newFallbackRig(t)
	tok := strings.Repeat("f6", 32)
	r.apnsd.Unregister(tok)
	r.user(t, "ada", tok)
	first := r.send(t, "ada", []string{"push", "sms"}, "Idempotency-Key", "otp-1")
	r.c.waitDone(first.ID, 30*time.Second)
	res := r.c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"fallback": []string{"push", "sms"}, "content": map[string]any{"title": "Your code", "body": "Your code is 123456", "subject": "Code"}},
		"Idempotency-Key", "otp-1")
	var again acceptedView
	res.decode(t, &again)
	if res.header.Get("Idempotent-Replayed") != "true" || again.ID != first.ID || len(again.Deliveries) != 1 ||
		again.Deliveries[0].ID != first.Deliveries[0].ID {
		t.Errorf("replay answered %+v (replayed %q), want the first answer %+v", again, res.header.Get("Idempotent-Replayed"), first)
	}
	// The same key with another plan is a conflict.
	r.c.must(409, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"fallback": []string{"sms", "push"}, "content": map[string]any{"title": "Your code", "body": "Your code is 123456", "subject": "Code"}},
		"Idempotency-Key", "otp-1")
	n := r.c.waitDone(first.ID, 30*time.Second)
	wantSteps(t, n, "push failed invalid_recipient", "sms sent")
	if r.twiliod.Received() != 1 {
		t.Errorf("Twilio accepted %d messages, want 1", r.twiliod.Received())
	}
}

// TestFallbackBadInput: a malformed plan is a 422 naming the member.
func TestFallbackBadInput(t *testing.T) {
	a := start(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	c.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com"})
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"unknown channel", map[string]any{"fallback": []string{"push", "fax"}}, "fallback[1]"},
		{"listed twice", map[string]any{"fallback": []string{"sms", "email", "sms"}}, "fallback[2]"},
		{"with channels", map[string]any{"fallback": []string{"sms", "email"}, "channels": []string{"email"}}, "fallback"},
		{"empty", map[string]any{"fallback": []string{}}, "fallback"},
		{"not a list", map[string]any{"fallback": "push"}, "fallback"},
		{"window without a plan", map[string]any{"fallback_window": "10m"}, "fallback_window"},
		{"window not a duration", map[string]any{"fallback": []string{"sms", "email"}, "fallback_window": "soon"}, "fallback_window"},
		{"window too short", map[string]any{"fallback": []string{"sms", "email"}, "fallback_window": "10ms"}, "fallback_window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"to": []any{map[string]any{"user_id": "ada"}}, "content": map[string]any{"body": "hi"}}
			for k, v := range tc.body {
				body[k] = v
			}
			var p struct {
				Errors []struct{ Field, Message string }
			}
			c.must(422, "POST", "/v1/notifications", body).decode(t, &p)
			var fields []string
			for _, e := range p.Errors {
				fields = append(fields, e.Field)
			}
			if !slices.Contains(fields, tc.field) {
				t.Errorf("422 names %q, want %q", fields, tc.field)
			}
		})
	}
}
