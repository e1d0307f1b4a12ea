package logwriter_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/logwriter"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

const appID = "app-1"

// openStore opens a fresh SQLite store, closed when the test ends.
func openStore(t testing.TB) *sqlite.Store {
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

// startWriter starts a writer over s and stops it when the test ends
// (before the store closes: cleanups run last registered first).
func startWriter(t testing.TB, s logwriter.Applier, o logwriter.Options) *logwriter.Writer {
	t.Helper()
	w := logwriter.New(s, o)
	if err := w.Start(t.Context()); err != nil {
		t.Fatalf("start writer: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Errorf("stop writer: %v", err)
		}
	})
	return w
}

// observation is one call of Options.Observe.
type observation struct {
	requests int
	code     herald.Code // "" for a successful commit
}

// observer records the writer's commits.
type observer struct {
	mu  sync.Mutex
	obs []observation
}

func (o *observer) observe(requests int, _ time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.obs = append(o.obs, observation{requests: requests, code: herald.ErrorCode(err)})
}

func (o *observer) all() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.obs)
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// notification builds a new notification with one email delivery, and its
// first event, per status given; delivery i has the id "<id>-d<i>".
func notification(id string, at time.Time, statuses ...herald.Status) herald.NewNotification {
	nn := herald.NewNotification{Notification: herald.Notification{AppID: appID, ID: id, Priority: herald.PriorityNormal,
		Content: herald.Content{Subject: "hi", Body: "hello"}, CreatedAt: at}}
	for i, st := range statuses {
		d := herald.Delivery{AppID: appID, ID: fmt.Sprintf("%s-d%d", id, i), NotificationID: id, Channel: herald.ChannelEmail,
			Priority: herald.PriorityNormal, Address: fmt.Sprintf("u%d@example.com", i), Status: st, CreatedAt: at, UpdatedAt: at}
		nn.Deliveries = append(nn.Deliveries, d)
		nn.Events = append(nn.Events, herald.Event{AppID: appID, NotificationID: id, DeliveryID: d.ID,
			Channel: herald.ChannelEmail, Status: st, At: at})
	}
	return nn
}

func withKey(nn herald.NewNotification, key string) herald.NewNotification {
	nn.Idempotency = &herald.Idempotency{AppID: appID, Key: key, RequestHash: []byte("hash of " + nn.Notification.ID),
		NotificationID: nn.Notification.ID, Response: json.RawMessage(`{"id":"` + nn.Notification.ID + `"}`),
		CreatedAt: nn.Notification.CreatedAt}
	return nn
}

func batchOf(nns ...herald.NewNotification) *herald.Batch {
	return &herald.Batch{Notifications: nns}
}

// writeAll writes each batch from its own goroutine and returns each one's error.
func writeAll(t *testing.T, w *logwriter.Writer, batches []*herald.Batch) []error {
	t.Helper()
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	for i, b := range batches {
		wg.Go(func() { errs[i] = w.Write(t.Context(), b) })
	}
	wg.Wait()
	return errs
}

func wantStored(t *testing.T, s *sqlite.Store, id string, deliveries int) {
	t.Helper()
	if _, err := s.GetNotification(t.Context(), appID, id); err != nil {
		t.Errorf("notification %s: %v", id, err)
		return
	}
	ds, err := s.ListDeliveries(t.Context(), appID, id)
	if err != nil {
		t.Fatalf("list deliveries of %s: %v", id, err)
	}
	if len(ds) != deliveries {
		t.Errorf("notification %s has %d deliveries, want %d", id, len(ds), deliveries)
	}
}

func wantNotStored(t *testing.T, s *sqlite.Store, id string) {
	t.Helper()
	_, err := s.GetNotification(t.Context(), appID, id)
	if got := herald.ErrorCode(err); got != herald.CodeNotFound {
		t.Errorf("notification %s: error code %q (%v), want %q", id, got, err, herald.CodeNotFound)
	}
}

