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
}

// Reconciler is a long-lived part: Start, then Stop.
type Reconciler struct {
	store Store
	pub   Publisher
	o     Options

	mu        sync.Mutex
	lastSweep time.Time

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
	stale, err := r.store.StaleDeliveries(ctx, now.Add(-r.o.After), now, r.o.Batch)
	if err != nil {
		return 0, fmt.Errorf("reconcile: find stale deliveries: %w", err)
	}
	if len(stale) == 0 {
		return 0, nil
	}
	round := fmt.Sprintf("r%d", now.UnixMicro())
	if err := r.pub.RepublishDeliveries(ctx, stale, round); err != nil {
		return 0, fmt.Errorf("reconcile: republish %d deliveries: %w", len(stale), err)
	}
	// Give the republished copies time to be worked before looking again.
	// Lost work becomes stale again After from now; a due retry, whose
	// marker is its due time itself, is looked at again After from now.
	var lost, retries []string
	for _, d := range stale {
		if d.Status == herald.StatusQueued {
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
	r.o.Logger.Info("republished stale deliveries", "count", len(stale))
	if r.o.Observe != nil {
		r.o.Observe(len(stale))
	}
	return len(stale), nil
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
