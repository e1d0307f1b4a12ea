// Package reconcile republishes deliveries that the notification log says
// are due but that made no progress — a publish lost after the commit, a
// queue that lost data, a worker that died mid-way — and retries whose
// time has come (workers acknowledge a failed attempt once its retry is in
// the log, rather than holding the message in the queue for hours). The
// log, not the queue, decides what must still happen. Under the same lease
// it sweeps idempotency records past their retention.
package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldhq/herald"
)

// Store is what the reconciler needs from the log.
type Store interface {
	StaleDeliveries(ctx context.Context, staleBefore, retryBefore time.Time, limit int) ([]herald.Delivery, error)
	PostponeDeliveries(ctx context.Context, ids []string, ifDueBefore, until time.Time) error
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
	DeleteIdempotencyBefore(ctx context.Context, before time.Time, limit int) (int, error)
}

// Publisher republishes deliveries under a fresh message id (the first
// one may still sit in the queue's duplicate window).
type Publisher interface {
	RepublishDeliveries(ctx context.Context, ds []herald.Delivery, round string) error
}

// Backlog tells the reconciler how far behind the workers are, so that it
// does not take a delivery that is only waiting its turn in the queue for
// a lost one. Republishing those would put a second copy of the whole
// backlog behind the first, every After, while the workers fall further
// behind with each pass.
type Backlog interface {
	// OldestWaiting returns, per queue consumer keyed "<channel>.<priority>",
	// when the oldest message not yet handed to a worker was stored; a
	// consumer with nothing waiting is absent. On an error the consumers
	// that could be read are still in the map.
	OldestWaiting(ctx context.Context) (map[string]time.Time, error)
}

// backlogSlack is how much later than its marker in the log a delivery's
// message may have been stored (a publish buffered through a reconnect,
// the clocks of Herald and the NATS server apart) and still count as
// possibly waiting in the backlog.
const backlogSlack = 5 * time.Second

// backlogTimeout bounds the look at the queue's backlog in a pass.
const backlogTimeout = 3 * time.Second

// Options tune the reconciler.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Holder names this process in the lease (exactly one reconciler acts at a time).
	Holder string
	// Interval between passes (default 10s).
	Interval time.Duration
	// After is how long a delivery may sit past its due time before it is republished (default 60s).
	After time.Duration
	// Batch is the most deliveries republished per pass (default 500).
	Batch int
	// Observe, when set, is told how many deliveries each pass republished.
	Observe func(n int)
	// IdempotencyRetention is how long an Idempotency-Key is kept; older
	// records are swept. 0 keeps them forever.
	IdempotencyRetention time.Duration
	// SweepEvery is the time between idempotency sweeps (default 1m).
	SweepEvery time.Duration
	// Swept, when set, is told how many idempotency records a sweep deleted.
	Swept func(n int)
	// Backlog, when set, holds back stale deliveries that may still be
	// waiting in the queue behind older messages (see Backlog); nil
	// republishes every stale delivery.
	Backlog Backlog
	// Windows, when set, moves fallback notifications on whose window
	// ended without a receipt (fallback.Windows); the lease holder runs it
	// at every pass.
	Windows Windows
	// Log, when set, moves a scheduled delivery whose time came to queued
	// (with its queued event) before its message goes out; see
	// queueScheduled. Without it the delivery stays scheduled until a
	// worker claims it.
	Log LogWriter
}

// LogWriter commits transitions to the log and publishes their events
// (the group-commit writer).
type LogWriter interface {
	Write(ctx context.Context, b *herald.Batch) error
}

// Windows is a pass over fallback windows that ended (fallback.Windows).
type Windows interface {
	Pass(ctx context.Context, now time.Time) (int, error)
}

// Reconciler is a long-lived part: Start, then Stop.
type Reconciler struct {
	store Store
	pub   Publisher
	o     Options

	mu        sync.Mutex
	lastSweep time.Time
	backlog   map[string]reading // the last reading of each consumer's backlog, for split

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

// New returns a Reconciler.
func New(store Store, pub Publisher, o Options) *Reconciler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.After <= 0 {
		o.After = 60 * time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Minute
	}
	return &Reconciler{store: store, pub: pub, o: o}
}

const leaseName = "reconciler"

// Start runs passes every Interval until Stop.
func (r *Reconciler) Start(ctx context.Context) error {
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.o.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := r.Pass(ctx); err != nil && ctx.Err() == nil {
				r.o.Logger.Warn("reconcile pass failed", "err", err)
			}
		}
	}()
	return nil
}

// Stop ends the loop and gives the lease up. Safe to call twice.
func (r *Reconciler) Stop(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
			select {
			case <-r.done:
			case <-ctx.Done():
				err = fmt.Errorf("reconcile: stop: %w", ctx.Err())
				return
			}
		}
		// Pass may have taken the lease even without the loop.
		err = r.store.ReleaseLease(ctx, leaseName, r.o.Holder)
	})
	return err
}

