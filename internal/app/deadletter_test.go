package app_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/provider/providertest/twiliofake"
)

const twilioSID, twilioToken = "AC0123456789abcdef0123456789abcdef", "twilio-secret"

// smsSetup starts Herald on cfg with a Twilio provider pointing at a fake and a user ada with a phone.
func smsSetup(t *testing.T, cfg app.Config) (*api, *app.App, *twiliofake.Server) {
	t.Helper()
	twiliod := twiliofake.New(t, twiliofake.WithAccount(twilioSID, twilioToken))
	a := start(t, cfg)
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureSMS(t, c, twiliod)
	return c, a, twiliod
}

func configureSMS(t *testing.T, c *api, twiliod *twiliofake.Server) {
	t.Helper()
	c.must(201, "PUT", "/v1/users/ada", map[string]any{"phone": "+14155550100"})
	c.must(200, "PUT", "/v1/providers/sms", []map[string]any{{"kind": "twilio", "settings": map[string]any{
		"account_sid": twilioSID, "auth_token": twilioToken, "from": "+15005550006",
		"endpoint": twiliod.URL(), "ca_pem": twiliod.CAPEM()}}})
}

func sendSMS(t *testing.T, c *api) string {
	t.Helper()
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"sms"}, "content": map[string]any{"body": "Your code is 123456"}}).decode(t, &acc)
	return acc.ID
}

// TestRetryAfterIsHonoured: Twilio throttles with Retry-After: 2; the next
// attempt reaches it no sooner, although the schedule alone would retry
// within milliseconds.
func TestRetryAfterIsHonoured(t *testing.T) {
	cfg := testConfig(t)
	cfg.RetryBackoff = 10 * time.Millisecond
	c, _, twiliod := smsSetup(t, cfg)
	twiliod.FailNext(1, 429, 20429, 2*time.Second)
	n := c.waitDone(sendSMS(t, c), 30*time.Second)
	if d := n.Deliveries[0]; d.Status != "sent" || d.Attempts != 2 {
		t.Fatalf("delivery = %+v, want sent at the second attempt", d)
	}
	at := twiliod.Arrivals()
	if len(at) != 2 {
		t.Fatalf("Twilio saw %d requests, want 2", len(at))
	}
	if gap := at[1].Sub(at[0]); gap < 2*time.Second {
		t.Errorf("the retry came %s after the throttled attempt, before its Retry-After of 2s", gap)
	}
}

// TestPermanentErrorIsNeverRetried: a message Twilio refuses for good fails
// at once, after one call.
func TestPermanentErrorIsNeverRetried(t *testing.T) {
	cfg := testConfig(t)
	cfg.RetryBackoff = 10 * time.Millisecond
	c, _, twiliod := smsSetup(t, cfg)
	twiliod.FailNext(1, 400, 21617, 0) // the body is too long
	n := c.waitDone(sendSMS(t, c), 30*time.Second)
	if d := n.Deliveries[0]; d.Status != "failed" || d.Reason != "provider_rejected" || d.Attempts != 1 {
		t.Fatalf("delivery = %+v, want failed, provider_rejected, after 1 attempt", d)
	}
	if got := len(twiliod.Requests()); got != 1 {
		t.Fatalf("Twilio saw %d requests, want exactly 1", got)
	}
}

