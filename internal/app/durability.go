package app

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/queue"
)

// queueSampleEvery is how often the streams' fill is read. Reading stream
// info is one small request; a second is quick enough for back-pressure.
const queueSampleEvery = time.Second

// Bounds of the Retry-After of a send refused for the queue's lag.
const (
	minLagRetryAfter = 1
	maxLagRetryAfter = 60
)

// queueWatch samples the streams' fill against their limits, for the
// metrics and for the API's back-pressure: above the high-water mark a
// send is refused with 503 rather than accepted into a queue that cannot
// take it, and when the deliveries waiting in NOTIFY would take longer than
// maxLag to drain at the recent delivery rate, with 429 and a Retry-After
// of about the excess, rather than accepted faster than it can be
// delivered.
type queueWatch struct {
	q         *queue.Queue
	highWater float64
	maxLag    time.Duration // 0: no lag limit
	now       func() time.Time
	log       *slog.Logger

	msgs, bytes *prometheus.GaugeVec
	ratio       *prometheus.GaugeVec
	lag, rate   prometheus.Gauge
	refused     *prometheus.CounterVec

	mu       sync.Mutex
	full     bool    // NOTIFY at or above highWater at the last sample
	notif    float64 // NOTIFY's last fill ratio
	waiting  uint64  // NOTIFY's messages at the last sample
	admitted uint64  // deliveries admitted since the last sample, not yet counted in waiting
	behind   bool    // over maxLag at the last sample (for the log)
	meter    drainMeter

	cancel context.CancelFunc
	done   chan struct{}
}

func newQueueWatch(q *queue.Queue, highWater float64, maxLag time.Duration, log *slog.Logger, reg prometheus.Registerer) *queueWatch {
	w := &queueWatch{q: q, highWater: highWater, maxLag: maxLag, now: time.Now, log: log,
		meter: drainMeter{window: drainWindow},
		msgs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_queue_messages",
			Help: "Messages in each JetStream stream (NOTIFY: deliveries waiting or in flight)."}, []string{"stream"}),
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_queue_bytes",
			Help: "Bytes stored in each JetStream stream."}, []string{"stream"}),
		ratio: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_queue_fill_ratio",
			Help: "Fill of each stream against its limits (limit: messages or bytes); only limits that are set. Sends are refused above --queue-high-water."},
			[]string{"stream", "limit"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_queue_lag_seconds",
			Help: "How far behind the deliveries not yet handed to a worker are: how long they take to drain at the recent delivery rate, or how long the queue has stood still with work waiting, whichever is longer (0: none waiting or no rate measured yet). Sends are refused with 429 above --max-queue-lag."}),
		rate: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_queue_drain_rate",
			Help: "Deliveries removed from NOTIFY per second while it had a backlog, over the last 30s (every worker of the deployment)."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_sends_refused_total",
			Help: "Send requests refused to protect delivery, by reason: queue_lag (429, --max-queue-lag), in_flight (429, --max-sends-in-flight) or queue_full (503, --queue-high-water)."},
			[]string{"reason"}),
	}
	reg.MustRegister(w.msgs, w.bytes, w.ratio, w.lag, w.rate, w.refused)
	for _, r := range []string{"queue_lag", "in_flight", "queue_full"} {
		w.refused.WithLabelValues(r) // present at zero, so that increase() sees the first one
	}
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
		if f.Stream == notify {
			w.observeNotify(f)
		}
	}
}

