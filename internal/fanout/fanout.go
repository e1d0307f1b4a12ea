// Package fanout writes the deliveries of notifications sent to a topic.
// Acceptance commits the notification with a fan-out record and answers
// 202; a runner then pages through the topic's subscribers in user id
// order and commits each page's deliveries in one log transaction together
// with the fan-out's cursor (the last user id done), then queues them.
//
// Why the runner, under a lease of the scheduler role, rather than fan-out
// jobs on the work queue: the cursor in the log is the whole state of a
// fan-out, so the only thing a job message would add is "someone should
// look at it", which a lease holder polling RunningFanouts gives without a
// second source of truth to keep consistent with the log (a lost or
// duplicated job message, a job redelivered while its first copy still
// runs). Exactly one runner acts at a time, and even two could not
// duplicate a delivery: a page commits only if the cursor is still where
// the page started, and delivery ids are derived from the notification id
// and the address, so a page redone after a crash names the same
// deliveries and queues them under the same message ids. The cost is that
// one process writes every fan-out; a page is a bulk write of about a
// thousand rows, far faster than the workers send them.
package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldhq/herald"
)

// Store is what the runner needs from the store.
type Store interface {
	RunningFanouts(ctx context.Context, limit int) ([]herald.Fanout, error)
	ListSubscribers(ctx context.Context, appID, topic, after string, limit int) ([]string, error)
	GetNotification(ctx context.Context, appID, id string) (herald.Notification, error)
	ApplyFanoutPage(ctx context.Context, p *herald.FanoutPage) error
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Resolver turns a page of subscribers into deliveries (accept.Service).
type Resolver interface {
	FanoutPage(ctx context.Context, f herald.Fanout, n herald.Notification, users []string) ([]herald.Delivery, []herald.Event, error)
}

// Publisher queues a committed page's deliveries and events. A failure is
// logged: the deliveries are in the log, and the reconciler republishes
// what makes no progress.
type Publisher interface {
	PublishDeliveries(ctx context.Context, ds []herald.Delivery) error
	PublishEvents(ctx context.Context, events []herald.Event) error
}

// Options tune the runner.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Holder names this process in the lease.
	Holder string
	// Interval between looks for running fan-outs when there is nothing to do (default 1s).
	Interval time.Duration
	// PageSize is the number of subscribers per page and transaction (default 1000).
	PageSize int
	// PagesPerTurn is how many pages one fan-out gets before the next
	// running one has its turn (default 10), so a large topic does not
	// hold a small one up for its whole length.
	PagesPerTurn int
	// AfterCommit, when set, is called after each page commits and before
	// its deliveries are queued; an error stops the runner right there, as
	// a crash would: nothing more is queued or written until another
	// runner (or this one, restarted) takes over. Tests crash with it.
	AfterCommit func(p *herald.FanoutPage) error
	// Observe, when set, is told the recipients of each committed page.
	Observe func(users, deliveries int)
}

// Runner is a long-lived part: Start, then Stop.
type Runner struct {
	store Store
	res   Resolver
	pub   Publisher
	o     Options

	nudge    chan struct{}
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

// New returns a Runner.
func New(store Store, res Resolver, pub Publisher, o Options) *Runner {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.PageSize <= 0 {
		o.PageSize = 1000
	}
	if o.PagesPerTurn <= 0 {
		o.PagesPerTurn = 10
	}
	return &Runner{store: store, res: res, pub: pub, o: o, nudge: make(chan struct{}, 1)}
}

const leaseName = "fanout"

// leaseTTL is how long the lease outlives its last renewal: a runner that
// died is replaced after it. It is renewed before every page.
func (r *Runner) leaseTTL() time.Duration { return max(30*time.Second, 3*r.o.Interval) }

// Start runs the loop until Stop.
func (r *Runner) Start(ctx context.Context) error {
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
			case <-r.nudge:
			}
			for {
				pages, err := r.Pass(ctx)
				if errors.Is(err, errCrashed) {
					r.o.Logger.Warn("fan-out runner stopped after a commit, as asked (AfterCommit)")
					return
				}
				if err != nil && ctx.Err() == nil {
					r.o.Logger.Warn("fan-out pass failed", "err", err)
				}
				if pages == 0 || err != nil || ctx.Err() != nil {
					break
				}
			}
		}
	}()
	return nil
}

// Nudge asks for a pass now rather than at the next Interval: a
// notification to a topic was just accepted in this process.
func (r *Runner) Nudge() {
	select {
	case r.nudge <- struct{}{}:
	default:
	}
}

// Stop ends the loop and gives the lease up. Safe to call twice.
func (r *Runner) Stop(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
			select {
			case <-r.done:
			case <-ctx.Done():
				err = fmt.Errorf("fanout: stop: %w", ctx.Err())
				return
			}
		}
		err = r.store.ReleaseLease(ctx, leaseName, r.o.Holder)
	})
	return err
}