func TestConcurrentWritersAreGroupCommitted(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	var o observer
	// The default options: no linger, so merging comes only from requests
	// piling up during a commit, as in production.
	w := startWriter(t, s, logwriter.Options{Observe: o.observe})

	const writers, perWriter = 64, 4
	start := make(chan struct{})
	errs := make([]error, writers*perWriter)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			<-start
			for i := range perWriter {
				k := g*perWriter + i
				nn := notification(fmt.Sprintf("n-%03d", k), now(), herald.StatusAccepted)
				errs[k] = w.Write(t.Context(), batchOf(nn))
			}
		})
	}
	close(start)
	wg.Wait()

	for k, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", k, err)
		}
	}
	for k := range writers * perWriter {
		wantStored(t, s, fmt.Sprintf("n-%03d", k), 1)
	}
	obs := o.all()
	requests := 0
	for _, ob := range obs {
		if ob.code != "" {
			t.Errorf("a commit of %d requests failed with %q", ob.requests, ob.code)
		}
		requests += ob.requests
	}
	if requests != writers*perWriter {
		t.Errorf("commits covered %d requests, want each of the %d exactly once", requests, writers*perWriter)
	}
	if len(obs) >= writers*perWriter {
		t.Errorf("%d commits for %d requests, want fewer commits than requests (group commit)", len(obs), writers*perWriter)
	}
	t.Logf("%d requests in %d commits", writers*perWriter, len(obs))
}

func TestConflictFailsOnlyItsOwnRequest(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	first := withKey(notification("first", now(), herald.StatusAccepted), "key-1")
	if err := s.Apply(t.Context(), batchOf(first)); err != nil {
		t.Fatalf("store the first use of the key: %v", err)
	}

	// MaxBatch equal to the number of requests and a long linger make the
	// writer merge all of them into one round.
	const n = 16
	var o observer
	w := startWriter(t, s, logwriter.Options{MaxBatch: n, Linger: time.Minute, Observe: o.observe})
	const dup = 7
	batches := make([]*herald.Batch, n)
	for i := range n {
		nn := notification(fmt.Sprintf("n-%02d", i), now(), herald.StatusAccepted, herald.StatusAccepted)
		if i == dup {
			nn = withKey(nn, "key-1")
		} else {
			nn = withKey(nn, fmt.Sprintf("other-key-%02d", i))
		}
		batches[i] = batchOf(nn)
	}
	errs := writeAll(t, w, batches)

	for i, err := range errs {
		id := fmt.Sprintf("n-%02d", i)
		if i == dup {
			if got := herald.ErrorCode(err); got != herald.CodeConflict {
				t.Errorf("write of the reused key: error code %q (%v), want %q", got, err, herald.CodeConflict)
			}
			wantNotStored(t, s, id)
			continue
		}
		if err != nil {
			t.Errorf("write %s: %v, want it committed despite the conflict merged with it", id, err)
		}
		wantStored(t, s, id, 2)
		k, err := s.GetIdempotency(t.Context(), appID, fmt.Sprintf("other-key-%02d", i))
		if err != nil || k.NotificationID != id {
			t.Errorf("idempotency key of %s = %+v, %v; want it stored for %s", id, k, err, id)
		}
	}
	k, err := s.GetIdempotency(t.Context(), appID, "key-1")
	if err != nil || k.NotificationID != "first" {
		t.Errorf("key-1 = %+v, %v; want it still pointing at the first notification", k, err)
	}

	// The proof that the conflicting request was merged with the others:
	// one failed round of all n, then each request alone.
	obs := o.all()
	want := []observation{{requests: n, code: herald.CodeConflict}, {requests: 1, code: herald.CodeConflict}}
	for range n - 1 {
		want = append(want, observation{requests: 1})
	}
	// The retries run in arrival order, which is not ours to choose:
	// compare them sorted, conflict first.
	slices.SortStableFunc(obs[min(1, len(obs)):], func(a, b observation) int {
		return cmp.Compare(b.code, a.code)
	})
	if diff := gocmp.Diff(want, obs, gocmp.AllowUnexported(observation{})); diff != "" {
		t.Errorf("commits (-want +got):\n%s", diff)
	}
}