// observeNotify takes a sample of NOTIFY: its fill for the high-water
// mark, and its messages and last sequence for the drain rate and the lag.
func (w *queueWatch) observeNotify(f queue.StreamFill) {
	r := f.Ratio()
	w.mu.Lock()
	was, wasBehind := w.full, w.behind
	w.full, w.notif = r >= w.highWater, r
	now := w.now()
	w.meter.observe(fillPoint{at: now, msgs: f.Msgs, undelivered: f.Undelivered, lastSeq: f.LastSeq})
	w.waiting, w.admitted = f.Undelivered, 0
	rate, _ := w.meter.rate()
	lag := w.meter.lag(f.Undelivered, now)
	w.behind = w.maxLag > 0 && lag > w.maxLag.Seconds()
	w.mu.Unlock()
	w.lag.Set(lag)
	w.rate.Set(rate)
	switch {
	case w.full && !was:
		w.log.Warn("the delivery queue is above its high-water mark: refusing sends until workers catch up",
			"stream", f.Stream, "fill", r, "messages", f.Msgs, "max_messages", f.MaxMsgs, "bytes", f.Bytes, "max_bytes", f.MaxBytes)
	case !w.full && was:
		w.log.Info("the delivery queue is below its high-water mark again: accepting sends", "stream", f.Stream, "fill", r)
	}
	switch {
	case w.behind && !wasBehind:
		w.log.Warn("deliveries lag behind: refusing sends with 429 until workers catch up",
			"stream", f.Stream, "waiting", f.Undelivered, "deliveries_per_second", rate, "lag_seconds", lag, "max_queue_lag", w.maxLag)
	case !w.behind && wasBehind:
		w.log.Info("deliveries caught up: accepting sends again", "stream", f.Stream, "waiting", f.Undelivered, "lag_seconds", lag)
	}
}

// shed counts a send refused at the API's door (--max-sends-in-flight).
func (w *queueWatch) shed() { w.refused.WithLabelValues("in_flight").Inc() }

// door is httpapi.Deps.Admit: before a send's body is read, it refuses the
// send as admit would refuse it now, so that under an overload a refusal
// costs a header check rather than a decode and the recipients' store
// reads. admit still decides, with each channel's count, for what passes.
func (w *queueWatch) door() error {
	w.mu.Lock()
	full, r := w.full, w.notif
	waiting := w.waiting + w.admitted
	rate, _ := w.meter.rate()
	lag := w.meter.lag(waiting, w.now())
	w.mu.Unlock()
	switch {
	case full:
		w.refused.WithLabelValues("queue_full").Inc()
		return &herald.Error{Code: herald.CodeUnavailable, RetryAfterSeconds: 5,
			Message: fmt.Sprintf("the delivery queue is %.0f%% full; sends are not accepted until workers catch up", r*100)}
	case w.maxLag > 0 && lag > w.maxLag.Seconds():
		w.refused.WithLabelValues("queue_lag").Inc()
		return &herald.Error{Code: herald.CodeRateLimited, RetryAfterSeconds: lagRetryAfter(lag, w.maxLag),
			Message: lagMessage(waiting, rate, lag, w.maxLag, "a send")}
	}
	return nil
}

// lagRetryAfter is the lag beyond maxLag in whole seconds, within bounds.
func lagRetryAfter(lag float64, maxLag time.Duration) int {
	return int(math.Min(math.Max(math.Ceil(lag-maxLag.Seconds()), minLagRetryAfter), maxLagRetryAfter))
}

func lagMessage(waiting uint64, rate, lag float64, maxLag time.Duration, what string) string {
	if rate == 0 {
		return fmt.Sprintf("%d deliveries are waiting and workers delivered none lately; %s is not accepted until they catch up",
			waiting, what)
	}
	return fmt.Sprintf("%d deliveries are waiting and workers deliver about %.0f per second: about %.0fs behind, more than the %s allowed; %s is not accepted until they catch up",
		waiting, rate, lag, maxLag, what)
}

// admit is accept.Options.Admit. Every channel shares the NOTIFY stream,
// so a full or lagging stream refuses every channel. n deliveries are
// counted as waiting until the next sample sees them in the stream, so
// that a burst between two samples is not taken whole.
func (w *queueWatch) admit(c herald.Channel, n int) error {
	w.mu.Lock()
	full, r := w.full, w.notif
	waiting := w.waiting + w.admitted + uint64(n)
	rate, _ := w.meter.rate()
	lag := w.meter.lag(waiting, w.now())
	behind := w.maxLag > 0 && lag > w.maxLag.Seconds()
	if !full && !behind {
		w.admitted += uint64(n)
	}
	w.mu.Unlock()
	switch {
	case full:
		w.refused.WithLabelValues("queue_full").Inc()
		return &herald.Error{Code: herald.CodeUnavailable, RetryAfterSeconds: 5,
			Message: fmt.Sprintf("the delivery queue is %.0f%% full; %s is not accepted until workers catch up", r*100, c)}
	case behind:
		w.refused.WithLabelValues("queue_lag").Inc()
		return &herald.Error{Code: herald.CodeRateLimited, RetryAfterSeconds: lagRetryAfter(lag, w.maxLag),
			Message: lagMessage(waiting, rate, lag, w.maxLag, string(c))}
	}
	return nil
}