type deadLetterList struct {
	Data []struct {
		ID                string `json:"id"`
		NotificationID    string `json:"notification_id"`
		UserID            string `json:"user_id"`
		Channel           string `json:"channel"`
		Attempts          int    `json:"attempts"`
		Reason            string `json:"reason"`
		DeadAt            string `json:"dead_at"`
		PossibleDuplicate bool   `json:"possible_duplicate"`
		Errors            []struct {
			Attempt  int    `json:"attempt"`
			Provider string `json:"provider"`
			Detail   string `json:"detail"`
		} `json:"errors"`
	} `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// deadSMS sends an SMS that Twilio answers 503 until it is dead, and returns its notification.
func deadSMS(t *testing.T, c *api, twiliod *twiliofake.Server, attempts int) notificationView {
	t.Helper()
	twiliod.FailNext(attempts, 503, 0, 0)
	n := c.waitDone(sendSMS(t, c), 30*time.Second)
	if d := n.Deliveries[0]; d.Status != "dead" || d.Reason != "retries_exhausted" || d.Attempts != attempts {
		t.Fatalf("delivery = %+v, want dead after %d attempts", d, attempts)
	}
	return n
}

// TestDeadLettersListAndReplay: a delivery whose retries ran out is in the
// dead letters with every attempt's error and counted in the metrics;
// a replay sends it exactly once more, and a second replay is refused.
func TestDeadLettersListAndReplay(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxAttempts = 3
	cfg.RetryBackoff = 10 * time.Millisecond
	c, a, twiliod := smsSetup(t, cfg)
	n := deadSMS(t, c, twiliod, 3)
	id := n.Deliveries[0].ID

	var list deadLetterList
	c.must(200, "GET", "/v1/dead-letters", nil).decode(t, &list)
	if len(list.Data) != 1 || list.NextCursor != "" {
		t.Fatalf("dead letters = %+v, want the one delivery", list)
	}
	dl := list.Data[0]
	if dl.ID != id || dl.NotificationID != n.ID || dl.UserID != "ada" || dl.Channel != "sms" || dl.Attempts != 3 ||
		dl.Reason != "retries_exhausted" || dl.DeadAt == "" {
		t.Errorf("dead letter = %+v", dl)
	}
	if len(dl.Errors) != 3 {
		t.Fatalf("error history = %+v, want one error per attempt", dl.Errors)
	}
	for i, e := range dl.Errors {
		if e.Attempt != i+1 || e.Provider != "twilio" || !strings.Contains(e.Detail, "503") {
			t.Errorf("error %d = %+v, want attempt %d's 503 from twilio", i, e, i+1)
		}
	}
	c.must(200, "GET", "/v1/dead-letters?channel=email", nil).decode(t, &list)
	if len(list.Data) != 0 {
		t.Errorf("the email dead letters list the SMS: %+v", list.Data)
	}
	c.must(422, "GET", "/v1/dead-letters?channel=fax", nil)
	if metrics := string(c.must(200, "GET", "/metrics", nil).body); !strings.Contains(metrics, `herald_dead_letters_total{channel="sms"} 1`) {
		t.Errorf("the metrics do not count the dead SMS:\n%s", grepLines(metrics, "herald_dead_letters_total"))
	}

	// Another app can neither see nor replay it.
	other := newAPI(t, a, newApp(t, a, "other"))
	other.must(200, "GET", "/v1/dead-letters", nil).decode(t, &list)
	if len(list.Data) != 0 {
		t.Errorf("another app sees %d dead letters", len(list.Data))
	}
	other.must(404, "POST", "/v1/dead-letters/"+id+"/replay", nil)
	c.must(404, "POST", "/v1/dead-letters/no-such-delivery/replay", nil)

	var replayed struct {
		Status   string `json:"status"`
		Reason   string `json:"reason"`
		Timeline []struct{ Status, Reason string }
	}
	c.must(202, "POST", "/v1/dead-letters/"+id+"/replay", nil).decode(t, &replayed)
	if replayed.Status != "accepted" || replayed.Reason != "replayed" {
		t.Errorf("replayed delivery = %+v, want accepted, replayed", replayed)
	}
	n = c.waitDone(n.ID, 30*time.Second)
	if d := n.Deliveries[0]; d.Status != "sent" || d.Attempts != 4 {
		t.Fatalf("after the replay: %+v, want sent at attempt 4", d)
	}
	if got, sent := len(twiliod.Requests()), twiliod.Received(); got != 4 || sent != 1 {
		t.Errorf("Twilio saw %d requests and accepted %d, want 3 failed and exactly 1 after the replay", got, sent)
	}
	c.must(409, "POST", "/v1/dead-letters/"+id+"/replay", nil)
	c.must(200, "GET", "/v1/dead-letters", nil).decode(t, &list)
	if len(list.Data) != 0 {
		t.Errorf("the sent delivery is still in the dead letters: %+v", list.Data)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSlowSendIsNotRedelivered: a provider call slower than the queue's ack
// wait keeps its message (progress acks), so JetStream never hands it to a
// second worker, and the provider sees one call. The ack wait is set below
// the send timeout here, which the configuration check forbids, to show
// the progress acks alone hold the message. It runs in the scaled-out mode
// so the test can read the consumer's redelivery count from NATS.
func TestSlowSendIsNotRedelivered(t *testing.T) {
	cfg := scaledConfig(t)
	cfg.SendTimeout = 10 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.AckWait = time.Second
	twiliod := twiliofake.New(t, twiliofake.WithAccount(twilioSID, twilioToken))
	a := app.New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	c := newAPI(t, a, newApp(t, a, "shop"))
	configureSMS(t, c, twiliod)
	twiliod.Latency(3 * time.Second)
	n := c.waitDone(sendSMS(t, c), 30*time.Second)
	d := n.Deliveries[0]
	if d.Status != "sent" || d.Attempts != 1 || strings.Count(strings.Join(timeline(n), ","), "sending") != 1 {
		t.Fatalf("delivery = %+v, want sent in one attempt", d)
	}
	if got := len(twiliod.Requests()); got != 1 {
		t.Errorf("Twilio saw %d requests, want exactly 1", got)
	}
	nc, err := nats.Connect(cfg.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, cfg.NATSPrefix+"_NOTIFY", "sms_normal")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 || info.Delivered.Consumer != 1 {
		t.Errorf("the consumer delivered %d messages, %d of them again; want 1 delivered once",
			info.Delivered.Consumer, info.NumRedelivered)
	}
}
