// Package logwriter is the group-commit writer of the notification log.
// Concurrent callers hand it batches; it merges whatever is waiting into
// one store transaction, so one fsync covers many notifications, and
// tells each caller when its own writes are durable. After each commit it
// hands the newly accepted deliveries to the work queue and every state
// change to the event stream, in bulk and off the callers' path.
package logwriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldhq/herald"
)

// Applier writes one batch in one transaction (herald.LogStore.Apply).
type Applier interface {
	Apply(ctx context.Context, b *herald.Batch) error
}

// Publisher receives what a commit made due, after the commit. Failures
// are logged, never retried here: the log holds everything, and the
// reconciler republishes deliveries that make no progress.
type Publisher interface {
	// PublishDeliveries queues newly accepted deliveries for the workers.
	PublishDeliveries(ctx context.Context, ds []herald.Delivery) error
	// PublishEvents puts state changes on the EVENTS stream.
	PublishEvents(ctx context.Context, events []herald.Event) error
}

// Options tune the writer.
type Options struct {
	// MaxBatch caps the number of requests merged into one transaction (default 512).
	MaxBatch int
	// Linger is how long the writer waits for more requests once it has
	// fewer than MaxBatch. Default 0: take what is waiting, which batches
	// well under load because requests pile up during a commit, while the
	// senders of the next batch prepare theirs (lingering until all of them
	// wait measured slower).
	Linger time.Duration
	// Interval, while the writer is busy (its last commit merged more than
	// one request), is the shortest time between the starts of two
	// commits: the writer waits up to that long for more requests. A
	// commit has a fixed cost (the fsync, the WAL frames of every page it
	// touched, a statement per table) several times that of a request, so
	// under load, where requests arrive by the hundred per millisecond but
	// a commit takes less than one, waiting a moment shares that cost among
	// many more of them. A request that finds the writer idle, or a commit
	// that took longer than Interval, does not wait. Default 0: no wait.
	Interval time.Duration
	// Publisher, when set, gets each committed batch's new deliveries and events.
	Publisher Publisher
	Logger    *slog.Logger
	// Dropped, when set, is called when a commit's publishing was skipped
	// because the publisher is behind (metrics).
	Dropped func()
	// Observe, when set, is called after each commit with the number of
	// requests merged and the commit's duration (metrics).
	Observe func(requests int, took time.Duration, err error)
}

type request struct {
	batch *herald.Batch
	done  chan error
}

// Writer is the group-commit writer. Start it before Write; Stop flushes.
type Writer struct {
	store Applier
	opts  Options
	reqs  chan request

	mu      sync.RWMutex // held shared while queueing a request, exclusively to stop
	stopped bool
	wg      sync.WaitGroup // the commit loop and the publisher
	commits chan committed
}

// committed is what one commit hands to the publisher.
type committed struct {
	deliveries []herald.Delivery
	events     []herald.Event
}

// New returns a writer over store.
func New(store Applier, o Options) *Writer {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Writer{store: store, opts: o, reqs: make(chan request, o.MaxBatch*2), commits: make(chan committed, 4096)}
}

// Start runs the commit loop.
func (w *Writer) Start(context.Context) error {
	w.wg.Add(2)
	go w.loop()
	go w.publishLoop()
	return nil
}

// ErrStopped is returned by Write after Stop.
var ErrStopped = &herald.Error{Code: herald.CodeUnavailable, Message: "the notification log writer is stopped"}

// Write commits b together with whatever other requests are waiting and
// returns when it is durable (or failed). Transitions' Applied flags are
// set. Callable from any goroutine.
func (w *Writer) Write(ctx context.Context, b *herald.Batch) error {
	done, err := w.submit(ctx, b)
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The write may still commit; the caller must treat its outcome as unknown.
		return fmt.Errorf("logwriter: waiting for commit: %w", ctx.Err())
	}
}

func (w *Writer) submit(ctx context.Context, b *herald.Batch) (chan error, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.stopped {
		return nil, ErrStopped
	}
	r := request{batch: b, done: make(chan error, 1)}
	select {
	case w.reqs <- r:
		return r.done, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("logwriter: queueing write: %w", ctx.Err())
	}
}

// Stop refuses new writes, commits what is queued and waits for the loop
// to end, or for ctx. Safe to call twice.
func (w *Writer) Stop(ctx context.Context) error {
	w.mu.Lock()
	if !w.stopped {
		w.stopped = true
		close(w.reqs)
	}
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("logwriter: stop: %w", ctx.Err())
	}
}

func (w *Writer) loop() {
	defer w.wg.Done()
	defer close(w.commits)
	pending := make([]request, 0, w.opts.MaxBatch)
	var last time.Time // when the last commit started
	busy := false      // whether it merged more than one request
	for {
		first, ok := <-w.reqs
		if !ok {
			return
		}
		pending = append(pending[:0], first)
		var until time.Time
		if w.opts.Linger > 0 {
			until = time.Now().Add(w.opts.Linger)
		}
		if busy && w.opts.Interval > 0 {
			if next := last.Add(w.opts.Interval); next.After(until) {
				until = next
			}
		}
		pending, open := w.gather(pending, until)
		last, busy = time.Now(), len(pending) > 1
		w.commit(pending)
		if !open {
			return // gather saw the channel closed and empty
		}
	}
}

