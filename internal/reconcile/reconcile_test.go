package reconcile_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/reconcile"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

const appID = "app-1"

// t0 is where every test's clock starts.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// clock is a settable time source; the reconciler's loop may read it from
// its own goroutine.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// round is one RepublishDeliveries call.
type round struct {
	id         string
	deliveries []string // sorted ids
}

// sink is a recording Publisher. fail, when set, is returned by the next call instead of recording it.
type sink struct {
	mu     sync.Mutex
	rounds []round
	fail   error
}

func (s *sink) RepublishDeliveries(_ context.Context, ds []herald.Delivery, roundID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail; err != nil {
		s.fail = nil
		return err
	}
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	slices.Sort(ids)
	s.rounds = append(s.rounds, round{id: roundID, deliveries: ids})
	return nil
}

func (s *sink) failNext(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *sink) all() []round {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rounds)
}

// seed stores one notification with a delivery per entry: its id, status and due time.
func seed(t *testing.T, s *sqlite.Store, ds ...herald.Delivery) {
	t.Helper()
	nn := herald.NewNotification{Notification: herald.Notification{AppID: appID, ID: "n-" + ds[0].ID,
		Priority: herald.PriorityNormal, Content: herald.Content{Body: "hello"}, CreatedAt: t0.Add(-2 * time.Hour)}}
	for _, d := range ds {
		d.AppID, d.NotificationID, d.Channel, d.Address = appID, nn.Notification.ID, herald.ChannelEmail, d.ID+"@example.com"
		d.CreatedAt, d.UpdatedAt = nn.Notification.CreatedAt, nn.Notification.CreatedAt
		nn.Deliveries = append(nn.Deliveries, d)
	}
	if err := s.Apply(t.Context(), &herald.Batch{Notifications: []herald.NewNotification{nn}}); err != nil {
		t.Fatalf("seed deliveries: %v", err)
	}
}

func delivery(id string, st herald.Status, due time.Time) herald.Delivery {
	return herald.Delivery{ID: id, Status: st, NextAttemptAt: due}
}

// newReconciler returns a reconciler that is stopped when the test ends.
func newReconciler(t *testing.T, s *sqlite.Store, pub reconcile.Publisher, o reconcile.Options) *reconcile.Reconciler {
	t.Helper()
	r := reconcile.New(s, pub, o)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("stop reconciler %s: %v", o.Holder, err)
		}
	})
	return r
}

func pass(t *testing.T, r *reconcile.Reconciler) int {
	t.Helper()
	n, err := r.Pass(t.Context())
	if err != nil {
		t.Fatalf("pass: %v", err)
	}
	return n
}

func TestPassRepublishesOnlyDueOpenDeliveries(t *testing.T) {
	t.Parallel()
	const after = time.Minute
	long := t0.Add(-time.Hour)
	for _, tt := range []struct {
		d           herald.Delivery
		republished bool
	}{
		// A queued delivery waits in the log for its retry: due is due.
		{delivery("queued-long-ago", herald.StatusQueued, long), true},
		{delivery("queued-just-due", herald.StatusQueued, t0.Add(-time.Microsecond)), true},
		{delivery("queued-due-now", herald.StatusQueued, t0), false},
		{delivery("queued-for-later", herald.StatusQueued, t0.Add(time.Hour)), false},
		// Accepted and sending ones may just be on their way: only After past due are they lost.
		{delivery("accepted-long-ago", herald.StatusAccepted, long), true},
		{delivery("sending-long-ago", herald.StatusSending, long), true},
		{delivery("accepted-just-over-after", herald.StatusAccepted, t0.Add(-after-time.Microsecond)), true},
		{delivery("accepted-exactly-after", herald.StatusAccepted, t0.Add(-after)), false},
		{delivery("accepted-recently", herald.StatusAccepted, t0.Add(-after/2)), false},
		{delivery("sending-recently", herald.StatusSending, t0.Add(-after/2)), false},
		// Finished ones never.
		{delivery("sent", herald.StatusSent, long), false},
		{delivery("delivered", herald.StatusDelivered, long), false},
		{delivery("failed", herald.StatusFailed, long), false},
		{delivery("dead", herald.StatusDead, long), false},
		{delivery("suppressed", herald.StatusSuppressed, long), false},
		{delivery("canceled", herald.StatusCanceled, long), false},
	} {
		t.Run(tt.d.ID, func(t *testing.T) {
			t.Parallel()
			s := openStore(t)
			seed(t, s, tt.d)
			pub := &sink{}
			r := newReconciler(t, s, pub, reconcile.Options{Holder: "a", Now: newClock().Now, Interval: time.Hour, After: after})
			var want []round
			if tt.republished {
				want = []round{{deliveries: []string{tt.d.ID}}}
			}
			if n := pass(t, r); n != len(want) {
				t.Errorf("pass republished %d, want %d", n, len(want))
			}
			got := pub.all()
			for i := range got {
				got[i].id = "" // checked in TestRepublishedDeliveryIsPostponed
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(round{})); diff != "" {
				t.Errorf("republish calls (-want +got):\n%s", diff)
			}
			d, err := s.GetDelivery(t.Context(), appID, tt.d.ID)
			if err != nil {
				t.Fatalf("get delivery: %v", err)
			}
			if d.Status != tt.d.Status {
				t.Errorf("status after the pass = %s, want it unchanged (%s)", d.Status, tt.d.Status)
			}
		})
	}
}