func TestDatabaseFailureFailsTheWholeRound(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	const n = 4
	var o observer
	w := startWriter(t, s, logwriter.Options{MaxBatch: n, Linger: time.Minute, Observe: o.observe})
	if err := s.Close(); err != nil { // the cleanup closes it again, which is fine
		t.Fatalf("close store: %v", err)
	}
	batches := make([]*herald.Batch, n)
	for i := range n {
		batches[i] = batchOf(notification(fmt.Sprintf("n-%d", i), now(), herald.StatusAccepted))
	}
	for i, err := range writeAll(t, w, batches) {
		if got := herald.ErrorCode(err); got != herald.CodeUnavailable {
			t.Errorf("write %d to a closed database: error code %q (%v), want %q", i, got, err, herald.CodeUnavailable)
		}
	}
	// Not a conflict: no point retrying each request alone.
	if diff := gocmp.Diff([]observation{{requests: n, code: herald.CodeUnavailable}}, o.all(), gocmp.AllowUnexported(observation{})); diff != "" {
		t.Errorf("commits (-want +got):\n%s", diff)
	}
}

func intp(n int) *int { return &n }

func TestMergedTransitionsGetTheirOwnApplied(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	base := notification("base", now(), herald.StatusQueued, herald.StatusQueued, herald.StatusQueued,
		herald.StatusQueued, herald.StatusQueued)
	if err := s.Apply(t.Context(), batchOf(base)); err != nil {
		t.Fatalf("store the deliveries: %v", err)
	}
	at := now()
	move := func(delivery int, from herald.Status, ifAttempts *int) herald.Transition {
		return herald.Transition{AppID: appID, DeliveryID: fmt.Sprintf("base-d%d", delivery), From: []herald.Status{from},
			IfAttempts: ifAttempts, To: herald.StatusSending, Attempts: 1, Event: herald.Event{Status: herald.StatusSending, At: at}}
	}
	// Caller a's guards hold, fail, hold; caller b's fail, hold: a mix-up
	// of the merged batch's flags between or within callers shows.
	a := &herald.Batch{Transitions: []herald.Transition{
		move(0, herald.StatusQueued, nil),
		move(1, herald.StatusSending, nil),
		move(2, herald.StatusQueued, intp(0)),
	}}
	b := &herald.Batch{Transitions: []herald.Transition{
		move(3, herald.StatusQueued, intp(5)),
		move(4, herald.StatusQueued, nil),
	}}
	var o observer
	w := startWriter(t, s, logwriter.Options{MaxBatch: 2, Linger: time.Minute, Observe: o.observe})
	for i, err := range writeAll(t, w, []*herald.Batch{a, b}) {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}

	if diff := gocmp.Diff([]observation{{requests: 2}}, o.all(), gocmp.AllowUnexported(observation{})); diff != "" {
		t.Fatalf("commits (-want +got), want the two callers merged in one:\n%s", diff)
	}
	for _, tt := range []struct {
		caller  string
		t       herald.Transition
		applied bool
	}{
		{"a", a.Transitions[0], true},
		{"a", a.Transitions[1], false},
		{"a", a.Transitions[2], true},
		{"b", b.Transitions[0], false},
		{"b", b.Transitions[1], true},
	} {
		if tt.t.Applied != tt.applied {
			t.Errorf("caller %s, delivery %s: Applied = %v, want %v", tt.caller, tt.t.DeliveryID, tt.t.Applied, tt.applied)
		}
		d, err := s.GetDelivery(t.Context(), appID, tt.t.DeliveryID)
		if err != nil {
			t.Fatalf("get delivery %s: %v", tt.t.DeliveryID, err)
		}
		want := herald.StatusQueued
		if tt.applied {
			want = herald.StatusSending
		}
		if d.Status != want {
			t.Errorf("delivery %s status = %s, want %s", tt.t.DeliveryID, d.Status, want)
		}
	}
}

