package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/provider/providertest"
)

// emailSetup starts Herald with an SMTP provider pointing at smtpd and a user ada.
func emailSetup(t *testing.T, smtpd *providertest.SMTPServer, maxAttempts int) *api {
	t.Helper()
	cfg := testConfig(t)
	cfg.MaxAttempts = maxAttempts
	cfg.RetryBackoff = 20 * time.Millisecond
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureEmail(t, c, smtpd)
	return c
}

// configureEmail adds the user ada and an SMTP provider pointing at smtpd.
func configureEmail(t *testing.T, c *api, smtpd *providertest.SMTPServer) {
	t.Helper()
	c.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com"})
	c.must(200, "PUT", "/v1/providers/email", []map[string]any{{"kind": "smtp",
		"settings": map[string]any{"endpoint": smtpd.Addr(), "from": "shop@example.com", "tls": "none"}}})
}

func sendEmail(t *testing.T, c *api) string {
	t.Helper()
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "content": map[string]any{"subject": "Hi", "body": "hello"}}).decode(t, &acc)
	return acc.ID
}

func timeline(n notificationView) []string {
	var out []string
	for _, e := range n.Deliveries[0].Timeline {
		out = append(out, e.Status)
	}
	return out
}

func TestOptedOutChannelIsSuppressedNotSilent(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	c := emailSetup(t, smtpd, 3)
	c.must(200, "PUT", "/v1/users/ada/preferences", map[string]any{"channels": map[string]bool{"email": false}})
	var acc struct {
		ID         string
		Deliveries []struct{ Status, Reason string }
	}
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "content": map[string]any{"body": "sale!"}}).decode(t, &acc)
	if len(acc.Deliveries) != 1 || acc.Deliveries[0].Status != "suppressed" || acc.Deliveries[0].Reason != "opted_out" {
		t.Fatalf("deliveries = %+v, want one suppressed, opted_out", acc.Deliveries)
	}
	n := c.waitDone(acc.ID, 5*time.Second)
	if got := timeline(n); len(got) != 1 || got[0] != "suppressed" {
		t.Errorf("timeline = %v", got)
	}
	if len(smtpd.Messages()) != 0 {
		t.Errorf("an opted-out user got mail")
	}
}

func TestRejectedAddressFailsAndIsDisabled(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t, providertest.RejectRecipient("ada@example.com", 550, [3]int{5, 1, 1}, "no such mailbox"))
	c := emailSetup(t, smtpd, 3)
	n := c.waitDone(sendEmail(t, c), 20*time.Second)
	d := n.Deliveries[0]
	if d.Status != "failed" || d.Reason != "invalid_recipient" || d.Attempts != 1 {
		t.Fatalf("delivery = %+v, want failed, invalid_recipient, 1 attempt", d)
	}
	for _, e := range d.Timeline {
		if strings.Contains(e.Detail, "ada@example.com") {
			t.Errorf("the timeline shows the address the API masks: %q", e.Detail)
		}
	}
	// The address is now known bad: the next email to ada is suppressed at once.
	var acc struct {
		Deliveries []struct{ Status, Reason string }
	}
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "content": map[string]any{"body": "again"}}).decode(t, &acc)
	if acc.Deliveries[0].Status != "suppressed" || acc.Deliveries[0].Reason != "invalid_recipient" {
		t.Errorf("next delivery = %+v, want suppressed, invalid_recipient", acc.Deliveries[0])
	}
}

func TestPassingFailuresRetryThenDie(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t, providertest.FailData(451, "try again later"))
	c := emailSetup(t, smtpd, 3)
	n := c.waitDone(sendEmail(t, c), 30*time.Second)
	d := n.Deliveries[0]
	if d.Status != "dead" || d.Reason != "retries_exhausted" || d.Attempts != 3 {
		t.Fatalf("delivery = %+v, want dead after 3 attempts", d)
	}
	steps := strings.Join(timeline(n), ",")
	if strings.Count(steps, "sending") != 3 || !strings.HasSuffix(steps, "sending,dead") {
		t.Errorf("timeline = %s, want three attempts ending dead", steps)
	}
	var sawDetail bool
	for _, e := range d.Timeline {
		sawDetail = sawDetail || strings.Contains(e.Detail, "451")
	}
	if !sawDetail {
		t.Errorf("no timeline entry carries the server's 451 reply: %+v", d.Timeline)
	}
}