// Pass republishes one batch of stale deliveries if this process holds
// the lease, and reports how many.
func (r *Reconciler) Pass(ctx context.Context) (int, error) {
	now := r.o.Now().UTC().Truncate(time.Microsecond)
	ok, err := r.store.AcquireLease(ctx, leaseName, r.o.Holder, now, 3*r.o.Interval)
	if err != nil {
		return 0, fmt.Errorf("reconcile: lease: %w", err)
	}
	if !ok {
		return 0, nil
	}
	if err := r.sweep(ctx, now); err != nil {
		// The sweep is housekeeping: it must never hold up republishing.
		r.o.Logger.Warn("idempotency sweep failed", "err", err)
	}
	if r.o.Windows != nil {
		if _, err := r.o.Windows.Pass(ctx, now); err != nil {
			// Like the sweep: a failure here must not hold up republishing.
			r.o.Logger.Warn("fallback window pass failed", "err", err)
		}
	}
	stale, err := r.store.StaleDeliveries(ctx, now.Add(-r.o.After), now, r.o.Batch)
	if err != nil {
		return 0, fmt.Errorf("reconcile: find stale deliveries: %w", err)
	}
	if len(stale) == 0 {
		return 0, nil
	}
	republish, waiting := r.split(ctx, now, stale)
	if republish, err = r.queueScheduled(ctx, now, republish); err != nil {
		return 0, err
	}
	if len(republish) > 0 {
		round := fmt.Sprintf("r%d", now.UnixMicro())
		if err := r.pub.RepublishDeliveries(ctx, republish, round); err != nil {
			return 0, fmt.Errorf("reconcile: republish %d deliveries: %w", len(republish), err)
		}
	}
	// Give the republished copies time to be worked before looking again.
	// Lost work becomes stale again After from now; a due retry, whose
	// marker is its due time itself, is looked at again After from now.
	// Deliveries held back are not written: their due time stays the
	// marker of when they were queued, which the next pass compares with
	// the backlog again. (A price: when more than Batch of them are older
	// than a delivery lost on another consumer, that one waits until its
	// turn comes in the oldest-first batch.)
	var lost, retries []string
	for _, d := range republish {
		if waitsForItsTime(d) {
			retries = append(retries, d.ID)
		} else {
			lost = append(lost, d.ID)
		}
	}
	if err := r.store.PostponeDeliveries(ctx, lost, now, now); err != nil {
		return 0, fmt.Errorf("reconcile: postpone: %w", err)
	}
	if err := r.store.PostponeDeliveries(ctx, retries, now, now.Add(r.o.After)); err != nil {
		return 0, fmt.Errorf("reconcile: postpone: %w", err)
	}
	if len(republish) > 0 {
		r.o.Logger.Info("republished stale deliveries", "count", len(republish), "waiting_in_queue", waiting)
	} else {
		r.o.Logger.Debug("stale deliveries are waiting in the queue", "count", waiting)
	}
	if r.o.Observe != nil {
		r.o.Observe(len(republish))
	}
	return len(republish), nil
}

// queueScheduled moves the scheduled deliveries among ds, whose time has
// come, to queued, due After from now, and returns ds without those that
// moved on meanwhile (canceled, claimed). A worker drops a scheduled
// delivery that is not due yet (a copy still queued when a quiet-hours
// hold or a cap deferred it), and the postpone after the republish puts
// the due time After ahead: left scheduled, a copy that a worker read
// after the postpone was dropped, and the send was put off by After again
// at every pass that lost that race.
func (r *Reconciler) queueScheduled(ctx context.Context, now time.Time, ds []herald.Delivery) ([]herald.Delivery, error) {
	if r.o.Log == nil {
		return ds, nil
	}
	b := &herald.Batch{}
	var at []int // the index in ds of each transition
	for i, d := range ds {
		if d.Status != herald.StatusScheduled {
			continue
		}
		attempts := d.Attempts
		b.Transitions = append(b.Transitions, herald.Transition{AppID: d.AppID, DeliveryID: d.ID,
			From: []herald.Status{herald.StatusScheduled}, IfAttempts: &attempts, To: herald.StatusQueued,
			DueAt: now.Add(r.o.After),
			Event: herald.Event{AppID: d.AppID, NotificationID: d.NotificationID, DeliveryID: d.ID, Channel: d.Channel,
				Status: herald.StatusQueued, At: now}})
		at = append(at, i)
	}
	if len(b.Transitions) == 0 {
		return ds, nil
	}
	if err := r.o.Log.Write(ctx, b); err != nil {
		return nil, fmt.Errorf("reconcile: queue %d scheduled deliveries: %w", len(b.Transitions), err)
	}
	moved := make(map[int]bool, len(at))
	for k, t := range b.Transitions {
		moved[at[k]] = t.Applied
	}
	out := make([]herald.Delivery, 0, len(ds))
	for i, d := range ds {
		applied, scheduled := moved[i]
		if !scheduled {
			out = append(out, d)
			continue
		}
		if applied {
			d.Status, d.NextAttemptAt = herald.StatusQueued, now.Add(r.o.After)
			out = append(out, d)
		}
	}
	return out, nil
}

