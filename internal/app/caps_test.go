package app_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/provider/providertest"
)

// sendMarketing sends one email in category to user and returns its notification id.
func sendMarketing(t *testing.T, c *api, user, category string) string {
	t.Helper()
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": user}},
		"channels": []string{"email"}, "category": category, "content": map[string]any{"subject": "Sale", "body": "50% off"}}).decode(t, &acc)
	return acc.ID
}

// outcomes waits for each notification to finish and counts its delivery's
// status; every delivery held back must carry reason rate_limited and a
// timeline naming the rule.
func outcomes(t *testing.T, c *api, ids []string, rule string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, id := range ids {
		n := c.waitDone(id, 60*time.Second)
		d := n.Deliveries[0]
		got[d.Status]++
		if d.Status != "suppressed" {
			continue
		}
		if d.Reason != "rate_limited" {
			t.Errorf("delivery %s suppressed with reason %q, want rate_limited", d.ID, d.Reason)
		}
		last := d.Timeline[len(d.Timeline)-1]
		if last.Status != "suppressed" || !strings.Contains(last.Detail, rule) {
			t.Errorf("delivery %s timeline ends %+v, want suppressed naming %q", d.ID, last, rule)
		}
	}
	return got
}

// TestFrequencyCapSuppress: with "at most 2 marketing emails per user per
// hour", the third and fourth to the same user are suppressed
// (rate_limited); another user and another category are not held back.
func TestFrequencyCapSuppress(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	a := start(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureEmail(t, c, smtpd)
	c.must(201, "PUT", "/v1/users/bob", map[string]any{"email": "bob@example.com"})
	c.must(201, "PUT", "/v1/categories/marketing", map[string]any{"frequency_caps": []any{
		map[string]any{"channel": "email", "max": 2, "per": "1h", "over": "suppress"},
		map[string]any{"channel": "sms", "max": 1, "per": "1h"}, // another channel: not counted
	}})

	var ids []string
	for range 4 {
		ids = append(ids, sendMarketing(t, c, "ada", "marketing"))
		c.waitDone(ids[len(ids)-1], 30*time.Second) // one after another, so the order is known
	}
	got := outcomes(t, c, ids, "email: at most 2 per 1h0m0s (suppress)")
	if got["sent"] != 2 || got["suppressed"] != 2 {
		t.Fatalf("ada's 4 capped emails: %v, want 2 sent and 2 suppressed", got)
	}
	if last := c.waitDone(ids[3], time.Second); last.Deliveries[0].Status != "suppressed" {
		t.Fatalf("the 4th email is %s, want suppressed", last.Deliveries[0].Status)
	}
	if got := outcomes(t, c, []string{sendMarketing(t, c, "bob", "marketing"), sendMarketing(t, c, "ada", "receipts")}, ""); got["sent"] != 2 {
		t.Fatalf("bob's marketing and ada's receipt: %v, want both sent", got)
	}
	smtpd.WaitForMessages(t, 4, 10*time.Second)
	if m := c.must(200, "GET", "/metrics", nil); !strings.Contains(string(m.body), `herald_frequency_capped_total{channel="email",over="suppress"} 2`) {
		t.Error("/metrics does not count the 2 suppressed emails in herald_frequency_capped_total")
	}
}

// TestFrequencyCapSharedByTwoWorkers: two Herald processes on one
// Postgres, one NATS and one Redis, both running workers, never send more
// than a cap allows between them: 10 emails against "at most 3 per hour"
// make exactly 3 sent and 7 suppressed.
func TestFrequencyCapSharedByTwoWorkers(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := scaledConfig(t)
	cfg.RedisURL = heraldtest.ServiceURL(t, heraldtest.EnvRedis)
	one := start(t, cfg)
	cfg.DataDir = t.TempDir() // each worker keeps its own journal
	two := start(t, cfg)

	key := newApp(t, one, "shop")
	c1, c2 := newAPI(t, one, key), newAPI(t, two, key)
	configureEmail(t, c1, smtpd)
	c1.must(201, "PUT", "/v1/categories/marketing", map[string]any{"frequency_caps": []any{
		map[string]any{"channel": "email", "max": 3, "per": "1h", "over": "suppress"}}})

	ids := make([]string, 10)
	var wg sync.WaitGroup
	for i := range ids {
		c := c1
		if i%2 == 1 {
			c = c2
		}
		wg.Go(func() { ids[i] = sendMarketing(t, c, "ada", "marketing") })
	}
	wg.Wait()
	got := outcomes(t, c1, ids, "email: at most 3 per 1h0m0s (suppress)")
	if got["sent"] != 3 || got["suppressed"] != 7 {
		t.Fatalf("10 emails against a cap of 3 on two workers: %v, want 3 sent and 7 suppressed", got)
	}
	if n := len(smtpd.WaitForMessages(t, 3, 10*time.Second)); n != 3 {
		t.Fatalf("the SMTP server received %d messages, want 3", n)
	}
}

// TestCriticalCategoryIsStillCapped: a critical category goes through the
// user's opt-out and quiet hours, but never past its frequency cap.
func TestCriticalCategoryIsStillCapped(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	a := start(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureEmail(t, c, smtpd)
	now := time.Now().UTC()
	c.must(200, "PUT", "/v1/users/ada/preferences", map[string]any{"channels": map[string]bool{"email": false}, "quiet_hours": map[string]any{
		"start": now.Add(-time.Hour).Format("15:04"), "end": now.Add(time.Hour).Format("15:04")}})
	c.must(201, "PUT", "/v1/categories/security", map[string]any{"critical": true, "frequency_caps": []any{
		map[string]any{"channel": "email", "max": 1, "per": "1h"}}})

	first := sendMarketing(t, c, "ada", "security")
	if n := c.waitDone(first, 30*time.Second); n.Deliveries[0].Status != "sent" {
		t.Fatalf("the critical email in quiet hours is %s (%s), want sent", n.Deliveries[0].Status, n.Deliveries[0].Reason)
	}
	second := sendMarketing(t, c, "ada", "security")
	if n := c.waitDone(second, 30*time.Second); n.Deliveries[0].Status != "suppressed" || n.Deliveries[0].Reason != "rate_limited" {
		t.Fatalf("the second critical email is %s (%s), want suppressed rate_limited", n.Deliveries[0].Status, n.Deliveries[0].Reason)
	}
	if n := c.waitDone(sendMarketing(t, c, "ada", "marketing"), 30*time.Second); n.Deliveries[0].Reason != "opted_out" {
		t.Fatalf("a marketing email to ada is %s (%s), want suppressed opted_out", n.Deliveries[0].Status, n.Deliveries[0].Reason)
	}
}