// errCrashed stops the runner when AfterCommit says so.
var errCrashed = errors.New("fanout: stopped after a commit")

// Pass gives each running fan-out a turn of up to PagesPerTurn pages if
// this process holds the lease, and reports how many pages it committed.
func (r *Runner) Pass(ctx context.Context) (int, error) {
	if ok, err := r.lease(ctx); err != nil || !ok {
		return 0, err
	}
	running, err := r.store.RunningFanouts(ctx, 100)
	if err != nil {
		return 0, fmt.Errorf("fanout: list running: %w", err)
	}
	pages := 0
	for _, f := range running {
		n, err := r.store.GetNotification(ctx, f.AppID, f.NotificationID)
		if err != nil {
			return pages, fmt.Errorf("fanout: notification %s: %w", f.NotificationID, err)
		}
		for range r.o.PagesPerTurn {
			if ok, err := r.lease(ctx); err != nil || !ok {
				return pages, err
			}
			done, err := r.page(ctx, &f, n)
			if err != nil {
				return pages, err
			}
			pages++
			if done {
				break
			}
		}
	}
	return pages, nil
}

func (r *Runner) lease(ctx context.Context) (bool, error) {
	ok, err := r.store.AcquireLease(ctx, leaseName, r.o.Holder, r.o.Now().UTC().Truncate(time.Microsecond), r.leaseTTL())
	if err != nil {
		return false, fmt.Errorf("fanout: lease: %w", err)
	}
	return ok, nil
}

// page writes the next page of f and advances f; done when f is complete
// or another writer moved its cursor.
func (r *Runner) page(ctx context.Context, f *herald.Fanout, n herald.Notification) (done bool, err error) {
	users, err := r.store.ListSubscribers(ctx, f.AppID, f.Topic, f.Cursor, r.o.PageSize)
	if err != nil {
		return false, fmt.Errorf("fanout: subscribers of %q after %q: %w", f.Topic, f.Cursor, err)
	}
	ds, evs, err := r.res.FanoutPage(ctx, *f, n, users)
	if err != nil {
		return false, fmt.Errorf("fanout: resolve page of %s after %q: %w", f.NotificationID, f.Cursor, err)
	}
	p := &herald.FanoutPage{AppID: f.AppID, NotificationID: f.NotificationID, After: f.Cursor, Cursor: f.Cursor,
		Users: len(users), Done: len(users) < r.o.PageSize, At: r.o.Now().UTC().Truncate(time.Microsecond),
		Deliveries: ds, Events: evs}
	if len(users) > 0 {
		p.Cursor = users[len(users)-1]
	}
	if err := r.store.ApplyFanoutPage(ctx, p); err != nil {
		return false, fmt.Errorf("fanout: commit page of %s after %q: %w", f.NotificationID, f.Cursor, err)
	}
	if !p.Applied {
		// Another runner moved the cursor (or completed it): its state is the log's.
		r.o.Logger.Info("fan-out page was written elsewhere", "notification", f.NotificationID, "after", f.Cursor)
		return true, nil
	}
	f.Cursor, f.Recipients = p.Cursor, f.Recipients+p.Users
	if r.o.AfterCommit != nil {
		if err := r.o.AfterCommit(p); err != nil {
			return true, fmt.Errorf("%w: %w", errCrashed, err)
		}
	}
	if r.o.Observe != nil {
		r.o.Observe(p.Users, len(p.Inserted))
	}
	r.publish(ctx, p)
	if p.Done {
		r.o.Logger.Info("fan-out completed", "notification", f.NotificationID, "topic", f.Topic, "recipients", f.Recipients)
	}
	return p.Done, nil
}

// publish queues the page's new deliveries that are due now (scheduled
// ones wait for the reconciler) and puts their events on the event stream.
func (r *Runner) publish(ctx context.Context, p *herald.FanoutPage) {
	inserted := make(map[string]bool, len(p.Inserted))
	var due []herald.Delivery
	for _, d := range p.Inserted {
		inserted[d.ID] = true
		if d.Status == herald.StatusAccepted {
			due = append(due, d)
		}
	}
	var evs []herald.Event
	for _, e := range p.Events {
		if inserted[e.DeliveryID] {
			evs = append(evs, e)
		}
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if len(due) > 0 {
		if err := r.pub.PublishDeliveries(pctx, due); err != nil {
			r.o.Logger.Warn("queueing fan-out deliveries failed; the reconciler will republish them", "deliveries", len(due), "err", err)
		}
	}
	if len(evs) > 0 {
		if err := r.pub.PublishEvents(pctx, evs); err != nil {
			r.o.Logger.Warn("publishing fan-out events failed; they stay in the log", "events", len(evs), "err", err)
		}
	}
}