// gather takes every waiting request, up to MaxBatch, and waits for more
// until until, if that is still ahead.
func (w *Writer) gather(pending []request, until time.Time) ([]request, bool) {
	var timer <-chan time.Time
	if wait := time.Until(until); !until.IsZero() && wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	for len(pending) < w.opts.MaxBatch {
		select {
		case r, ok := <-w.reqs:
			if !ok {
				return pending, false
			}
			pending = append(pending, r)
			continue
		default:
		}
		if timer == nil {
			return pending, true
		}
		select {
		case r, ok := <-w.reqs:
			if !ok {
				return pending, false
			}
			pending = append(pending, r)
		case <-timer:
			return pending, true
		}
	}
	return pending, true
}

func (w *Writer) commit(reqs []request) {
	if len(reqs) == 1 {
		err := w.apply(reqs[0].batch, 1)
		reqs[0].done <- err
		return
	}
	var nn, nt int
	for _, r := range reqs {
		nn, nt = nn+len(r.batch.Notifications), nt+len(r.batch.Transitions)
	}
	merged := &herald.Batch{Notifications: make([]herald.NewNotification, 0, nn), Transitions: make([]herald.Transition, 0, nt)}
	for _, r := range reqs {
		merged.Notifications = append(merged.Notifications, r.batch.Notifications...)
		merged.Transitions = append(merged.Transitions, r.batch.Transitions...)
	}
	if err := w.apply(merged, len(reqs)); err != nil {
		if herald.ErrorCode(err) == herald.CodeUnavailable {
			// The database is out of reach: every request shares the failure.
			for _, r := range reqs {
				r.done <- err
			}
			return
		}
		// One request's conflict or bad data must not fail the others: retry one by one.
		for _, r := range reqs {
			r.done <- w.apply(r.batch, 1)
		}
		return
	}
	i := 0
	for _, r := range reqs {
		for j := range r.batch.Transitions {
			r.batch.Transitions[j].Applied = merged.Transitions[i].Applied
			i++
		}
		r.done <- nil
	}
}

// apply runs one transaction. It uses a background context: a caller that
// gave up must not abort other callers' commit.
func (w *Writer) apply(b *herald.Batch, n int) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := w.store.Apply(ctx, b)
	if w.opts.Observe != nil {
		w.opts.Observe(n, time.Since(start), err)
	}
	if err != nil {
		if herald.ErrorCode(err) != herald.CodeConflict {
			w.opts.Logger.Error("notification log commit failed", "requests", n, "err", err)
		}
		return err
	}
	if w.opts.Publisher != nil {
		select {
		case w.commits <- committed{deliveries: dueDeliveries(b), events: committedEvents(b)}:
		default:
			// Never let a slow queue stall the log: the reconciler republishes
			// what makes no progress, and the events stay in the log.
			w.opts.Logger.Warn("queue publisher is behind; leaving a commit's deliveries to the reconciler")
			if w.opts.Dropped != nil {
				w.opts.Dropped()
			}
		}
	}
	return nil
}

func dueDeliveries(b *herald.Batch) []herald.Delivery {
	var ds []herald.Delivery
	for _, n := range b.Notifications {
		for _, d := range n.Deliveries {
			if d.Status == herald.StatusAccepted {
				ds = append(ds, d)
			}
		}
	}
	for _, t := range b.Transitions {
		if f := t.Fallback; t.Applied && f != nil && f.Added {
			for _, d := range f.Deliveries {
				if d.Status == herald.StatusAccepted {
					ds = append(ds, d)
				}
			}
		}
	}
	return ds
}

func committedEvents(b *herald.Batch) []herald.Event {
	var evs []herald.Event
	for _, n := range b.Notifications {
		evs = append(evs, n.Events...)
	}
	for _, t := range b.Transitions {
		if t.Applied {
			// In the order the log has them: the steps the delivery passed through, then where it is.
			for _, ev := range t.Steps {
				evs = append(evs, transitionEvent(&t, ev))
			}
			evs = append(evs, transitionEvent(&t, t.Event))
			if f := t.Fallback; f != nil && f.Added {
				evs = append(evs, f.Events...)
			}
		}
	}
	return evs
}

// transitionEvent is ev, an event of t, with t's app and delivery when it lacks them.
func transitionEvent(t *herald.Transition, ev herald.Event) herald.Event {
	if ev.AppID == "" {
		ev.AppID = t.AppID
	}
	if ev.DeliveryID == "" {
		ev.DeliveryID = t.DeliveryID
	}
	return ev
}

func (w *Writer) publishLoop() {
	defer w.wg.Done()
	for c := range w.commits {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if len(c.deliveries) > 0 {
			if err := w.opts.Publisher.PublishDeliveries(ctx, c.deliveries); err != nil && !errors.Is(err, context.Canceled) {
				w.opts.Logger.Warn("queueing deliveries failed; the reconciler will republish them", "deliveries", len(c.deliveries), "err", err)
			}
		}
		if len(c.events) > 0 {
			if err := w.opts.Publisher.PublishEvents(ctx, c.events); err != nil && !errors.Is(err, context.Canceled) {
				w.opts.Logger.Warn("publishing events failed; they stay in the log", "events", len(c.events), "err", err)
			}
		}
		cancel()
	}
}
