package app_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/app"
)

// TestTopicFanoutLong (embedded, HERALD_FANOUT_LONG=1): 100,000
// subscribers, one send, the fan-out runner crashed after its 40th page
// and a new process on the same data dir finishing it; every subscriber
// has exactly one delivery in the log. The timings it logs are the
// figures of docs/BENCHMARKS.md, "Topic fan-out". No worker runs: this
// measures the fan-out, not the sending.
func TestTopicFanoutLong(t *testing.T) {
	if os.Getenv("HERALD_FANOUT_LONG") != "1" {
		t.Skip("set HERALD_FANOUT_LONG=1 to fan out to 100,000 subscribers across a crash (a few minutes)")
	}
	const n, crashAfter = 100_000, 40
	cfg := testConfig(t)
	cfg.Roles = "api,scheduler"
	cfg.ReconcileAfter = time.Hour // nothing is sent here: do not republish the waiting deliveries
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	first := app.New(cfg, testLogger(t))
	pages := 0
	crashed := make(chan struct{})
	first.SetFanoutAfterCommit(func(*herald.FanoutPage) error {
		if pages++; pages == crashAfter {
			close(crashed)
			return errors.New("crash")
		}
		return nil
	})
	startApp(t, first)

	began := time.Now()
	tenant, c := topicApp(t, first, n)
	t.Logf("created %d users through the store (PutUsers, 1,000 a transaction) in %s", n, time.Since(began).Round(time.Millisecond))
	began = time.Now()
	missing, err := first.Store().UpdateSubscribers(context.Background(), tenant.ID, "everyone", subscriberIDs(n), nil, time.Now())
	if err != nil || len(missing) > 0 {
		t.Fatalf("subscribe: %v, missing %d", err, len(missing))
	}
	t.Logf("subscribed %d users in one UpdateSubscribers in %s", n, time.Since(began).Round(time.Millisecond))

	var acc struct{ ID string }
	sent := time.Now()
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"topic": "everyone"}},
		"channels": []string{"email"}, "content": map[string]any{"subject": "All", "body": "to everyone"}}).decode(t, &acc)
	select {
	case <-crashed:
	case <-time.After(10 * time.Minute):
		t.Fatal("the fan-out did not reach the crash")
	}
	beforeCrash := time.Since(sent)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	restart := time.Now()
	second := start(t, cfg)
	// Polled in the store: the notification's GET would list 100,000
	// deliveries with their timelines every time.
	var f herald.Fanout
	for deadline := time.Now().Add(20 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if f, err = second.Store().GetFanout(context.Background(), tenant.ID, acc.ID); err != nil {
			t.Fatal(err)
		}
		if f.Status == herald.FanoutCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fan-out not completed: %+v", f)
		}
	}
	total := time.Since(sent)
	after := time.Since(restart)
	if f.Recipients != n {
		t.Errorf("fan-out recipients = %d, want %d", f.Recipients, n)
	}
	checkExactlyOnce(t, deliveriesPerUser(t, second.Store(), tenant.ID, acc.ID), subscriberIDs(n))
	t.Logf("fan-out of %d subscribers: %d pages (%d subscribers) in %s before the crash; restart and the remaining %d in %s; %s from the 202 to completed, %d CPUs",
		n, crashAfter, crashAfter*1000, beforeCrash.Round(time.Millisecond), n-crashAfter*1000, after.Round(time.Millisecond),
		total.Round(time.Millisecond), runtime.NumCPU())
}