func TestStopFlushesQueuedWrites(t *testing.T) {
	// In a synctest bubble, synctest.Wait tells when every writer is
	// queued and the commit loop idles, lingering for more; and waiting a
	// minute of the bubble's fake time costs no real time.
	synctest.Test(t, func(t *testing.T) {
		s := openStore(t)
		w := logwriter.New(s, logwriter.Options{Linger: time.Hour})
		if err := w.Start(t.Context()); err != nil {
			t.Fatalf("start: %v", err)
		}
		// Cancelled on the way out, so that writers Stop failed to flush
		// return and the bubble can end.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				errs[i] = w.Write(ctx, batchOf(notification(fmt.Sprintf("n-%d", i), now(), herald.StatusAccepted)))
			})
		}
		synctest.Wait()

		// Well within the hour-long linger: Stop must not wait for it.
		sctx, scancel := context.WithTimeout(t.Context(), time.Minute)
		defer scancel()
		if err := w.Stop(sctx); err != nil {
			t.Fatalf("stop: %v", err)
		}
		written := make(chan struct{})
		go func() { wg.Wait(); close(written) }()
		select {
		case <-written:
		case <-time.After(time.Minute):
			t.Fatal("queued writes still wait a minute after Stop returned: Stop did not flush them")
		}
		for i, err := range errs {
			if err != nil {
				t.Errorf("queued write %d: %v, want it flushed by Stop", i, err)
			}
			wantStored(t, s, fmt.Sprintf("n-%d", i), 1)
		}

		err := w.Write(ctx, batchOf(notification("late", now(), herald.StatusAccepted)))
		if got := herald.ErrorCode(err); got != herald.CodeUnavailable {
			t.Errorf("write after stop: error code %q (%v), want %q", got, err, herald.CodeUnavailable)
		}
		wantNotStored(t, s, "late")
		if err := w.Stop(sctx); err != nil {
			t.Errorf("second stop: %v", err)
		}
	})
}

// recorder is a Publisher sink. When called it checks, in the store, that
// what it was handed is committed.
type recorder struct {
	store *sqlite.Store

	mu         sync.Mutex
	deliveries []string // ids
	events     []string // "delivery-id status"
	problems   []string
}

func (r *recorder) PublishDeliveries(ctx context.Context, ds []herald.Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range ds {
		r.deliveries = append(r.deliveries, d.ID)
		if _, err := r.store.GetDelivery(ctx, d.AppID, d.ID); err != nil {
			r.problems = append(r.problems, fmt.Sprintf("delivery %s published before it was committed: %v", d.ID, err))
		}
	}
	return nil
}

func (r *recorder) PublishEvents(ctx context.Context, evs []herald.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range evs {
		r.events = append(r.events, e.DeliveryID+" "+string(e.Status))
		// No delivery moves twice in these tests, so a committed event's
		// status is its delivery's status.
		d, err := r.store.GetDelivery(ctx, e.AppID, e.DeliveryID)
		if err != nil || d.Status != e.Status {
			r.problems = append(r.problems, fmt.Sprintf("event %s %s published before it was committed: delivery is %q, %v",
				e.DeliveryID, e.Status, d.Status, err))
		}
	}
	return nil
}

func (r *recorder) got() (deliveries, events, problems []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	deliveries, events = slices.Clone(r.deliveries), slices.Clone(r.events)
	slices.Sort(deliveries)
	slices.Sort(events)
	return deliveries, events, slices.Clone(r.problems)
}