func TestNoProviderRetriesThenDies(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxAttempts = 2
	cfg.RetryBackoff = 20 * time.Millisecond
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))
	c.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com"})
	n := c.waitDone(sendEmail(t, c), 30*time.Second)
	if d := n.Deliveries[0]; d.Status != "dead" || d.Reason != "no_provider" {
		t.Fatalf("delivery = %+v, want dead, no_provider", d)
	}
}

// TestSeedShapedEndpointsAndPush: the channel endpoints of the original
// design map onto the same pipeline, and push goes to every device.
func TestSeedShapedEndpointsAndPush(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	c := emailSetup(t, smtpd, 3)
	c.must(200, "PUT", "/v1/providers/push", []map[string]any{{"kind": "log"}})
	c.must(201, "POST", "/v1/users/ada/devices", map[string]any{"platform": "ios", "token": strings.Repeat("ab", 32)})
	c.must(201, "POST", "/v1/users/ada/devices", map[string]any{"platform": "android", "token": strings.Repeat("x", 152)})

	var acc struct{ ID string }
	c.must(202, "POST", "/v1/email/send", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"from": map[string]any{"email": "news@example.com"}, "subject": "Seed shape",
		"content": []any{map[string]any{"type": "text/plain", "value": "plain"}, map[string]any{"type": "text/html", "value": "<p>html</p>"}}}).decode(t, &acc)
	if n := c.waitDone(acc.ID, 20*time.Second); n.Deliveries[0].Status != "sent" {
		t.Fatalf("email delivery = %+v", n.Deliveries[0])
	}
	if msgs := smtpd.WaitForMessages(t, 1, 5*time.Second); msgs[0].Subject != "Seed shape" {
		t.Errorf("subject = %q", msgs[0].Subject)
	}

	c.must(202, "POST", "/v1/push/send", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"title": "Hello", "data": map[string]any{"badge": 3, "deep_link": "app://inbox", "silent": false},
		"content": []any{map[string]any{"type": "text/plain", "value": "tap me"}}}).decode(t, &acc)
	n := c.waitDone(acc.ID, 20*time.Second)
	if len(n.Deliveries) != 2 {
		t.Fatalf("push deliveries = %d, want one per device", len(n.Deliveries))
	}
	for _, d := range n.Deliveries {
		if d.Status != "sent" || d.Provider != "log" {
			t.Errorf("push delivery = %+v, want sent by log", d)
		}
	}
}

func TestListPagination(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	c := emailSetup(t, smtpd, 3)
	want := map[string]bool{}
	for range 5 {
		want[sendEmail(t, c)] = true
	}
	got := map[string]bool{}
	cursor, pages := "", 0
	for {
		var page struct {
			Data       []struct{ ID string }
			NextCursor string `json:"next_cursor"`
		}
		c.must(200, "GET", "/v1/notifications?limit=2&cursor="+cursor, nil).decode(t, &page)
		pages++
		for _, n := range page.Data {
			got[n.ID] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if pages != 3 || len(got) != 5 {
		t.Errorf("%d pages, %d notifications; want 3 pages of 5", pages, len(got))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("notification %s missing from the list", id)
		}
	}
}

// TestStopDrainsInFlightSends: stopping while a provider call is under way
// lets it finish and records its outcome before the process lets go.
func TestStopDrainsInFlightSends(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t, providertest.DataDelay(1500*time.Millisecond))
	cfg := testConfig(t)
	cfg.SendTimeout = 10 * time.Second
	a := start(t, cfg)
	key := newApp(t, a, "shop")
	c := newAPI(t, a, key)
	configureEmail(t, c, smtpd)
	id := sendEmail(t, c)

	deadline := time.Now().Add(10 * time.Second)
	for {
		var n notificationView
		c.must(200, "GET", "/v1/notifications/"+id, nil).decode(t, &n)
		if n.Deliveries[0].Status == "sending" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery never reached sending: %+v", n.Deliveries[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if n := len(smtpd.Messages()); n != 1 {
		t.Fatalf("SMTP server got %d messages by the end of Stop, want 1", n)
	}

	// A new process on the same data dir finds the outcome recorded.
	b := start(t, cfg)
	c = newAPI(t, b, key)
	var n notificationView
	c.must(200, "GET", "/v1/notifications/"+id, nil).decode(t, &n)
	if d := n.Deliveries[0]; d.Status != "sent" || d.Attempts != 1 {
		t.Fatalf("after restart: %+v, want sent in one attempt", d)
	}
}

