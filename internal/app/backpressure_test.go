package app

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/natsembed"
	"github.com/heraldhq/herald/internal/queue"
)

func TestDrainMeter(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	for _, tt := range []struct {
		name      string
		points    []fillPoint
		wantRate  float64
		wantKnown bool
	}{
		{"one sample", []fillPoint{{at(0), 10, 10, 10}}, 0, false},
		{"empty queue: the senders' pace, not the workers'", []fillPoint{{at(0), 0, 0, 100}, {at(1), 0, 0, 200}}, 0, false},
		{"backlog, nothing removed", []fillPoint{{at(0), 10, 10, 10}, {at(1), 30, 30, 30}}, 0, true},
		// 100 waiting, 50 published, 20 left: 130 removed in 2s.
		{"backlog draining", []fillPoint{{at(0), 100, 100, 100}, {at(2), 20, 20, 150}}, 65, true},
		{"spans add up", []fillPoint{{at(0), 100, 100, 100}, {at(1), 50, 50, 100}, {at(2), 40, 40, 110}}, 35, true},
		{"old spans forgotten", []fillPoint{{at(0), 100, 100, 100}, {at(1), 0, 0, 100}, {at(40), 5, 5, 105}}, 0, false},
		{"stream recreated", []fillPoint{{at(0), 100, 100, 100}, {at(1), 5, 5, 5}}, 0, false},
	} {
		m := drainMeter{window: drainWindow}
		for _, p := range tt.points {
			m.observe(p)
		}
		if rate, known := m.rate(); rate != tt.wantRate || known != tt.wantKnown {
			t.Errorf("%s: rate = %v, %v; want %v, %v", tt.name, rate, known, tt.wantRate, tt.wantKnown)
		}
	}
}

// TestLagOfAStall: with work waiting and nothing leaving the queue, the
// lag is how long that has lasted, so a short stall (workers busy with
// their first sends) is not read as an endless lag; work that is only in
// workers' hands or waiting out a retry's backoff is no lag at all.
func TestLagOfAStall(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	m := drainMeter{window: drainWindow}
	if got := m.lag(10, at(0)); got != 0 {
		t.Errorf("lag with no rate measured = %v, want 0", got)
	}
	m.observe(fillPoint{at(0), 5, 5, 5})
	m.observe(fillPoint{at(1), 5, 5, 5})
	if got := m.lag(5, at(1)); got != 1 {
		t.Errorf("lag after a 1s stall = %v, want 1", got)
	}
	for s := 2; s <= 40; s++ {
		m.observe(fillPoint{at(float64(s)), 5, 5, 5})
	}
	if got := m.lag(5, at(40)); got != 40 {
		t.Errorf("lag after a 40s stall = %v, want 40", got)
	}
	m.observe(fillPoint{at(41), 0, 0, 5})
	if got := m.lag(0, at(41)); got != 0 {
		t.Errorf("lag with nothing waiting = %v, want 0", got)
	}
	// Five deliveries held for a retry's backoff, none undelivered, for a
	// minute: a new send is not behind anything.
	m = drainMeter{window: drainWindow}
	for s := 0; s <= 60; s++ {
		m.observe(fillPoint{at(float64(s)), 5, 0, 5})
	}
	if got := m.lag(1, at(60)); got != 0 {
		t.Errorf("lag behind deliveries waiting out a backoff = %v, want 0", got)
	}
	// Draining at 10/s with 300 waiting: 30s.
	m = drainMeter{window: drainWindow}
	m.observe(fillPoint{at(0), 310, 310, 310})
	m.observe(fillPoint{at(1), 300, 300, 310})
	if got := m.lag(300, at(1)); got != 30 {
		t.Errorf("lag of 300 at 10/s = %v, want 30", got)
	}
}