func TestPublisherGetsWhatWasCommitted(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		conflict bool // one request of the round reuses an idempotency key
	}{
		{"one merged commit", false},
		{"merged round with a conflict", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t)
			base := withKey(notification("base", now(), herald.StatusQueued, herald.StatusQueued), "key-1")
			if err := s.Apply(t.Context(), batchOf(base)); err != nil {
				t.Fatalf("store the base notification: %v", err)
			}
			at := now()
			batches := []*herald.Batch{
				batchOf(notification("n1", at, herald.StatusAccepted, herald.StatusSuppressed)),
				batchOf(notification("n3", at, herald.StatusAccepted, herald.StatusAccepted)),
				{Transitions: []herald.Transition{
					// The events leave AppID and DeliveryID to the writer.
					{AppID: appID, DeliveryID: "base-d0", From: []herald.Status{herald.StatusQueued}, To: herald.StatusSending,
						Event: herald.Event{NotificationID: "base", Channel: herald.ChannelEmail, Status: herald.StatusSending, At: at}},
					{AppID: appID, DeliveryID: "base-d1", From: []herald.Status{herald.StatusSending}, To: herald.StatusSent,
						Event: herald.Event{NotificationID: "base", Channel: herald.ChannelEmail, Status: herald.StatusSent, At: at}},
				}},
			}
			if tt.conflict {
				batches = append(batches, batchOf(withKey(notification("n2", at, herald.StatusAccepted), "key-1")))
			}
			rec := &recorder{store: s}
			var o observer
			w := startWriter(t, s, logwriter.Options{MaxBatch: len(batches), Linger: time.Minute, Publisher: rec, Observe: o.observe})
			errs := writeAll(t, w, batches)
			for i, err := range errs {
				if tt.conflict && i == len(batches)-1 {
					if got := herald.ErrorCode(err); got != herald.CodeConflict {
						t.Errorf("write of the reused key: error code %q (%v), want %q", got, err, herald.CodeConflict)
					}
					continue
				}
				if err != nil {
					t.Errorf("write %d: %v", i, err)
				}
			}
			if obs := o.all(); len(obs) == 0 || obs[0].requests != len(batches) {
				t.Fatalf("commits = %+v, want a first round merging all %d requests", obs, len(batches))
			}
			// Stop waits for the publisher to drain.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := w.Stop(ctx); err != nil {
				t.Fatalf("stop: %v", err)
			}

			deliveries, events, problems := rec.got()
			for _, p := range problems {
				t.Error(p)
			}
			wantDeliveries := []string{"n1-d0", "n3-d0", "n3-d1"}
			if diff := gocmp.Diff(wantDeliveries, deliveries); diff != "" {
				t.Errorf("published deliveries (-want +got), want the accepted ones only:\n%s", diff)
			}
			wantEvents := []string{"base-d0 sending", "n1-d0 accepted", "n1-d1 suppressed", "n3-d0 accepted", "n3-d1 accepted"}
			if diff := gocmp.Diff(wantEvents, events); diff != "" {
				t.Errorf("published events (-want +got), want new notifications' and applied transitions' only:\n%s", diff)
			}
		})
	}
}

func TestWriteAfterStopIsErrStopped(t *testing.T) {
	t.Parallel()
	if got := herald.ErrorCode(logwriter.ErrStopped); got != herald.CodeUnavailable {
		t.Errorf("ErrorCode(ErrStopped) = %q, want %q", got, herald.CodeUnavailable)
	}
	s := openStore(t)
	w := startWriter(t, s, logwriter.Options{}) // its cleanup stops it a second time
	if err := w.Stop(t.Context()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := w.Write(t.Context(), batchOf(notification("late", now(), herald.StatusAccepted))); !errors.Is(err, logwriter.ErrStopped) {
		t.Errorf("write after stop = %v, want ErrStopped", err)
	}
	wantNotStored(t, s, "late")
}

// gate is an Applier that records when each commit started and how many
// notifications it carried, and holds the first commit until released.
type gate struct {
	mu      sync.Mutex
	commits []gateCommit
	hold    chan struct{}
}

type gateCommit struct {
	at time.Time
	n  int
}

func (g *gate) Apply(_ context.Context, b *herald.Batch) error {
	g.mu.Lock()
	g.commits = append(g.commits, gateCommit{at: time.Now(), n: len(b.Notifications)})
	first := len(g.commits) == 1
	g.mu.Unlock()
	if first {
		<-g.hold
	}
	return nil
}

func (g *gate) all() []gateCommit {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.commits)
}