// split returns the stale deliveries to republish and how many were held
// back because their message may still be waiting in the queue: the oldest
// message not yet handed to a worker on their consumer was stored no later
// than their marker (plus backlogSlack), so the workers have not reached
// them yet. A copy published now would only queue behind the original. A
// lost delivery is republished once the backlog has moved past it.
//
// When a consumer cannot be read (its stream or consumer between leaders
// while a NATS node restarts), its last reading stands in for up to
// backlogStale: the head of a backlog only moves forward, so an older
// reading can only hold back more than a fresh one would, never republish
// what a fresh one would hold back.
// Beyond that, or without any reading, the consumer's stale deliveries are
// republished: a copy too many costs a look-up in the log, a delivery held
// back wrongly costs a wait.
func (r *Reconciler) split(ctx context.Context, now time.Time, stale []herald.Delivery) ([]herald.Delivery, int) {
	if r.o.Backlog == nil {
		return stale, 0
	}
	// A NATS node that does not answer must not hold the pass up for long.
	bctx, cancel := context.WithTimeout(ctx, backlogTimeout)
	defer cancel()
	oldest, err := r.o.Backlog.OldestWaiting(bctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.backlog = make(map[string]reading, len(oldest))
	} else if r.backlog == nil {
		r.backlog = make(map[string]reading)
	}
	for k, h := range oldest {
		r.backlog[k] = reading{oldest: h, read: now}
	}
	if err != nil {
		r.o.Logger.Warn("reading the queue's backlog failed; using readings up to "+backlogStale.String()+" old", "err", err)
	}
	republish := make([]herald.Delivery, 0, len(stale))
	for _, d := range stale {
		h, ok := r.backlog[string(d.Channel)+"."+string(d.Priority)]
		if ok && now.Sub(h.read) <= backlogStale && !h.oldest.After(marker(d, r.o.After).Add(backlogSlack)) {
			continue
		}
		republish = append(republish, d)
	}
	return republish, len(stale) - len(republish)
}

// reading is one reading of a consumer's backlog: the oldest waiting
// message's store time, and when it was read. After a read that failed in
// part, a consumer absent from it keeps its earlier reading, whether it
// failed or had nothing waiting: within backlogStale that only holds back.
type reading struct {
	oldest, read time.Time
}

// backlogStale is how long a reading of a consumer's backlog stands in
// when the consumer cannot be read.
const backlogStale = 15 * time.Second

// marker is when d was last put on the queue, as far as the log knows: the
// due time of a delivery not yet attempted or in flight (its acceptance, its
// last progress or its last republish), and for a retry After before its
// due time (a republished retry is postponed by After; one never
// republished is then taken as queued earlier than it was, which only
// makes its republish likelier).
func marker(d herald.Delivery, after time.Duration) time.Time {
	if waitsForItsTime(d) {
		return d.NextAttemptAt.Add(-after)
	}
	return d.NextAttemptAt
}

// waitsForItsTime reports whether d's due time is a time it was set to
// wait for (a retry, or a scheduled send) rather than the time it was last
// put on the queue.
func waitsForItsTime(d herald.Delivery) bool {
	return d.Status == herald.StatusQueued || d.Status == herald.StatusScheduled
}

// sweepBatch bounds one delete, so a sweep after a long outage never holds
// the log's write lock for long.
const sweepBatch = 1000

// sweep deletes idempotency records older than the retention, in batches,
// at most once per SweepEvery. Only the lease holder calls it.
func (r *Reconciler) sweep(ctx context.Context, now time.Time) error {
	if r.o.IdempotencyRetention <= 0 {
		return nil
	}
	r.mu.Lock()
	due := now.Sub(r.lastSweep) >= r.o.SweepEvery
	if due {
		r.lastSweep = now
	}
	r.mu.Unlock()
	if !due {
		return nil
	}
	before := now.Add(-r.o.IdempotencyRetention)
	total := 0
	for {
		n, err := r.store.DeleteIdempotencyBefore(ctx, before, sweepBatch)
		total += n
		if err != nil {
			return fmt.Errorf("reconcile: sweep idempotency records before %s: %w", before, err)
		}
		if n < sweepBatch || ctx.Err() != nil {
			break
		}
	}
	if total > 0 {
		r.o.Logger.Info("swept expired idempotency keys", "count", total, "before", before)
	}
	if r.o.Swept != nil {
		r.o.Swept(total)
	}
	return nil
}