// TestCancelWhatIsNotSent: a notification accepted by a process without
// workers is canceled; a worker started later sends nothing. Another app
// cannot cancel it.
func TestCancelWhatIsNotSent(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := testConfig(t)
	a, c, key := startAPIOnly(t, cfg, smtpd)
	id := sendEmail(t, c)

	other := newAPI(t, a, newApp(t, a, "other"))
	other.must(404, "DELETE", "/v1/notifications/"+id, nil)

	var n notificationView
	c.must(200, "DELETE", "/v1/notifications/"+id, nil).decode(t, &n)
	if d := n.Deliveries[0]; d.Status != "canceled" || d.Reason != "canceled_by_request" {
		t.Fatalf("after cancel: %+v", d)
	}
	c.must(200, "DELETE", "/v1/notifications/"+id, nil) // twice is harmless

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	b := start(t, cfg)
	c = newAPI(t, b, key)
	// A sent notification afterwards proves the worker runs; the canceled one stays canceled.
	done := c.waitDone(sendEmail(t, c), 20*time.Second)
	if done.Deliveries[0].Status != "sent" {
		t.Fatalf("control notification: %+v", done.Deliveries[0])
	}
	c.must(200, "GET", "/v1/notifications/"+id, nil).decode(t, &n)
	if n.Deliveries[0].Status != "canceled" {
		t.Fatalf("canceled delivery became %s", n.Deliveries[0].Status)
	}
	if got := len(smtpd.Messages()); got != 1 {
		t.Fatalf("SMTP server got %d messages, want only the control one", got)
	}
}

// TestEmailFailover: with the first email provider failing, deliveries go
// through the second at once; once the first recovers, traffic returns to it.
func TestEmailFailover(t *testing.T) {
	primary, secondary := providertest.NewSMTPServer(t), providertest.NewSMTPServer(t)
	primary.SetFailData(421, "service not available")
	cfg := testConfig(t)
	cfg.ProviderCooldown = 300 * time.Millisecond
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))
	c.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com"})
	relay := func(s *providertest.SMTPServer) map[string]any {
		return map[string]any{"kind": "smtp", "settings": map[string]any{"endpoint": s.Addr(), "from": "shop@example.com", "tls": "none"}}
	}
	c.must(200, "PUT", "/v1/providers/email", []map[string]any{relay(primary), relay(secondary)})

	for range 8 {
		n := c.waitDone(sendEmail(t, c), 10*time.Second)
		if d := n.Deliveries[0]; d.Status != "sent" || d.Attempts != 1 {
			t.Fatalf("delivery during the outage: %+v, want sent at the first attempt", d)
		}
	}
	if got := len(secondary.Messages()); got != 8 {
		t.Fatalf("second relay got %d messages, want 8", got)
	}

	primary.SetFailData(0, "")
	deadline := time.Now().Add(10 * time.Second)
	for len(primary.Messages()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("traffic never returned to the recovered first relay")
		}
		c.waitDone(sendEmail(t, c), 10*time.Second)
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(c.must(200, "GET", "/metrics", nil).body), `herald_provider_circuit_changes_total{provider="smtp",state="open"}`) {
		t.Error("the circuit opening is not in the metrics")
	}
}