// TestIntervalSpacesBusyCommits: once a commit merged several requests,
// the next starts no sooner than Interval after it, with what arrived
// meanwhile; a request that finds the writer idle is committed at once.
func TestIntervalSpacesBusyCommits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gate{hold: make(chan struct{})}
		const interval = 10 * time.Millisecond
		w := startWriter(t, g, logwriter.Options{Interval: interval})
		write := func(id string) chan error {
			done := make(chan error, 1)
			go func() { done <- w.Write(t.Context(), batchOf(notification(id, now(), herald.StatusAccepted))) }()
			return done
		}
		wait := func(dones ...chan error) {
			t.Helper()
			for _, d := range dones {
				if err := <-d; err != nil {
					t.Fatal(err)
				}
			}
		}
		start := time.Now()
		a := write("a") // idle: committed at once, and held there
		synctest.Wait()
		b, c := write("b"), write("c")
		synctest.Wait()
		close(g.hold)
		wait(a, b, c) // b and c merged: the writer is busy now

		time.Sleep(time.Millisecond)
		d := write("d")
		time.Sleep(2 * time.Millisecond)
		e := write("e")
		wait(d, e) // one commit, interval after b and c's

		time.Sleep(time.Second)
		wait(write("f")) // busy, but the interval has long passed: at once
		wait(write("g")) // f was alone: idle again, at once

		want := []gateCommit{{start, 1}, {start, 2}, {start.Add(interval), 2}, {start.Add(interval + time.Second), 1},
			{start.Add(interval + time.Second), 1}}
		if diff := gocmp.Diff(want, g.all(), gocmp.AllowUnexported(gateCommit{})); diff != "" {
			t.Errorf("commits (-want +got):\n%s", diff)
		}
	})
}

