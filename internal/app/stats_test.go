package app_test

import (
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/provider/providertest"
)

type statsView struct {
	IntervalSeconds float64 `json:"interval_seconds"`
	Throughput      []struct {
		Accepted, Sent, Failed, Dead, Retried int64
	} `json:"throughput"`
	Totals    map[string]int64 `json:"totals"`
	Providers []struct {
		Channel, Kind, Circuit string
		Position               int
		Attempts, Errors       int64
		ErrorShare             float64 `json:"error_share"`
	} `json:"providers"`
	Queue struct {
		Scope     string
		Readable  bool
		Consumers []struct {
			Stream, Consumer string
		}
	} `json:"queue"`
}

func (s statsView) sum(field func(accepted, sent, failed, dead, retried int64) int64) int64 {
	var n int64
	for _, b := range s.Throughput {
		n += field(b.Accepted, b.Sent, b.Failed, b.Dead, b.Retried)
	}
	return n
}

// TestStatsMoveWhenNotificationsAreSent: GET /v1/stats counts the sends
// of the last minutes per interval, shows the SMTP provider with its
// answers and error share, and the deployment's queue consumers; another
// app sees none of the first app's activity. Bad parameters are 422s
// naming them.
func TestStatsMoveWhenNotificationsAreSent(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t,
		providertest.RejectRecipient("grace@example.com", 451, [3]int{4, 2, 1}, "mailbox busy, try again later"))
	cfg := testConfig(t)
	cfg.MaxAttempts = 2
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureEmail(t, c, smtpd)

	var before statsView
	c.must(200, "GET", "/v1/stats", nil).decode(t, &before)
	if len(before.Throughput) != 90 || before.IntervalSeconds != 10 {
		t.Errorf("the default window has %d intervals of %vs, want 90 of 10s", len(before.Throughput), before.IntervalSeconds)
	}
	if n := before.sum(func(a, s, f, d, r int64) int64 { return a + s + f + d + r }); n != 0 {
		t.Errorf("before any send the window counts %d events", n)
	}
	if len(before.Providers) != 1 || before.Providers[0].Kind != "smtp" || before.Providers[0].Circuit != "closed" ||
		before.Providers[0].Attempts != 0 {
		t.Errorf("providers before any send: %+v, want smtp, closed, no attempts", before.Providers)
	}
	if before.Queue.Scope != "deployment" || !before.Queue.Readable || len(before.Queue.Consumers) == 0 {
		t.Errorf("queue: %+v, want the deployment's readable consumers", before.Queue)
	}

	for range 3 {
		c.waitDone(sendEmail(t, c), 20*time.Second)
	}
	c.must(201, "PUT", "/v1/users/grace", map[string]any{"email": "grace@example.com"})
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "grace"}},
		"channels": []string{"email"}, "content": map[string]any{"subject": "Hi", "body": "hello"}}).decode(t, &acc)
	if st := c.waitDone(acc.ID, 20*time.Second).Deliveries[0].Status; st != "dead" {
		t.Fatalf("grace's email ended %s, want dead", st)
	}

	var after statsView
	c.must(200, "GET", "/v1/stats?window=5m&interval=30s", nil).decode(t, &after)
	if len(after.Throughput) != 10 {
		t.Errorf("5m by 30s: %d intervals, want 10", len(after.Throughput))
	}
	accepted := after.sum(func(a, _, _, _, _ int64) int64 { return a })
	sent := after.sum(func(_, s, _, _, _ int64) int64 { return s })
	dead := after.sum(func(_, _, _, d, _ int64) int64 { return d })
	retried := after.sum(func(_, _, _, _, r int64) int64 { return r })
	if accepted != 4 || sent != 3 || dead != 1 || retried != 1 {
		t.Errorf("the intervals count accepted %d, sent %d, dead %d, retried %d; want 4, 3, 1, 1", accepted, sent, dead, retried)
	}
	if after.Totals["accepted"] != 4 || after.Totals["sent"] != 3 {
		t.Errorf("totals %v, want accepted 4 and sent 3", after.Totals)
	}
	if len(after.Providers) != 1 {
		t.Fatalf("providers: %+v, want the smtp one", after.Providers)
	}
	// Three sent, one retried, one dead: two failures in five answers.
	if p := after.Providers[0]; p.Attempts != 5 || p.Errors != 2 || p.ErrorShare != 0.4 {
		t.Errorf("smtp: %+v, want 5 attempts, 2 errors, share 0.4", p)
	}

	var theirs statsView
	newAPI(t, a, newApp(t, a, "other")).must(200, "GET", "/v1/stats", nil).decode(t, &theirs)
	if n := theirs.sum(func(a, s, f, d, r int64) int64 { return a + s + f + d + r }); n != 0 || len(theirs.Providers) != 0 {
		t.Errorf("another app sees %d events and providers %+v, want none", n, theirs.Providers)
	}

	for _, tc := range []struct{ query, field string }{
		{"window=soon", "window"},
		{"window=2h", "window"},
		{"interval=500ms", "interval"},
		{"window=1h&interval=1s", "interval"},
		{"window=1m&interval=2m", "interval"},
	} {
		r := c.must(422, "GET", "/v1/stats?"+tc.query, nil)
		var p struct{ Errors []struct{ Field string } }
		r.decode(t, &p)
		if len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("%s: errors %+v, want one naming %s", tc.query, p.Errors, tc.field)
		}
	}
}

// TestStatsShowAnOpenCircuit: a provider that keeps failing has its
// circuit opened by the workers, and GET /v1/stats says so while it is.
func TestStatsShowAnOpenCircuit(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t,
		providertest.RejectRecipient("ada@example.com", 451, [3]int{4, 2, 1}, "mailbox busy, try again later"))
	cfg := testConfig(t)
	cfg.MaxAttempts = 2
	cfg.ProviderCooldown = time.Minute // stays open for the rest of the test
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureEmail(t, c, smtpd)
	// Three notifications, two attempts each: six failures in a row open
	// the circuit after the fifth.
	for range 3 {
		c.waitDone(sendEmail(t, c), 20*time.Second)
	}
	var s statsView
	c.must(200, "GET", "/v1/stats", nil).decode(t, &s)
	if len(s.Providers) != 1 || s.Providers[0].Circuit != "open" || s.Providers[0].ErrorShare != 1 {
		t.Errorf("providers: %+v, want smtp with its circuit open and every answer a failure", s.Providers)
	}
}

// TestStatsWithoutWorkersSayCircuitsAreUnknown: a process of the api role
// alone sends nothing, so its breakers know nothing of the providers; it
// says so rather than calling them closed.
func TestStatsWithoutWorkersSayCircuitsAreUnknown(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := testConfig(t)
	cfg.Roles = "api"
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureEmail(t, c, smtpd)
	var s statsView
	c.must(200, "GET", "/v1/stats", nil).decode(t, &s)
	if len(s.Providers) != 1 || s.Providers[0].Kind != "smtp" || s.Providers[0].Circuit != "unknown" {
		t.Errorf("providers: %+v, want smtp with its circuit unknown", s.Providers)
	}
}
