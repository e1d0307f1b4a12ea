package app_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/provider/providertest"
)

// topicApp creates an app in a's store, its users sub000000… with email
// addresses (through the store, 1,000 to a transaction: thousands of PUTs
// would only slow the test), and an API client for it.
func topicApp(t testing.TB, a *app.App, users int) (herald.App, *api) {
	t.Helper()
	ctx := context.Background()
	tenant, key, err := app.CreateApp(ctx, a.Store(), "news", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var batch []herald.User
	for i := range users {
		id := subscriberID(i)
		batch = append(batch, herald.User{AppID: tenant.ID, ID: id, Email: id + "@example.com"})
		if len(batch) == 1000 || i == users-1 {
			if _, err := a.Store().PutUsers(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	tt, _ := t.(*testing.T)
	return tenant, newAPI(tt, a, key)
}

func subscriberID(i int) string { return fmt.Sprintf("sub%06d", i) }

func subscriberIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = subscriberID(i)
	}
	return ids
}

type notificationWithFanout struct {
	notificationView
	Fanout *struct {
		Topic      string `json:"topic"`
		Status     string `json:"status"`
		Recipients int    `json:"recipients"`
	} `json:"fanout"`
}

// waitFanout polls the notification until its fan-out completed.
func (c *api) waitFanout(id string, timeout time.Duration) notificationWithFanout {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var n notificationWithFanout
		c.must(200, "GET", "/v1/notifications/"+id, nil).decode(c.t, &n)
		if n.Fanout == nil {
			c.t.Fatalf("notification %s has no fanout", id)
		}
		if n.Fanout.Status == herald.FanoutCompleted {
			return n
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("fan-out of %s not completed after %s: %+v", id, timeout, n.Fanout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deliveriesPerUser counts the notification's deliveries in the log by user.
func deliveriesPerUser(t testing.TB, s herald.Store, appID, notificationID string) map[string]int {
	t.Helper()
	ds, err := s.ListDeliveries(context.Background(), appID, notificationID)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, d := range ds {
		per[d.UserID]++
	}
	return per
}

// checkExactlyOnce fails unless want lists every user with exactly one delivery.
func checkExactlyOnce(t testing.TB, per map[string]int, want []string) {
	t.Helper()
	bad := 0
	for _, u := range want {
		if per[u] != 1 {
			bad++
			if bad <= 5 {
				t.Errorf("user %s has %d deliveries, want 1", u, per[u])
			}
		}
	}
	if len(per) != len(want) {
		t.Errorf("%d users have deliveries, want %d", len(per), len(want))
	}
	if bad > 0 {
		t.Errorf("%d of %d users without exactly one delivery", bad, len(want))
	}
}

// checkMailedOnce fails unless every address of want got exactly one message.
func checkMailedOnce(t *testing.T, smtpd *providertest.SMTPServer, want []string) {
	t.Helper()
	got := map[string]int{}
	for _, m := range smtpd.Messages() {
		for _, to := range m.To {
			got[strings.TrimSuffix(to, "@example.com")]++
		}
	}
	for _, u := range want {
		if got[u] != 1 {
			t.Errorf("%s got %d messages, want 1", u, got[u])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d addresses got mail, want %d", len(got), len(want))
	}
}

// TestTopicFanout (embedded): subscriptions through the API, a send to the
// topic and to one subscriber directly; every subscriber gets exactly one
// delivery, in the log and at the SMTP server, over three pages, and
// neither an unsubscribed user nor one never subscribed gets any.
func TestTopicFanout(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := testConfig(t)
	cfg.Workers = 16 // the SMTP sessions wait on the network, not the CPU
	a := start(t, cfg)
	const n = 2000
	tenant, c := topicApp(t, a, n)
	configureEmail(t, c, smtpd) // also creates ada
	c.must(201, "PUT", "/v1/users/bob", map[string]any{"email": "bob@example.com"})
	c.must(201, "PUT", "/v1/users/carol", map[string]any{"email": "carol@example.com"})

	// An unknown user refuses the whole change, naming it.
	r := c.must(422, "PUT", "/v1/topics/news/subscribers", map[string]any{"add": []string{"ada", "nobody"}})
	if !strings.Contains(string(r.body), `"add[1]"`) {
		t.Errorf("unknown subscriber: %s, want the field add[1]", r.body)
	}
	c.must(404, "GET", "/v1/topics/news", nil)
	c.must(200, "PUT", "/v1/topics/news/subscribers", map[string]any{"add": append(subscriberIDs(n), "ada", "carol")})
	var topic struct {
		Name        string `json:"name"`
		Subscribers int    `json:"subscribers"`
	}
	c.must(200, "PUT", "/v1/topics/news/subscribers", map[string]any{"remove": []string{"carol"}}).decode(t, &topic)
	if topic.Subscribers != n+1 {
		t.Fatalf("topic = %+v, want %d subscribers", topic, n+1)
	}
	c.must(200, "GET", "/v1/topics/news", nil).decode(t, &topic)
	if topic.Name != "news" || topic.Subscribers != n+1 {
		t.Fatalf("GET topic = %+v", topic)
	}
	// The list pages through every subscriber once, in user id order.
	var listed []string
	for cursor := ""; ; {
		var page struct {
			Data []struct {
				UserID string `json:"user_id"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		c.must(200, "GET", "/v1/topics/news/subscribers?limit=500&cursor="+cursor, nil).decode(t, &page)
		for _, s := range page.Data {
			listed = append(listed, s.UserID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(listed) != n+1 || listed[0] != "ada" || listed[1] != subscriberID(0) || listed[n] != subscriberID(n-1) {
		t.Fatalf("listed %d subscribers, first %v", len(listed), listed[:min(3, len(listed))])
	}

	c.must(422, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"topic": "sports"}},
		"content": map[string]any{"body": "x"}})
	var acc struct {
		ID         string
		Deliveries []struct {
			UserID string `json:"user_id"`
		} `json:"deliveries"`
	}
	c.must(202, "POST", "/v1/notifications", map[string]any{
		"to":       []any{map[string]any{"topic": "news"}, map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "content": map[string]any{"subject": "News", "body": "today's news"}}).decode(t, &acc)
	if len(acc.Deliveries) != 1 || acc.Deliveries[0].UserID != "ada" {
		t.Fatalf("202 deliveries = %+v, want ada's only: the topic's come from the fan-out", acc.Deliveries)
	}
	got := c.waitFanout(acc.ID, 60*time.Second)
	if got.Fanout.Topic != "news" || got.Fanout.Recipients != n+1 {
		t.Errorf("fanout = %+v, want news with %d recipients", got.Fanout, n+1)
	}
	want := append(subscriberIDs(n), "ada")
	checkExactlyOnce(t, deliveriesPerUser(t, a.Store(), tenant.ID, acc.ID), want)
	// Generous: thousands of SMTP sessions, under -race on a busy machine.
	smtpd.WaitForMessages(t, n+1, 5*time.Minute)
	c.waitDone(acc.ID, time.Minute)
	checkMailedOnce(t, smtpd, want)
}

// TestTopicFanoutResumesAfterCrash (embedded): the fan-out runner dies
// right after committing its first page, before queueing it; a new process
// on the same data dir (or database) finishes the fan-out from the cursor and queues the
// stranded page through the reconciler, and every subscriber still gets
// exactly one delivery, in the log and at the SMTP server.
func TestTopicFanoutResumesAfterCrash(t *testing.T) { topicCrash(t, testConfig(t)) }

// TestTopicFanoutResumesAfterCrashPostgresAndExternalNATS: the same on the
// scaled-out mode, the second process on the same database and streams.
func TestTopicFanoutResumesAfterCrashPostgresAndExternalNATS(t *testing.T) {
	topicCrash(t, scaledConfig(t))
}

func topicCrash(t *testing.T, cfg app.Config) {
	smtpd := providertest.NewSMTPServer(t)
	cfg.Roles = "api,scheduler" // no workers: what the first process queued stays visible
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	first := app.New(cfg, testLogger(t))
	committed := make(chan herald.FanoutPage, 1)
	first.SetFanoutAfterCommit(func(p *herald.FanoutPage) error {
		committed <- *p
		return errors.New("crash")
	})
	startApp(t, first)
	const n = 2500
	tenant, c := topicApp(t, first, n)
	configureEmail(t, c, smtpd)
	c.must(200, "PUT", "/v1/topics/news/subscribers", map[string]any{"add": subscriberIDs(n)})
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"topic": "news"}},
		"channels": []string{"email"}, "content": map[string]any{"subject": "News", "body": "today's news"}}).decode(t, &acc)

	var page herald.FanoutPage
	select {
	case page = <-committed:
	case <-time.After(30 * time.Second):
		t.Fatal("the first page was not committed")
	}
	if page.Users != 1000 || page.Done || len(page.Inserted) != 1000 {
		t.Fatalf("first page: %d users, done %v, %d deliveries; want 1000, false, 1000", page.Users, page.Done, len(page.Inserted))
	}
	var mid notificationWithFanout
	c.must(200, "GET", "/v1/notifications/"+acc.ID, nil).decode(t, &mid)
	if mid.Fanout == nil || mid.Fanout.Status != herald.FanoutRunning || mid.Fanout.Recipients != 1000 || mid.Status == "completed" {
		t.Fatalf("after the crash: status %s, fanout %+v; want running at 1000", mid.Status, mid.Fanout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	cfg.Roles = "api,worker,tracker,scheduler"
	cfg.Workers = 16 // the SMTP sessions wait on the network, not the CPU
	second := start(t, cfg)
	c2 := newAPI(t, second, c.key)
	c2.waitFanout(acc.ID, 60*time.Second)
	want := subscriberIDs(n)
	checkExactlyOnce(t, deliveriesPerUser(t, second.Store(), tenant.ID, acc.ID), want)
	smtpd.WaitForMessages(t, n, 5*time.Minute)
	c2.waitDone(acc.ID, time.Minute)
	checkMailedOnce(t, smtpd, want)
}

// TestTopicFanoutCancel (embedded): canceling a notification whose
// fan-out is under way stops the fan-out where it stands and cancels what
// it wrote.
func TestTopicFanoutCancel(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := testConfig(t)
	cfg.Roles = "api,scheduler"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := app.New(cfg, testLogger(t))
	committed := make(chan struct{})
	a.SetFanoutAfterCommit(func(*herald.FanoutPage) error {
		close(committed)
		return errors.New("crash")
	})
	startApp(t, a)
	const n = 1500
	tenant, c := topicApp(t, a, n)
	configureEmail(t, c, smtpd)
	c.must(200, "PUT", "/v1/topics/news/subscribers", map[string]any{"add": subscriberIDs(n)})
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"topic": "news"}},
		"channels": []string{"email"}, "content": map[string]any{"body": "x"}}).decode(t, &acc)
	select {
	case <-committed:
	case <-time.After(30 * time.Second):
		t.Fatal("the first page was not committed")
	}
	var got notificationWithFanout
	c.must(200, "DELETE", "/v1/notifications/"+acc.ID, nil).decode(t, &got)
	if got.Fanout == nil || got.Fanout.Status != herald.FanoutCompleted || got.Fanout.Recipients != 1000 {
		t.Fatalf("fanout after cancel = %+v, want completed at 1000", got.Fanout)
	}
	if len(got.Deliveries) != 1000 {
		t.Fatalf("%d deliveries, want the first page's 1000", len(got.Deliveries))
	}
	for _, d := range got.Deliveries {
		if d.Status != "canceled" {
			t.Fatalf("delivery %s is %s, want canceled", d.ID, d.Status)
		}
	}
	running, err := a.Store().RunningFanouts(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range running {
		if f.AppID == tenant.ID {
			t.Errorf("fan-out still running after cancel: %+v", f)
		}
	}
}
