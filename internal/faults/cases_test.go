package faults

import (
	"context"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"
)

// embedded starts the providers and one Herald process on the embedded
// default (SQLite and JetStream in the data dir), with an app whose
// channels point at the fakes and users to send to.
func embedded(t *testing.T, users int, extraEnv ...string) (*providers, *heraldProc, *client) {
	t.Helper()
	prov := startProviders(t)
	env := baseEnv(append([]string{"HERALD_DATA_DIR=" + t.TempDir()}, extraEnv...)...)
	h := startHerald(t, "herald", env)
	c := newClient(createApp(t, env), h.baseURL)
	prov.configure(t, c)
	createUsers(t, c, users)
	return prov, h, c
}

// killer kills the processes it picks every 3–6 s (SIGKILL) and starts them
// again at once, until stopped; the process is up when stop returns.
type killer struct {
	stopCh chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	kills  int
}

func startKiller(t *testing.T, pick func() *heraldProc) *killer {
	k := &killer{stopCh: make(chan struct{})}
	k.wg.Go(func() {
		for {
			select {
			case <-k.stopCh:
				return
			case <-time.After(3*time.Second + mrand.N(3*time.Second)):
			}
			p := pick()
			p.kill()
			k.mu.Lock()
			k.kills++
			k.mu.Unlock()
			if err := p.start(); err != nil {
				t.Errorf("restart after kill -9: %v", err)
				return
			}
		}
	})
	return k
}

func (k *killer) stop() int {
	close(k.stopCh)
	k.wg.Wait()
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.kills
}

// TestKillNineEmbedded (case a): the one embedded process running every
// role is killed with SIGKILL every 3–6 s while notifications arrive.
// Nothing accepted may be lost; a delivery a provider accepted twice (the
// provider answered, the process died before the outcome was committed)
// must say possible_duplicate.
func TestKillNineEmbedded(t *testing.T) {
	count, rate := 3000, 250.0
	if long() {
		count, rate = 20000, 250
	}
	prov, h, c := embedded(t, 50)
	f := figures{Case: "a_kill9_embedded", Form: form(), Notifications: count}
	led := &ledger{}
	k := startKiller(t, func() *heraldProc { return h })
	begin := time.Now()
	load{Count: count, Concurrency: 16, Rate: rate, Users: 50, RunID: "a" + runID()}.run(context.Background(), c, led)
	f.LoadSeconds = time.Since(begin).Seconds()
	f.Disruptions = k.stop()
	settle(t, c, led, prov.rec, 3*time.Minute, &f)
	f.Faults = prov.faultCounts()
	check(t, led, &f)
	if f.Disruptions == 0 {
		t.Errorf("the run ended before the first kill")
	}
	if long() && f.DuplicatesPer100k > 10 {
		t.Errorf("duplicates: %.1f per 100,000, target at most 10", f.DuplicatesPer100k)
	}
}

// TestProviderErrors (case b): every provider answers 500, 503 or 429 with
// Retry-After: 1 to 30% of the calls and leaves 5% unanswered past Herald's
// send timeout, without ever accepting those.
func TestProviderErrors(t *testing.T) {
	count, rate := 2000, 250.0
	if long() {
		count, rate = 20000, 300
	}
	prov, _, c := embedded(t, 50)
	prov.setPlan(faultPlan{ErrorShare: 0.30, HangShare: 0.05})
	f := figures{Case: "b_provider_errors", Form: form(), Notifications: count}
	led := &ledger{}
	begin := time.Now()
	load{Count: count, Concurrency: 16, Rate: rate, Users: 50, RunID: "b" + runID()}.run(context.Background(), c, led)
	f.LoadSeconds = time.Since(begin).Seconds()
	settle(t, c, led, prov.rec, 3*time.Minute, &f)
	f.Faults = prov.faultCounts()
	f.Latency = latency(led, prov.rec, "push", "email", "sms")
	check(t, led, &f)
	if f.Faults["push_errors"] == 0 || f.Faults["push_hangs"] == 0 {
		t.Errorf("no faults were injected: %v", f.Faults)
	}
}

