package app_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/provider/providertest"
)

type timedView struct {
	Deliveries []struct {
		ID       string `json:"id"`
		UserID   string `json:"user_id"`
		Status   string `json:"status"`
		Reason   string `json:"reason"`
		Timeline []struct {
			Status string    `json:"status"`
			At     time.Time `json:"at"`
			Detail string    `json:"detail"`
		} `json:"timeline"`
	} `json:"deliveries"`
}

func (c *api) timed(id string) timedView {
	c.t.Helper()
	var v timedView
	c.must(200, "GET", "/v1/notifications/"+id, nil).decode(c.t, &v)
	return v
}

// testClock is Herald's clock in a test: the wall clock moved by an
// offset that the test sets, so that it can stand at any hour of a user's
// day and then let time run.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Set moves the clock to hour:minute:second today in loc.
func (c *testClock) Set(loc *time.Location, hour, minute, second int) {
	real := time.Now()
	local := real.In(loc)
	target := time.Date(local.Year(), local.Month(), local.Day(), hour, minute, second, 0, loc)
	c.offset.Store(int64(target.Sub(real)))
}

// startWithClock starts Herald on a test clock.
func startWithClock(t *testing.T, cfg app.Config) (*app.App, *testClock) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	a := app.New(cfg, testLogger(t))
	a.SetClock(clock.Now)
	startApp(t, a)
	return a, clock
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func statuses(v timedView, i int) string {
	var out []string
	for _, e := range v.Deliveries[i].Timeline {
		out = append(out, e.Status)
	}
	return strings.Join(out, ",")
}

// TestSendAtWaitsForItsTime: a notification with send_at two seconds ahead
// is scheduled, reaches the SMTP server no earlier than that, and its
// timeline shows scheduled, queued, sending, sent.
func TestSendAtWaitsForItsTime(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	c := emailSetup(t, smtpd, 3)
	at := time.Now().Add(2 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	var acc struct {
		ID         string
		Deliveries []struct{ Status string }
	}
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "content": map[string]any{"body": "later"}, "send_at": at.Format(time.RFC3339)}).decode(t, &acc)
	if acc.Deliveries[0].Status != "scheduled" {
		t.Fatalf("accepted as %q, want scheduled", acc.Deliveries[0].Status)
	}
	if v := c.timed(acc.ID); v.Deliveries[0].Reason != "send_at" || !strings.Contains(v.Deliveries[0].Timeline[0].Detail, at.Format(time.RFC3339)) {
		t.Errorf("scheduled delivery: %+v, want reason send_at and its due time in the detail", v.Deliveries[0])
	}
	msgs := smtpd.WaitForMessages(t, 1, 20*time.Second)
	if arrived := time.Now(); arrived.Before(at) {
		t.Errorf("sent at %v, before its send_at %v (%d messages)", arrived, at, len(msgs))
	}
	n := c.waitDone(acc.ID, 10*time.Second)
	if got := strings.Join(timeline(n), ","); got != "scheduled,queued,sending,sent" {
		t.Errorf("timeline %s, want scheduled,queued,sending,sent", got)
	}
}

// TestCancelAScheduledSend: canceled before its time, it is never sent.
func TestCancelAScheduledSend(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	c := emailSetup(t, smtpd, 3)
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "content": map[string]any{"body": "later"},
		"send_at": time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339)}).decode(t, &acc)
	c.must(200, "DELETE", "/v1/notifications/"+acc.ID, nil)
	time.Sleep(5 * time.Second) // past its time, and many scheduler passes
	if v := c.timed(acc.ID); v.Deliveries[0].Status != "canceled" || statuses(v, 0) != "scheduled,canceled" {
		t.Errorf("delivery %s with timeline %s, want canceled after scheduled", v.Deliveries[0].Status, statuses(v, 0))
	}
	if n := len(smtpd.Messages()); n != 0 {
		t.Errorf("the SMTP server got %d messages, want none", n)
	}
}

// TestSendAtLocalUsesEachUsersTimezone: "09:00" is two seconds away for a
// user in Tokyo, whose email goes out then, and hours away for a user
// without a timezone (UTC), whose email stays scheduled.
func TestSendAtLocalUsesEachUsersTimezone(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	tokyo := zone(t, "Asia/Tokyo")
	a, clock := startWithClock(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureEmail(t, c, smtpd)
	c.must(201, "PUT", "/v1/users/kenji", map[string]any{"email": "kenji@example.com", "timezone": "Asia/Tokyo"})
	clock.Set(tokyo, 8, 59, 58)
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "kenji"}, map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "content": map[string]any{"body": "good morning"}, "send_at_local": "09:00"}).decode(t, &acc)
	msgs := smtpd.WaitForMessages(t, 1, 20*time.Second)
	if local := clock.Now().In(tokyo); local.Hour() != 9 {
		t.Errorf("sent at %s in Tokyo, want after 09:00", local.Format("15:04:05"))
	}
	if got := msgs[0].To; len(got) != 1 || got[0] != "kenji@example.com" {
		t.Errorf("the first mail went to %v, want kenji", got)
	}
	time.Sleep(time.Second)
	v := c.timed(acc.ID)
	for _, d := range v.Deliveries {
		switch d.UserID {
		case "kenji":
			if d.Status != "sent" {
				t.Errorf("kenji's delivery is %s, want sent", d.Status)
			}
		case "ada":
			want := "due " // the next 09:00 UTC
			if d.Status != "scheduled" || !strings.HasPrefix(d.Timeline[0].Detail, want) || !strings.Contains(d.Timeline[0].Detail, "T09:00:00Z") {
				t.Errorf("ada's delivery: %s, first event %+v; want scheduled, due at 09:00 UTC", d.Status, d.Timeline[0])
			}
		}
	}
	if n := len(smtpd.Messages()); n != 1 {
		t.Errorf("the SMTP server got %d messages, want 1", n)
	}
}