// TestAdmitRetryAfterFromLag: the Retry-After of a refused send is the lag
// beyond --max-queue-lag, at least 1s and at most 60s.
func TestAdmitRetryAfterFromLag(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		waiting   uint64
		removed   uint64 // in the 1s before
		n         int
		wantRetry int // 0: admitted
	}{
		{waiting: 100, removed: 10, n: 1, wantRetry: 0},   // 10.1s behind, 30s allowed
		{waiting: 299, removed: 10, n: 1, wantRetry: 0},   // exactly 30s
		{waiting: 300, removed: 10, n: 1, wantRetry: 1},   // 30.1s: at least 1
		{waiting: 400, removed: 10, n: 50, wantRetry: 15}, // 45s: 15 over
		{waiting: 5000, removed: 10, n: 1, wantRetry: 60}, // 500s: at most 60
		{waiting: 10, removed: 0, n: 1, wantRetry: 0},     // a 1s stall is not a lag
		{waiting: 0, removed: 0, n: 1, wantRetry: 0},      // nothing waited, nothing waits
	} {
		w := newQueueWatch(nil, 0.95, 30*time.Second, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		w.now = func() time.Time { return t0 }
		before := tt.waiting + tt.removed
		w.observeNotify(queue.StreamFill{Stream: "NOTIFY", Msgs: before, Undelivered: before, LastSeq: 1000})
		w.now = func() time.Time { return t0.Add(time.Second) }
		w.observeNotify(queue.StreamFill{Stream: "NOTIFY", Msgs: tt.waiting, Undelivered: tt.waiting, LastSeq: 1000})
		err := w.admit(herald.ChannelEmail, tt.n)
		var he *herald.Error
		switch {
		case tt.wantRetry == 0 && err != nil:
			t.Errorf("%+v: refused: %v", tt, err)
		case tt.wantRetry > 0 && !asError(err, &he):
			t.Errorf("%+v: admitted, want 429 with Retry-After %d", tt, tt.wantRetry)
		case tt.wantRetry > 0 && (he.Code != herald.CodeRateLimited || he.RetryAfterSeconds != tt.wantRetry):
			t.Errorf("%+v: %s with Retry-After %d, want rate_limited with %d: %s", tt, he.Code, he.RetryAfterSeconds, tt.wantRetry, he.Message)
		}
		want := 0.0
		if tt.wantRetry > 0 {
			want = 1
		}
		if got := counterValue(t, w.refused.WithLabelValues("queue_lag")); got != want {
			t.Errorf("%+v: herald_sends_refused_total{reason=queue_lag} = %v, want %v", tt, got, want)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func asError(err error, he **herald.Error) bool {
	e, ok := err.(*herald.Error)
	*he = e
	return ok
}

// TestQueueWatchLagOnJetStream: with deliveries waiting in embedded
// JetStream and no worker, the watch refuses sends with 429 once the stall
// has lasted longer than the bound; once a consumer drains the stream,
// it admits them again.
func TestQueueWatchLagOnJetStream(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ns, err := natsembed.Start(ctx, natsembed.Options{StoreDir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Stop(context.Background()) })
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := queue.Open(ctx, nc, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := newQueueWatch(q, 0.95, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	clock := time.Now()
	w.now = func() time.Time { return clock }
	tick := func() {
		clock = clock.Add(queueSampleEvery)
		w.sample(ctx)
	}

	w.sample(ctx)
	jobs := make([]queue.Job, 50)
	for i := range jobs {
		jobs[i] = queue.Job{AppID: "a", NotificationID: "n", DeliveryID: "d" + strconv.Itoa(i), Channel: herald.ChannelEmail}
	}
	if err := q.Publish(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	if err := w.admit(herald.ChannelEmail, 1); err != nil {
		t.Fatalf("before any rate was measured: %v", err)
	}
	tick() // first sample with the backlog: the span before began empty
	tick() // a backlogged second with nothing removed: 1s, not beyond the bound
	if err := w.admit(herald.ChannelEmail, 1); err != nil {
		t.Fatalf("after a 1s stall with a 1s bound: %v", err)
	}
	tick()
	tick() // stalled 3s: 2s beyond the bound
	err = w.admit(herald.ChannelEmail, 1)
	if he, ok := err.(*herald.Error); !ok || he.Code != herald.CodeRateLimited || he.RetryAfterSeconds != 2 {
		t.Fatalf("50 waiting for 3s, no worker: admit = %v, want rate_limited with Retry-After 2", err)
	}

	var mu sync.Mutex
	acked := 0
	c, err := q.ConsumeJobs(ctx, herald.ChannelEmail, herald.PriorityNormal, 4, func(ctx context.Context, d *queue.Delivery) {
		if err := d.Ack(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
		mu.Lock()
		acked++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		tick()
		if w.admit(herald.ChannelEmail, 1) == nil {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("still refusing after the consumer acked %d of 50", acked)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rate, known := w.meter.rate(); !known || rate <= 0 {
		t.Errorf("after the drain: rate %v (known %v), want > 0", rate, known)
	}
}

// TestDoorRefusesAsAdmitWould: the check before a send's body is read
// refuses with the same code and Retry-After as admit, from the last
// sample alone, and counts the refusal by its reason.
func TestDoorRefusesAsAdmitWould(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name             string
		waiting, removed uint64
		maxMsgs          int64
		wantCode         herald.Code // "": admitted
		wantRetry        int
		wantReason       string
	}{
		{name: "within the lag", waiting: 100, removed: 10},
		{name: "40s behind, 30s allowed", waiting: 400, removed: 10, wantCode: herald.CodeRateLimited, wantRetry: 10, wantReason: "queue_lag"},
		{name: "full", waiting: 95, removed: 10, maxMsgs: 100, wantCode: herald.CodeUnavailable, wantRetry: 5, wantReason: "queue_full"},
	} {
		w := newQueueWatch(nil, 0.95, 30*time.Second, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		w.now = func() time.Time { return t0 }
		w.observeNotify(queue.StreamFill{Stream: "NOTIFY", Msgs: tt.waiting + tt.removed, Undelivered: tt.waiting + tt.removed, LastSeq: 1000, MaxMsgs: tt.maxMsgs})
		w.now = func() time.Time { return t0.Add(time.Second) }
		w.observeNotify(queue.StreamFill{Stream: "NOTIFY", Msgs: tt.waiting, Undelivered: tt.waiting, LastSeq: 1000, MaxMsgs: tt.maxMsgs})
		err := w.door()
		var he *herald.Error
		switch {
		case tt.wantCode == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.name, err)
		case tt.wantCode == "":
		case !asError(err, &he):
			t.Errorf("%s: admitted, want %s", tt.name, tt.wantCode)
		case he.Code != tt.wantCode || he.RetryAfterSeconds != tt.wantRetry:
			t.Errorf("%s: %s with Retry-After %d, want %s with %d", tt.name, he.Code, he.RetryAfterSeconds, tt.wantCode, tt.wantRetry)
		}
		if tt.wantReason != "" {
			if got := counterValue(t, w.refused.WithLabelValues(tt.wantReason)); got != 1 {
				t.Errorf("%s: herald_sends_refused_total{reason=%q} = %v, want 1", tt.name, tt.wantReason, got)
			}
		}
	}
}