func TestRepublishedDeliveryIsPostponed(t *testing.T) {
	t.Parallel()
	const after = time.Minute
	for _, tt := range []struct {
		status herald.Status
		due    time.Time // after the first pass at t0
	}{
		{herald.StatusQueued, t0.Add(after)}, // a due retry: looked at again After from now
		{herald.StatusAccepted, t0},          // lost work: stale again After from now
		{herald.StatusSending, t0},
	} {
		t.Run(string(tt.status), func(t *testing.T) {
			t.Parallel()
			s := openStore(t)
			seed(t, s, delivery("stale", tt.status, t0.Add(-time.Hour)))
			c := newClock()
			pub := &sink{}
			var observed []int
			r := newReconciler(t, s, pub, reconcile.Options{Holder: "a", Now: c.Now, Interval: time.Hour, After: after,
				Observe: func(n int) { observed = append(observed, n) }})

			if got := pass(t, r); got != 1 {
				t.Fatalf("first pass republished %d, want 1", got)
			}
			d, err := s.GetDelivery(t.Context(), appID, "stale")
			if err != nil {
				t.Fatalf("get delivery: %v", err)
			}
			if !d.NextAttemptAt.Equal(tt.due) || d.Status != tt.status {
				t.Errorf("after the pass: due %v, status %s; want due %v, status %s", d.NextAttemptAt, d.Status, tt.due, tt.status)
			}
			if got := pass(t, r); got != 0 {
				t.Errorf("immediate second pass republished %d, want 0", got)
			}
			c.Advance(after)
			if got := pass(t, r); got != 0 {
				t.Errorf("pass exactly After later republished %d, want 0", got)
			}
			c.Advance(time.Second)
			if got := pass(t, r); got != 1 {
				t.Errorf("pass After+1s later republished %d, want 1", got)
			}

			rounds := pub.all()
			if len(rounds) != 2 {
				t.Fatalf("republish calls = %d, want 2", len(rounds))
			}
			for i, rd := range rounds {
				if diff := cmp.Diff([]string{"stale"}, rd.deliveries); diff != "" {
					t.Errorf("round %d (-want +got):\n%s", i, diff)
				}
			}
			if rounds[0].id == "" || rounds[1].id == "" || rounds[0].id == rounds[1].id {
				t.Errorf("round ids %q then %q, want two distinct ids", rounds[0].id, rounds[1].id)
			}
			if diff := cmp.Diff([]int{1, 1}, observed); diff != "" {
				t.Errorf("observed counts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailedRepublishIsRetriedNextPass(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	due := t0.Add(-time.Hour)
	seed(t, s, delivery("stale", herald.StatusQueued, due))
	c := newClock()
	pub := &sink{}
	r := newReconciler(t, s, pub, reconcile.Options{Holder: "a", Now: c.Now, Interval: time.Hour, After: time.Minute})

	pub.failNext(errors.New("queue down"))
	if n, err := r.Pass(t.Context()); err == nil || n != 0 {
		t.Errorf("pass with a failing publisher = %d, %v; want 0 and an error", n, err)
	}
	d, err := s.GetDelivery(t.Context(), appID, "stale")
	if err != nil {
		t.Fatalf("get delivery: %v", err)
	}
	if !d.NextAttemptAt.Equal(due) {
		t.Errorf("due after a failed republish = %v, want it unchanged at %v", d.NextAttemptAt, due)
	}
	if got := pass(t, r); got != 1 {
		t.Errorf("next pass republished %d, want 1", got)
	}
}

func TestOnlyTheLeaseHolderRepublishes(t *testing.T) {
	t.Parallel()
	const interval, after = time.Hour, time.Minute // the lease lasts 3 intervals
	s := openStore(t)
	seed(t, s, delivery("stale", herald.StatusQueued, t0.Add(-time.Hour)))
	c := newClock()
	pubA, pubB := &sink{}, &sink{}
	a := newReconciler(t, s, pubA, reconcile.Options{Holder: "a", Now: c.Now, Interval: interval, After: after})
	b := newReconciler(t, s, pubB, reconcile.Options{Holder: "b", Now: c.Now, Interval: interval, After: after})
	// Started so that Stop gives the lease up; the hour-long interval keeps
	// the loop from passing on its own during the test.
	if err := a.Start(t.Context()); err != nil {
		t.Fatalf("start a: %v", err)
	}

	if got := pass(t, a); got != 1 {
		t.Fatalf("a's first pass republished %d, want 1", got)
	}
	c.Advance(after + time.Second) // stale again
	if got := pass(t, b); got != 0 {
		t.Errorf("b republished %d while a holds the lease, want 0", got)
	}
	if got := pass(t, a); got != 1 {
		t.Errorf("a (the holder) republished %d, want 1", got)
	}

	if err := a.Stop(t.Context()); err != nil {
		t.Fatalf("stop a: %v", err)
	}
	c.Advance(after + time.Second)
	if got := pass(t, b); got != 1 {
		t.Errorf("b's pass after a stopped republished %d, want 1 (a released the lease)", got)
	}
	c.Advance(after + time.Second)
	if got := pass(t, a); got != 0 {
		t.Errorf("a republished %d after b took the lease, want 0", got)
	}
	if len(pubA.all()) != 2 || len(pubB.all()) != 1 {
		t.Errorf("republish calls: a %d, b %d; want 2 and 1", len(pubA.all()), len(pubB.all()))
	}
}

func TestLeaseOfASilentHolderExpires(t *testing.T) {
	t.Parallel()
	const interval, after = time.Minute, time.Minute // the lease lasts 3 intervals
	s := openStore(t)
	seed(t, s, delivery("stale", herald.StatusQueued, t0.Add(-time.Hour)))
	c := newClock()
	a := newReconciler(t, s, &sink{}, reconcile.Options{Holder: "a", Now: c.Now, Interval: interval, After: after})
	b := newReconciler(t, s, &sink{}, reconcile.Options{Holder: "b", Now: c.Now, Interval: interval, After: after})

	if got := pass(t, a); got != 1 {
		t.Fatalf("a's pass republished %d, want 1", got)
	}
	// a goes silent (it never stops, never renews).
	c.Advance(3*interval - time.Second)
	if got := pass(t, b); got != 0 {
		t.Errorf("b republished %d before a's lease expired, want 0", got)
	}
	c.Advance(time.Second)
	if got := pass(t, b); got != 1 {
		t.Errorf("b republished %d once a's lease expired, want 1", got)
	}
}

func TestStartPassesUntilStop(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	seed(t, s, delivery("stale", herald.StatusQueued, t0.Add(-time.Hour)))
	c := newClock()
	pub := &sink{}
	a := newReconciler(t, s, pub, reconcile.Options{Holder: "a", Now: c.Now, Interval: 5 * time.Millisecond, After: time.Minute})
	if err := a.Start(t.Context()); err != nil {
		t.Fatalf("start: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(pub.all()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the started reconciler did not republish the stale delivery within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 2 {
		if err := a.Stop(t.Context()); err != nil {
			t.Errorf("stop #%d: %v", i+1, err)
		}
	}
	if diff := cmp.Diff([]string{"stale"}, pub.all()[0].deliveries); diff != "" {
		t.Errorf("republished (-want +got):\n%s", diff)
	}

	// Stop gave the lease up: another process takes over at once.
	b := newReconciler(t, s, &sink{}, reconcile.Options{Holder: "b", Now: c.Now, Interval: time.Hour, After: time.Minute})
	c.Advance(time.Minute + time.Second)
	if got := pass(t, b); got != 1 {
		t.Errorf("b republished %d after a stopped, want 1", got)
	}
}

func TestStopWithoutStart(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	r := reconcile.New(s, &sink{}, reconcile.Options{Holder: "a"})
	for i := range 2 {
		if err := r.Stop(t.Context()); err != nil {
			t.Errorf("stop #%d of a reconciler never started: %v", i+1, err)
		}
	}
}

// seedKey stores a notification with an idempotency record created at at.
func seedKey(t *testing.T, s *sqlite.Store, key string, at time.Time) {
	t.Helper()
	nn := herald.NewNotification{Notification: herald.Notification{AppID: appID, ID: "n-" + key,
		Priority: herald.PriorityNormal, Content: herald.Content{Body: "hello"}, CreatedAt: at},
		Idempotency: &herald.Idempotency{AppID: appID, Key: key, RequestHash: []byte(key), NotificationID: "n-" + key, CreatedAt: at}}
	if err := s.Apply(t.Context(), &herald.Batch{Notifications: []herald.NewNotification{nn}}); err != nil {
		t.Fatalf("seed key %s: %v", key, err)
	}
}

func hasKey(t *testing.T, s *sqlite.Store, key string) bool {
	t.Helper()
	_, err := s.GetIdempotency(t.Context(), appID, key)
	if err != nil && !herald.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// TestSweepKeepsKeysForTheRetention: a key is kept for the whole retention
// and swept after it, by the lease holder only, at most once per SweepEvery.
func TestSweepKeepsKeysForTheRetention(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	seedKey(t, s, "day-old", t0.Add(-24*time.Hour-time.Second))
	seedKey(t, s, "almost-day-old", t0.Add(-24*time.Hour+time.Minute))
	clk := newClock()
	var swept []int
	o := reconcile.Options{Now: clk.Now, Interval: time.Hour, IdempotencyRetention: 24 * time.Hour,
		SweepEvery: 5 * time.Minute}
	ownerOpts, otherOpts := o, o
	ownerOpts.Holder, otherOpts.Holder = "owner", "other"
	ownerOpts.Swept = func(n int) { swept = append(swept, n) }
	owner := newReconciler(t, s, &sink{}, ownerOpts)
	other := newReconciler(t, s, &sink{}, otherOpts)

	pass(t, owner) // takes the lease and sweeps
	if hasKey(t, s, "day-old") {
		t.Error("a key older than the retention survived the sweep")
	}
	if !hasKey(t, s, "almost-day-old") {
		t.Fatal("a key younger than the retention was swept")
	}

	clk.Advance(2 * time.Minute) // almost-day-old is now past the retention
	pass(t, other)               // no lease: no sweep
	pass(t, owner)               // holds the lease, but the last sweep was 2 minutes ago
	if !hasKey(t, s, "almost-day-old") {
		t.Fatal("swept before SweepEvery passed, or by a process without the lease")
	}
	clk.Advance(4 * time.Minute)
	pass(t, owner)
	if hasKey(t, s, "almost-day-old") {
		t.Error("a key past the retention survived the next sweep")
	}
	if want := []int{1, 1}; !slices.Equal(swept, want) {
		t.Errorf("sweeps reported %v, want %v", swept, want)
	}
}

// backlog is a fixed Backlog.
type backlog struct {
	oldest map[string]time.Time
	err    error
}

func (b backlog) OldestWaiting(context.Context) (map[string]time.Time, error) {
	return b.oldest, b.err
}

// A stale delivery whose message the workers have not reached yet (the
// oldest message waiting on its consumer was stored before it) is not
// copied behind the backlog again, nor written; one the backlog has moved
// past is republished and postponed.
func TestPassHoldsBackDeliveriesWaitingInTheQueue(t *testing.T) {
	t.Parallel()
	const after = time.Minute
	marker := t0.Add(-10 * time.Minute) // an accepted delivery's due time
	retryDue := t0.Add(-time.Second)    // a retry's: its marker is After earlier
	for _, tt := range []struct {
		name        string
		status      herald.Status
		due         time.Time
		backlog     backlog
		republished bool
	}{
		{"no backlog", herald.StatusAccepted, marker, backlog{}, true},
		{"backlog older than the delivery", herald.StatusAccepted, marker,
			backlog{oldest: map[string]time.Time{"email.normal": marker.Add(-time.Minute)}}, false},
		{"backlog stored just after the delivery's marker", herald.StatusAccepted, marker,
			backlog{oldest: map[string]time.Time{"email.normal": marker.Add(2 * time.Second)}}, false},
		{"backlog moved past the delivery", herald.StatusAccepted, marker,
			backlog{oldest: map[string]time.Time{"email.normal": marker.Add(time.Minute)}}, true},
		{"backlog on another consumer", herald.StatusAccepted, marker,
			backlog{oldest: map[string]time.Time{"push.normal": marker.Add(-time.Minute), "email.high": marker.Add(-time.Minute)}}, true},
		{"backlog unreadable", herald.StatusAccepted, marker,
			backlog{err: errors.New("no responders")}, true},
		{"in flight, backlog older", herald.StatusSending, marker,
			backlog{oldest: map[string]time.Time{"email.normal": marker.Add(-time.Minute)}}, false},
		{"retry republished before, backlog older", herald.StatusQueued, retryDue,
			backlog{oldest: map[string]time.Time{"email.normal": retryDue.Add(-2 * after)}}, false},
		{"retry, backlog newer than After before its due time", herald.StatusQueued, retryDue,
			backlog{oldest: map[string]time.Time{"email.normal": retryDue.Add(-after / 2)}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t)
			d := delivery("stale", tt.status, tt.due)
			d.Priority = herald.PriorityNormal
			seed(t, s, d)
			pub := &sink{}
			r := newReconciler(t, s, pub, reconcile.Options{Holder: "a", Now: newClock().Now, Interval: time.Hour, After: after,
				Backlog: tt.backlog})
			var want []round
			if tt.republished {
				want = []round{{deliveries: []string{"stale"}}}
			}
			if n := pass(t, r); n != len(want) {
				t.Errorf("pass republished %d, want %d", n, len(want))
			}
			got := pub.all()
			for i := range got {
				got[i].id = ""
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(round{})); diff != "" {
				t.Errorf("republish calls (-want +got):\n%s", diff)
			}
			stored, err := s.GetDelivery(t.Context(), appID, "stale")
			if err != nil {
				t.Fatalf("get delivery: %v", err)
			}
			wantDue := tt.due // held back: left as it was
			switch {
			case tt.republished && tt.status == herald.StatusQueued:
				wantDue = t0.Add(after)
			case tt.republished:
				wantDue = t0
			}
			if !stored.NextAttemptAt.Equal(wantDue) {
				t.Errorf("due after the pass = %s, want %s", stored.NextAttemptAt, wantDue)
			}
		})
	}
}

// backlogFunc is a Backlog whose answer the test changes between passes.
type backlogFunc func() (map[string]time.Time, error)

func (f backlogFunc) OldestWaiting(context.Context) (map[string]time.Time, error) { return f() }

// While the queue's backlog cannot be read (a NATS node restarting), the
// last reading keeps holding back what it held back, for a while; after
// that the stale delivery is republished.
func TestPassUsesTheLastBacklogReadingForAWhile(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	queuedAt := t0.Add(-10 * time.Minute)
	d := delivery("stale", herald.StatusAccepted, queuedAt)
	d.Priority = herald.PriorityNormal
	seed(t, s, d)
	var answer struct {
		oldest map[string]time.Time
		err    error
	}
	clk := newClock()
	pub := &sink{}
	r := newReconciler(t, s, pub, reconcile.Options{Holder: "a", Now: clk.Now, Interval: time.Hour, After: time.Minute,
		Backlog: backlogFunc(func() (map[string]time.Time, error) { return answer.oldest, answer.err })})

	for _, step := range []struct {
		name        string
		advance     time.Duration
		oldest      map[string]time.Time
		err         error
		republished int
	}{
		{"read: the backlog is older than the delivery", 0, map[string]time.Time{"email.normal": queuedAt.Add(-time.Minute)}, nil, 0},
		{"unreadable, the reading is 10s old", 10 * time.Second, nil, errors.New("no responders"), 0},
		{"unreadable, the reading is 20s old", 10 * time.Second, nil, errors.New("no responders"), 1},
	} {
		clk.Advance(step.advance)
		answer.oldest, answer.err = step.oldest, step.err
		if n := pass(t, r); n != step.republished {
			t.Errorf("%s: pass republished %d, want %d", step.name, n, step.republished)
		}
	}
}

// storeLog commits through the store itself, as the log writer does
// (without its grouping and publishing); before, when set, is committed
// first, as if another process had written it in between.
type storeLog struct {
	s      *sqlite.Store
	before *herald.Batch
}

func (l storeLog) Write(ctx context.Context, b *herald.Batch) error {
	if l.before != nil {
		if err := l.s.Apply(ctx, l.before); err != nil {
			return err
		}
	}
	return l.s.Apply(ctx, b)
}

// TestScheduledDeliveryIsQueuedBeforeItsCopy: a scheduled delivery whose
// time came is queued in the log, with its queued event, before its copy
// goes out. Left scheduled with the due time the pass postpones it to, a
// worker reading it after the pass would take it for one still held back
// and drop the copy. One canceled meanwhile is not republished.
func TestScheduledDeliveryIsQueuedBeforeItsCopy(t *testing.T) {
	t.Parallel()
	const after = time.Minute
	s := openStore(t)
	seed(t, s, delivery("due", herald.StatusScheduled, t0.Add(-time.Second)))
	seed(t, s, delivery("later", herald.StatusScheduled, t0.Add(time.Hour)))
	seed(t, s, delivery("canceled", herald.StatusScheduled, t0.Add(-time.Second)))
	cancel := &herald.Batch{Transitions: []herald.Transition{{AppID: appID, DeliveryID: "canceled",
		From: []herald.Status{herald.StatusScheduled}, To: herald.StatusCanceled,
		Event: herald.Event{AppID: appID, NotificationID: "n-canceled", DeliveryID: "canceled", Status: herald.StatusCanceled, At: t0}}}}
	pub := &sink{}
	r := newReconciler(t, s, pub, reconcile.Options{Holder: "a", Now: newClock().Now, Interval: time.Hour, After: after,
		Log: storeLog{s: s, before: cancel}})
	if got := pass(t, r); got != 1 {
		t.Fatalf("the pass republished %d, want 1", got)
	}
	if rounds := pub.all(); len(rounds) != 1 || !slices.Equal(rounds[0].deliveries, []string{"due"}) {
		t.Fatalf("republished %v, want [due]", rounds)
	}
	d, err := s.GetDelivery(t.Context(), appID, "due")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != herald.StatusQueued || !d.NextAttemptAt.Equal(t0.Add(after)) {
		t.Errorf("after the pass: %s due %v, want queued due %v", d.Status, d.NextAttemptAt, t0.Add(after))
	}
	evs, err := s.ListEvents(t.Context(), appID, "n-due")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || evs[len(evs)-1].Status != herald.StatusQueued || !evs[len(evs)-1].At.Equal(t0) {
		t.Errorf("timeline %+v, want it to end with queued at %v", evs, t0)
	}
	if d, _ := s.GetDelivery(t.Context(), appID, "later"); d.Status != herald.StatusScheduled {
		t.Errorf("a delivery not yet due is %s, want scheduled", d.Status)
	}
	if got := pass(t, r); got != 0 {
		t.Errorf("a second pass republished %d, want 0 (it is postponed)", got)
	}
}