// TestPublisherGetsFallbackSteps: a fallback step written with a
// transition, in a merged commit, is queued (its accepted deliveries) and
// its events are published, like a new notification's.
func TestPublisherGetsFallbackSteps(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	at := now()
	base := notification("base", at, herald.StatusSending)
	if err := s.Apply(t.Context(), batchOf(base)); err != nil {
		t.Fatalf("store the base notification: %v", err)
	}
	step := &herald.FallbackStep{Channel: herald.ChannelEmail}
	for i, st := range []herald.Status{herald.StatusSuppressed, herald.StatusAccepted} {
		d := herald.Delivery{AppID: appID, ID: fmt.Sprintf("base-s%d", i), NotificationID: "base", Channel: herald.ChannelSMS,
			Priority: herald.PriorityNormal, Status: st, CreatedAt: at, UpdatedAt: at}
		step.Deliveries = append(step.Deliveries, d)
		step.Events = append(step.Events, herald.Event{AppID: appID, NotificationID: "base", DeliveryID: d.ID,
			Channel: d.Channel, Status: st, Detail: "fallback", At: at})
	}
	batches := []*herald.Batch{
		{Transitions: []herald.Transition{{AppID: appID, DeliveryID: "base-d0", From: []herald.Status{herald.StatusSending},
			To: herald.StatusFailed, Reason: herald.ReasonInvalidRecipient, Fallback: step,
			Event: herald.Event{NotificationID: "base", Channel: herald.ChannelEmail, Status: herald.StatusFailed, At: at}}}},
		batchOf(notification("n1", at, herald.StatusAccepted)),
	}
	rec := &recorder{store: s}
	var o observer
	w := startWriter(t, s, logwriter.Options{MaxBatch: len(batches), Linger: time.Minute, Publisher: rec, Observe: o.observe})
	for i, err := range writeAll(t, w, batches) {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if obs := o.all(); len(obs) == 0 || obs[0].requests != len(batches) {
		t.Fatalf("commits = %+v, want one round merging both requests", obs)
	}
	if !step.Added {
		t.Error("the step was not reported added")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	deliveries, events, problems := rec.got()
	for _, p := range problems {
		t.Error(p)
	}
	if diff := gocmp.Diff([]string{"base-s1", "n1-d0"}, deliveries); diff != "" {
		t.Errorf("published deliveries (-want +got), want the step's accepted one and the new one:\n%s", diff)
	}
	wantEvents := []string{"base-d0 failed", "base-s0 suppressed", "base-s1 accepted", "n1-d0 accepted"}
	if diff := gocmp.Diff(wantEvents, events); diff != "" {
		t.Errorf("published events (-want +got):\n%s", diff)
	}
}

// sequence is a Publisher sink that keeps the events in the order it was handed them.
type sequence struct {
	mu     sync.Mutex
	events []herald.Event
}

func (*sequence) PublishDeliveries(context.Context, []herald.Delivery) error { return nil }

func (q *sequence) PublishEvents(_ context.Context, evs []herald.Event) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.events = append(q.events, evs...)
	return nil
}

// TestPublisherGetsTransitionSteps: the steps of an applied transition are
// published before its event, as the log orders them, with the app and
// delivery the writer fills in; those of a transition that did not apply
// are not published.
func TestPublisherGetsTransitionSteps(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	base := notification("base", now(), herald.StatusAccepted, herald.StatusAccepted)
	if err := s.Apply(t.Context(), batchOf(base)); err != nil {
		t.Fatalf("store the base notification: %v", err)
	}
	queuedAt, sendingAt := now().Add(-time.Second), now()
	claim := func(id string, ifAttempts int) herald.Transition {
		return herald.Transition{AppID: appID, DeliveryID: id, From: []herald.Status{herald.StatusAccepted},
			IfAttempts: &ifAttempts, To: herald.StatusSending, Attempts: ifAttempts + 1,
			Steps: []herald.Event{{NotificationID: "base", Channel: herald.ChannelEmail, Status: herald.StatusQueued, At: queuedAt}},
			Event: herald.Event{NotificationID: "base", Channel: herald.ChannelEmail, Status: herald.StatusSending,
				Attempt: ifAttempts + 1, At: sendingAt}}
	}
	batches := []*herald.Batch{
		{Transitions: []herald.Transition{claim("base-d0", 0)}},
		{Transitions: []herald.Transition{claim("base-d1", 3)}}, // stale: does not apply
		batchOf(notification("n1", sendingAt, herald.StatusAccepted)),
	}
	seq := &sequence{}
	var o observer
	w := startWriter(t, s, logwriter.Options{MaxBatch: len(batches), Linger: time.Minute, Publisher: seq, Observe: o.observe})
	for i, err := range writeAll(t, w, batches) {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if obs := o.all(); len(obs) == 0 || obs[0].requests != len(batches) {
		t.Fatalf("commits = %+v, want one round merging all %d requests", obs, len(batches))
	}
	if got := []bool{batches[0].Transitions[0].Applied, batches[1].Transitions[0].Applied}; !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("applied = %v, want the fresh claim only", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	var got []herald.Event
	for _, e := range seq.events {
		if e.NotificationID == "base" {
			got = append(got, e)
		}
	}
	step := herald.Event{AppID: appID, NotificationID: "base", DeliveryID: "base-d0", Channel: herald.ChannelEmail}
	queued, sending := step, step
	queued.Status, queued.At = herald.StatusQueued, queuedAt
	sending.Status, sending.Attempt, sending.At = herald.StatusSending, 1, sendingAt
	if diff := gocmp.Diff([]herald.Event{queued, sending}, got); diff != "" {
		t.Errorf("published events of the claims (-want +got):\n%s", diff)
	}
	stored, err := s.ListEvents(t.Context(), appID, "base")
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	if diff := gocmp.Diff([]herald.Event{base.Events[0], base.Events[1], queued, sending}, stored); diff != "" {
		t.Errorf("stored timeline (-want +got):\n%s", diff)
	}
	if n := len(seq.events); n != 3 {
		t.Errorf("published %d events, want the claim's two and n1's one", n)
	}
}