// drainWindow is how far back the delivery rate looks.
const drainWindow = 30 * time.Second

// fillPoint is one sample of NOTIFY.
type fillPoint struct {
	at          time.Time
	msgs        uint64
	undelivered uint64 // not yet handed to a worker
	lastSeq     uint64
}

// drainSpan is what left NOTIFY between two samples while it held messages.
type drainSpan struct {
	at      time.Time
	took    time.Duration
	removed uint64
}

// drainMeter measures how fast deliveries leave NOTIFY (acknowledged by a
// worker: work-queue retention removes them) from successive samples of
// its message count and last sequence: removed = messages before +
// published since (growth of the last sequence) - messages now. Only spans
// that began with a backlog count: with an empty queue, the workers' pace
// is the senders', not their capacity. It measures every worker of the
// deployment, since the stream is shared.
type drainMeter struct {
	window time.Duration
	prev   fillPoint
	spans  []drainSpan
	// stalledSince is the start of the current run of spans that began
	// with undelivered work and removed nothing; zero when not stalled.
	stalledSince time.Time
}

func (m *drainMeter) observe(p fillPoint) {
	if prev := m.prev; !prev.at.IsZero() && p.at.After(prev.at) && prev.msgs > 0 && p.lastSeq >= prev.lastSeq {
		// A lower last sequence means the stream was recreated: skip the span.
		removed := int64(prev.msgs) + int64(p.lastSeq-prev.lastSeq) - int64(p.msgs)
		m.spans = append(m.spans, drainSpan{at: p.at, took: p.at.Sub(prev.at), removed: uint64(max(removed, 0))})
	}
	switch prev := m.prev; {
	case prev.at.IsZero() || !p.at.After(prev.at):
	case prev.undelivered > 0 && p.lastSeq >= prev.lastSeq && prev.msgs+(p.lastSeq-prev.lastSeq) <= p.msgs:
		if m.stalledSince.IsZero() {
			m.stalledSince = prev.at
		}
	default:
		m.stalledSince = time.Time{}
	}
	m.prev = p
	i := 0
	for i < len(m.spans) && p.at.Sub(m.spans[i].at) > m.window {
		i++
	}
	m.spans = m.spans[i:]
}

// rate returns deliveries per second over the recent backlogged spans;
// known is false when there are none.
func (m *drainMeter) rate() (perSecond float64, known bool) {
	var removed uint64
	var took time.Duration
	for _, s := range m.spans {
		removed += s.removed
		took += s.took
	}
	if took <= 0 {
		return 0, false
	}
	return float64(removed) / took.Seconds(), true
}

// lag is how many seconds the waiting deliveries are behind: how long they
// take at the recent rate, or, when nothing left the queue lately, how long
// it has stood still with work waiting. The second is a lower bound that
// grows with the stall, so that a second of workers busy with their first
// sends is not read as an endless lag, while a real stall crosses the
// bound once it has lasted that long. 0 with nothing waiting or no rate
// measured yet: no evidence of a lag.
func (m *drainMeter) lag(waiting uint64, now time.Time) float64 {
	rate, known := m.rate()
	if waiting == 0 || !known {
		return 0
	}
	var stalled float64
	if !m.stalledSince.IsZero() {
		stalled = max(now.Sub(m.stalledSince).Seconds(), 0)
	}
	if rate <= 0 {
		return stalled
	}
	return max(float64(waiting)/rate, stalled)
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
