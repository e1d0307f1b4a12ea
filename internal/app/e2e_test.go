package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/provider/providertest"
)

func TestWalkThroughEmbedded(t *testing.T) {
	walkThrough(t, testConfig(t))
}

func TestWalkThroughPostgresAndExternalNATS(t *testing.T) {
	walkThrough(t, scaledConfig(t))
}

// walkThrough is the README's curl walk-through: create an app, add a user,
// configure SMTP, send, read the status; the email must reach a real SMTP
// server exactly once and the timeline must show it sent.
func walkThrough(t *testing.T, cfg app.Config) {
	smtpd := providertest.NewSMTPServer(t)
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))

	c.must(201, "PUT", "/v1/users/ada", `{"email": "ada@example.com", "phone": "+1 415 555 0100",
		"locale": "en-GB", "timezone": "Europe/London", "attributes": {"plan": "pro", "crm_id": 123456789012345678901234567890}}`)
	user := string(c.must(200, "GET", "/v1/users/ada", nil).body)
	for _, want := range []string{`"phone":"+14155550100"`, `"crm_id":123456789012345678901234567890`} {
		if !strings.Contains(user, want) {
			t.Errorf("user %s lacks %s (phone normalised, attributes kept exactly)", user, want)
		}
	}
	c.must(200, "PUT", "/v1/providers/email", []map[string]any{{"kind": "smtp",
		"settings": map[string]any{"endpoint": smtpd.Addr(), "from": "shop@example.com", "tls": "none"}}})

	body := map[string]any{"to": []map[string]any{{"user_id": "ada"}}, "channels": []string{"email"},
		"content": map[string]any{"subject": "Welcome", "body": "Hello Ada!", "html": "<p>Hello <b>Ada</b>!</p>"}}
	var accepted struct {
		ID         string `json:"id"`
		Status     string `json:"status"`
		Deliveries []struct {
			ID, UserID, Channel, Status string
		} `json:"deliveries"`
	}
	c.must(202, "POST", "/v1/notifications", body, "Idempotency-Key", "welcome-ada-1").decode(t, &accepted)
	if accepted.Status != "accepted" || len(accepted.Deliveries) != 1 || accepted.Deliveries[0].Channel != "email" {
		t.Fatalf("accepted = %+v", accepted)
	}

	n := c.waitDone(accepted.ID, 30*time.Second)
	d := n.Deliveries[0]
	if d.Status != "sent" || d.Provider != "smtp" || d.Attempts != 1 {
		t.Fatalf("delivery = %+v, want sent by smtp in one attempt", d)
	}
	var steps []string
	for _, e := range d.Timeline {
		steps = append(steps, e.Status)
	}
	if len(steps) < 3 || steps[0] != "accepted" || steps[len(steps)-2] != "sending" || steps[len(steps)-1] != "sent" {
		t.Fatalf("timeline = %v, want accepted … sending, sent", steps)
	}

	msgs := smtpd.WaitForMessages(t, 1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("SMTP server got %d messages, want 1", len(msgs))
	}
	if msgs[0].MessageID == "" || !strings.Contains(d.ProviderMessageID, strings.Trim(msgs[0].MessageID, "<>")) {
		t.Errorf("Message-ID %q, provider_message_id %q: want the same", msgs[0].MessageID, d.ProviderMessageID)
	}
	if len(msgs[0].To) != 1 || msgs[0].To[0] != "ada@example.com" || msgs[0].Subject != "Welcome" {
		t.Errorf("mail = to %v subject %q", msgs[0].To, msgs[0].Subject)
	}

	// The same key and body answer the first answer; another body is a conflict.
	r := c.must(202, "POST", "/v1/notifications", body, "Idempotency-Key", "welcome-ada-1")
	var again struct{ ID string }
	r.decode(t, &again)
	if again.ID != accepted.ID || r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: id %s (want %s), Idempotent-Replayed %q", again.ID, accepted.ID, r.header.Get("Idempotent-Replayed"))
	}
	body["content"] = map[string]any{"body": "something else"}
	c.must(409, "POST", "/v1/notifications", body, "Idempotency-Key", "welcome-ada-1")

	var list struct {
		Data []struct{ ID string } `json:"data"`
	}
	c.must(200, "GET", "/v1/notifications?user_id=ada&limit=10", nil).decode(t, &list)
	if len(list.Data) != 1 || list.Data[0].ID != accepted.ID {
		t.Errorf("list = %+v", list)
	}

	// Nothing more reached the SMTP server: the replay sent nothing.
	time.Sleep(200 * time.Millisecond)
	if got := len(smtpd.Messages()); got != 1 {
		t.Errorf("SMTP server got %d messages, want 1", got)
	}

	metrics := string(c.must(200, "GET", "/metrics", nil).body)
	for _, want := range []string{`herald_provider_sends_total{channel="email",outcome="sent",provider="smtp"} 1`,
		`herald_deliveries_accepted_total{channel="email",status="accepted"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The tracker follows the EVENTS stream: every step of the delivery reaches it.
	deadline := time.Now().Add(10 * time.Second)
	for _, step := range []string{"accepted", "queued", "sending", "sent"} {
		want := `herald_delivery_events_total{channel="email",status="` + step + `"} 1`
		for {
			if v, _ := sample(scrape(t, c), "herald_delivery_events_total", map[string]string{"channel": "email", "status": step}); v == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the tracker never counted %s", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c.must(200, "GET", "/readyz", nil)

	// 6. A template, its preview, and a send with data; ada's locale en-GB
	// has no variant, so she reads the base parts.
	c.must(201, "PUT", "/v1/templates/welcome", map[string]any{
		"email":   map[string]any{"subject": "Welcome, {{.name}}", "html": "<p>Hello <b>{{.name}}</b>!</p>", "text": "Hello {{.name}}!"},
		"locales": map[string]any{"de": map[string]any{"email": map[string]any{"subject": "Willkommen, {{.name}}", "text": "Hallo {{.name}}!"}}}})
	var p struct {
		Locale string
		Email  struct{ Subject string }
	}
	c.must(200, "POST", "/v1/templates/welcome/preview", map[string]any{"data": map[string]any{"name": "Ada"}, "locale": "de"}).decode(t, &p)
	if p.Locale != "de" || p.Email.Subject != "Willkommen, Ada" {
		t.Errorf("preview = %+v", p)
	}
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"template": "welcome", "data": map[string]any{"name": "Ada"}}).decode(t, &accepted)
	c.waitDone(accepted.ID, 30*time.Second)
	if msgs := smtpd.WaitForMessages(t, 2, 10*time.Second); msgs[1].Subject != "Welcome, Ada" {
		t.Errorf("templated mail subject %q", msgs[1].Subject)
	}

	// 7. A topic: subscribe ada and send to the topic; the fan-out reaches her.
	c.must(200, "PUT", "/v1/topics/news/subscribers", map[string]any{"add": []string{"ada"}})
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"topic": "news"}},
		"channels": []string{"email"}, "content": map[string]any{"subject": "News", "body": "The news of the day"}}).decode(t, &accepted)
	if f := c.waitFanout(accepted.ID, 30*time.Second).Fanout; f.Recipients != 1 {
		t.Errorf("fanout = %+v, want 1 recipient", f)
	}
	c.waitDone(accepted.ID, 30*time.Second)
	if msgs := smtpd.WaitForMessages(t, 3, 10*time.Second); msgs[2].Subject != "News" || msgs[2].To[0] != "ada@example.com" {
		t.Errorf("topic mail: subject %q to %v", msgs[2].Subject, msgs[2].To)
	}
}