// TestOneChannelDown (case c): the SMS provider is down (503 to every call)
// for a long stretch while push and email go on. Push and email must keep
// flowing at about their usual latency; SMS deliveries are retried and all
// delivered once the provider is back.
func TestOneChannelDown(t *testing.T) {
	count, rate, outage := 1600, 200.0, 10*time.Second
	if long() {
		count, rate, outage = 8000, 250, 60*time.Second
	}
	// Enough attempts for the backoff (200ms base, doubling, capped at 5s) to
	// outlast the outage, however long the loaded machine stretches it.
	prov, _, c := embedded(t, 50, "HERALD_MAX_ATTEMPTS=100")
	f := figures{Case: "c_one_channel_down", Form: form(), Notifications: 2 * count, Latency: map[string]pct{}}
	all := &ledger{}
	ctx := context.Background()

	// Baseline: every provider up.
	base := &ledger{}
	begin := time.Now()
	load{Count: count, Concurrency: 16, Rate: rate, Users: 50, RunID: "c1" + runID()}.run(ctx, c, base)
	waitDelivered(t, base, prov.rec, 60*time.Second, "push", "email", "sms")

	// The SMS provider goes down for the outage; the same load again.
	prov.sms.SetDown(true)
	downAt := time.Now()
	during := &ledger{}
	load{Count: count, Concurrency: 16, Rate: rate, Users: 50, RunID: "c2" + runID()}.run(ctx, c, during)
	// Push and email must all get through while SMS is still down.
	if !waitDelivered(t, during, prov.rec, 60*time.Second, "push", "email") {
		t.Errorf("push and email did not drain while the SMS provider was down")
	}
	if d := outage - time.Since(downAt); d > 0 {
		time.Sleep(d)
	}
	smsCalls := prov.sms.downCalls.Load()
	prov.sms.SetDown(false)
	f.LoadSeconds = time.Since(begin).Seconds()
	t.Logf("SMS provider was down for %s and answered 503 to %d calls", time.Since(downAt).Round(time.Second), smsCalls)
	if smsCalls == 0 {
		t.Errorf("Herald never tried the SMS provider while it was down")
	}

	all.entries = append(append(all.entries, base.entries...), during.entries...)
	all.gaveUp, all.rejected = base.gaveUp+during.gaveUp, append(base.rejected, during.rejected...)
	all.retries.Store(base.retries.Load() + during.retries.Load())
	// After an outage of T the backoff spreads the channel's retries over roughly 2–4 T.
	settle(t, c, all, prov.rec, max(4*time.Minute, 5*outage), &f)
	f.Faults = prov.faultCounts()
	for ch, p := range latency(base, prov.rec, "push", "email", "sms") {
		f.Latency[ch+"_baseline"] = p
	}
	for ch, p := range latency(during, prov.rec, "push", "email", "sms") {
		f.Latency[ch+"_outage"] = p
	}
	check(t, all, &f)
	for _, ch := range []string{"push", "email"} {
		b, o := f.Latency[ch+"_baseline"], f.Latency[ch+"_outage"]
		if o.P99 > max(5*b.P99, 1000) {
			t.Errorf("%s p99 during the SMS outage %.0f ms, baseline %.0f ms: the outage held up another channel", ch, o.P99, b.P99)
		}
	}
}

// waitDelivered waits until a provider accepted every entry on channels,
// and reports whether that happened within timeout.
func waitDelivered(t *testing.T, led *ledger, rec *recorder, timeout time.Duration, channels ...string) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing := 0
		for _, e := range led.entries {
			for _, ch := range channels {
				if e.Channel == ch {
					if n, _ := rec.get(e.key()); n == 0 {
						missing++
					}
				}
			}
		}
		if missing == 0 {
			return true
		}
		if time.Now().After(deadline) {
			t.Logf("%d deliveries on %v still not at their provider after %s", missing, channels, timeout)
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runID keeps refs and Idempotency-Keys of separate runs apart.
func runID() string { return time.Now().Format("150405.000") }