// TestQuietHoursHoldUntilTheirEnd: a user in Tokyo asleep (22:00–07:00)
// two seconds before 07:00 there gets the email at 07:00, with the hold on
// the timeline; outside the window an email goes at once.
func TestQuietHoursHoldUntilTheirEnd(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	tokyo := zone(t, "Asia/Tokyo")
	a, clock := startWithClock(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureEmail(t, c, smtpd)
	c.must(201, "PUT", "/v1/users/kenji", map[string]any{"email": "kenji@example.com", "timezone": "Asia/Tokyo"})
	c.must(200, "PUT", "/v1/users/kenji/preferences", map[string]any{"quiet_hours": map[string]string{"start": "22:00", "end": "07:00"}})
	clock.Set(tokyo, 6, 59, 57)
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "kenji"}},
		"channels": []string{"email"}, "content": map[string]any{"body": "news"}}).decode(t, &acc)
	smtpd.WaitForMessages(t, 1, 20*time.Second)
	if local := clock.Now().In(tokyo); local.Hour() != 7 {
		t.Errorf("sent at %s in Tokyo, want at 07:00 or just after", local.Format("15:04:05"))
	}
	c.waitDone(acc.ID, 10*time.Second)
	v := c.timed(acc.ID)
	d := v.Deliveries[0]
	if statuses(v, 0) != "accepted,scheduled,queued,sending,sent" {
		t.Errorf("timeline %s, want the hold between acceptance and the send", statuses(v, 0))
	}
	var held bool
	for _, e := range d.Timeline {
		if e.Status == "scheduled" {
			held = strings.Contains(e.Detail, "quiet hours 22:00 to 07:00 (Asia/Tokyo)")
		}
		if e.Status == "sent" && e.At.In(tokyo).Hour() != 7 {
			t.Errorf("sent event at %s Tokyo time, want 07:00 or after", e.At.In(tokyo).Format("15:04:05"))
		}
	}
	if !held {
		t.Errorf("no scheduled event names the quiet hours: %+v", d.Timeline)
	}
	// Now outside the window: the next one goes at once.
	start := time.Now()
	c.waitDone(sendTo(t, c, "kenji"), 10*time.Second)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("outside quiet hours the send took %v", took)
	}
}

func sendTo(t *testing.T, c *api, user string) string {
	t.Helper()
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": user}},
		"channels": []string{"email"}, "content": map[string]any{"body": "hello"}}).decode(t, &acc)
	return acc.ID
}

// TestGlobalUnsubscribe: a user who unsubscribed from everything gets a
// suppressed delivery, reason opted_out, on every channel; a critical
// category still reaches them.
func TestGlobalUnsubscribe(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	c := emailSetup(t, smtpd, 3)
	c.must(200, "PUT", "/v1/users/ada/preferences", map[string]any{"unsubscribed": true})
	var prefs struct{ Unsubscribed bool }
	c.must(200, "GET", "/v1/users/ada/preferences", nil).decode(t, &prefs)
	if !prefs.Unsubscribed {
		t.Fatalf("preferences do not say unsubscribed")
	}
	var acc struct {
		ID         string
		Deliveries []struct{ Status, Reason string }
	}
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"category": "marketing", "content": map[string]any{"body": "sale"}}).decode(t, &acc)
	if len(acc.Deliveries) != 1 || acc.Deliveries[0].Status != "suppressed" || acc.Deliveries[0].Reason != "opted_out" {
		t.Errorf("deliveries %+v, want one suppressed, opted_out", acc.Deliveries)
	}
	c.must(201, "PUT", "/v1/categories/security", map[string]any{"critical": true})
	c.waitDone(sendCategory(t, c, "security"), 20*time.Second)
	if n := len(smtpd.WaitForMessages(t, 1, 10*time.Second)); n != 1 {
		t.Errorf("the SMTP server got %d messages, want the critical one", n)
	}
}

func sendCategory(t *testing.T, c *api, category string) string {
	t.Helper()
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "category": category, "content": map[string]any{"body": "your code"}}).decode(t, &acc)
	return acc.ID
}

// TestScheduledSendSurvivesARestart: a send scheduled two seconds ahead,
// with Herald stopped before its time and started again on the same data,
// arrives once.
func TestScheduledSendSurvivesARestart(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := testConfig(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	first := app.New(cfg, testLogger(t))
	startApp(t, first)
	key := newApp(t, first, "shop")
	c := newAPI(t, first, key)
	configureEmail(t, c, smtpd)
	at := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "content": map[string]any{"body": "later"}, "send_at": at.Format(time.RFC3339)}).decode(t, &acc)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(at)) // its time passes while Herald is down
	second := start(t, cfg)
	c = newAPI(t, second, key)
	smtpd.WaitForMessages(t, 1, 20*time.Second)
	n := c.waitDone(acc.ID, 10*time.Second)
	time.Sleep(2 * time.Second) // more scheduler passes: nothing is sent again
	if got := len(smtpd.Messages()); got != 1 || n.Deliveries[0].Status != "sent" || n.Deliveries[0].Attempts != 1 {
		t.Errorf("%d messages, delivery %s after %d attempts; want one sent in one attempt", got, n.Deliveries[0].Status, n.Deliveries[0].Attempts)
	}
}
