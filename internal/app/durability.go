package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/queue"
)

// queueSampleEvery is how often the streams' fill is read. Reading stream
// info is one small request; a second is quick enough for back-pressure.
const queueSampleEvery = time.Second

// queueWatch samples the streams' fill against their limits, for the
// metrics and for the API's back-pressure: above the high-water mark a
// send is refused with 503 rather than accepted into a queue that cannot
// take it.
type queueWatch struct {
	q         *queue.Queue
	highWater float64
	log       *slog.Logger

	msgs, bytes *prometheus.GaugeVec
	ratio       *prometheus.GaugeVec

	mu    sync.Mutex
	full  bool    // NOTIFY at or above highWater at the last sample
	notif float64 // NOTIFY's last fill ratio

	cancel context.CancelFunc
	done   chan struct{}
}

func newQueueWatch(q *queue.Queue, highWater float64, log *slog.Logger, reg prometheus.Registerer) *queueWatch {
	w := &queueWatch{q: q, highWater: highWater, log: log,
		msgs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_queue_messages",
			Help: "Messages in each JetStream stream (NOTIFY: deliveries waiting or in flight)."}, []string{"stream"}),
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_queue_bytes",
			Help: "Bytes stored in each JetStream stream."}, []string{"stream"}),
		ratio: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_queue_fill_ratio",
			Help: "Fill of each stream against its limits (limit: messages or bytes); only limits that are set. Sends are refused above --queue-high-water."},
			[]string{"stream", "limit"}),
	}
	reg.MustRegister(w.msgs, w.bytes, w.ratio)
	return w
}

// Start samples once, so the first request already sees the queue's
// state, then every queueSampleEvery until Stop.
func (w *queueWatch) Start(ctx context.Context) error {
	w.sample(ctx)
	ctx, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(queueSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.sample(ctx)
			}
		}
	}()
	return nil
}

// Stop ends the sampling. Safe to call twice.
func (w *queueWatch) Stop(ctx context.Context) error {
	if w.cancel == nil {
		return nil
	}
	w.cancel()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("queue watch: stop: %w", ctx.Err())
	}
}

func (w *queueWatch) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	fill, err := w.q.Fill(ctx)
	if err != nil {
		// Keep the last state: a queue that does not answer refuses
		// publishes by itself, and the log keeps what was accepted.
		w.log.Debug("sampling the queue's fill failed", "err", err)
		return
	}
	notify, _ := w.q.StreamNames()
	for _, f := range fill {
		w.msgs.WithLabelValues(f.Stream).Set(float64(f.Msgs))
		w.bytes.WithLabelValues(f.Stream).Set(float64(f.Bytes))
		if f.MaxMsgs > 0 {
			w.ratio.WithLabelValues(f.Stream, "messages").Set(float64(f.Msgs) / float64(f.MaxMsgs))
		}
		if f.MaxBytes > 0 {
			w.ratio.WithLabelValues(f.Stream, "bytes").Set(float64(f.Bytes) / float64(f.MaxBytes))
		}
		if f.Stream != notify {
			continue
		}
		r := f.Ratio()
		w.mu.Lock()
		was := w.full
		w.full, w.notif = r >= w.highWater, r
		w.mu.Unlock()
		switch {
		case w.full && !was:
			w.log.Warn("the delivery queue is above its high-water mark: refusing sends until workers catch up",
				"stream", f.Stream, "fill", r, "messages", f.Msgs, "max_messages", f.MaxMsgs, "bytes", f.Bytes, "max_bytes", f.MaxBytes)
		case !w.full && was:
			w.log.Info("the delivery queue is below its high-water mark again: accepting sends", "stream", f.Stream, "fill", r)
		}
	}
}

// admit is accept.Options.Admit. Every channel shares the NOTIFY stream,
// so a full stream refuses every channel.
func (w *queueWatch) admit(c herald.Channel) error {
	w.mu.Lock()
	full, r := w.full, w.notif
	w.mu.Unlock()
	if !full {
		return nil
	}
	return &herald.Error{Code: herald.CodeUnavailable, RetryAfterSeconds: 5,
		Message: fmt.Sprintf("the delivery queue is %.0f%% full; %s is not accepted until workers catch up", r*100, c)}
}

// storeGate pauses a process's workers while the store is unreachable:
// without the log no attempt can be claimed, so pulling more messages would
// only cycle the whole backlog through failed reads. A worker that finds
// the store down closes the gate for a growing backoff; every worker waits
// at the gate before it handles its next message, which keeps their pull
// slots busy, so nothing more is pulled.
type storeGate struct {
	log     *slog.Logger
	stop    chan struct{}
	stopped sync.Once

	mu      sync.Mutex
	until   time.Time
	backoff time.Duration
	trips   prometheus.Counter
}

const (
	minStoreBackoff = 500 * time.Millisecond
	maxStoreBackoff = 30 * time.Second
)

func newStoreGate(log *slog.Logger, reg prometheus.Registerer) *storeGate {
	g := &storeGate{log: log, stop: make(chan struct{}),
		trips: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_worker_store_pauses_total",
			Help: "Times the workers paused pulling because the store did not answer (no claim, no send)."})}
	reg.MustRegister(g.trips)
	return g
}

// wait returns when the gate is open, or at once after close.
func (g *storeGate) wait(ctx context.Context) {
	for {
		g.mu.Lock()
		d := time.Until(g.until)
		g.mu.Unlock()
		if d <= 0 {
			return
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		case <-g.stop:
			t.Stop()
			return
		}
	}
}

// trip closes the gate for the next backoff and returns it: the delay to
// hand the failed message back with.
func (g *storeGate) trip() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Now().Before(g.until) {
		return time.Until(g.until) // another worker already paused everyone
	}
	g.backoff = min(max(2*g.backoff, minStoreBackoff), maxStoreBackoff)
	g.until = time.Now().Add(g.backoff)
	g.trips.Inc()
	g.log.Warn("the store does not answer: workers pause", "for", g.backoff)
	return g.backoff
}

// ok resets the backoff after the store answered.
func (g *storeGate) ok() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.backoff = 0
}

// close opens the gate for good, so that a stop need not wait out a pause.
func (g *storeGate) close() { g.stopped.Do(func() { close(g.stop) }) }

// sweptCounter counts the idempotency records the reconciler swept.
func sweptCounter(reg prometheus.Registerer) func(int) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_idempotency_keys_swept_total",
		Help: "Idempotency records deleted after --idempotency-retention."})
	reg.MustRegister(c)
	return func(n int) { c.Add(float64(n)) }
}
