package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/accept"
	"github.com/heraldhq/herald/internal/fanout"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

const appID = "app-1"

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

// sink records what a runner queues.
type sink struct {
	mu         sync.Mutex
	deliveries []herald.Delivery
	events     int
}

func (s *sink) PublishDeliveries(_ context.Context, ds []herald.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries = append(s.deliveries, ds...)
	return nil
}

func (s *sink) PublishEvents(_ context.Context, evs []herald.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events += len(evs)
	return nil
}

func (s *sink) users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, d := range s.deliveries {
		out = append(out, d.UserID)
	}
	return out
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

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

// seed creates n users with email addresses subscribed to "news" (one
// more, "zz-opted-out", has email turned off) and a notification to the
// topic, and returns the notification's id.
func seed(t *testing.T, s *sqlite.Store, n int, at time.Time) string {
	t.Helper()
	ctx := t.Context()
	if err := s.CreateApp(ctx, herald.App{ID: appID, Name: "a", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("u%02d", i))
	}
	ids = append(ids, "zz-opted-out")
	for _, id := range ids {
		if _, _, err := s.PutUser(ctx, herald.User{AppID: appID, ID: id, Email: id + "@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutPreferences(ctx, appID, "zz-opted-out", herald.Preferences{Channels: map[herald.Channel]bool{herald.ChannelEmail: false}}); err != nil {
		t.Fatal(err)
	}
	if missing, err := s.UpdateSubscribers(ctx, appID, "news", ids, nil, at); err != nil || len(missing) > 0 {
		t.Fatalf("subscribe: %v (missing %v)", err, missing)
	}
	nid := uuid.Must(uuid.NewV7()).String()
	nn := herald.NewNotification{
		Notification: herald.Notification{AppID: appID, ID: nid, Category: "news", Priority: herald.PriorityNormal,
			Content: herald.Content{Subject: "News", Body: "today"}, CreatedAt: at},
		Fanout: &herald.Fanout{Topic: "news", Channels: []herald.Channel{herald.ChannelEmail}},
	}
	if err := s.Apply(ctx, &herald.Batch{Notifications: []herald.NewNotification{nn}}); err != nil {
		t.Fatal(err)
	}
	return nid
}

func newRunner(t *testing.T, s *sqlite.Store, pub fanout.Publisher, o fanout.Options) *fanout.Runner {
	t.Helper()
	o.PageSize = 3
	r := fanout.New(s, accept.New(s, nil, accept.Options{Now: o.Now}), pub, o)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("stop runner %s: %v", o.Holder, err)
		}
	})
	return r
}

// perUser counts the notification's deliveries in the log by user, and
// their statuses.
func perUser(t *testing.T, s *sqlite.Store, nid string) (map[string]int, map[herald.Status]int) {
	t.Helper()
	ds, err := s.ListDeliveries(t.Context(), appID, nid)
	if err != nil {
		t.Fatal(err)
	}
	users, statuses := map[string]int{}, map[herald.Status]int{}
	for _, d := range ds {
		users[d.UserID]++
		statuses[d.Status]++
	}
	return users, statuses
}

func TestPassWritesEverySubscriberOnceAndCompletes(t *testing.T) {
	s := openStore(t)
	clk := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	nid := seed(t, s, 7, clk.Now())
	pub := &sink{}
	r := newRunner(t, s, pub, fanout.Options{Holder: "a", Now: clk.Now})

	pages, err := r.Pass(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// 8 subscribers in pages of 3: 3, 3, 2 (short: the last).
	if pages != 3 {
		t.Errorf("pages = %d, want 3", pages)
	}
	users, statuses := perUser(t, s, nid)
	if len(users) != 8 {
		t.Errorf("users with deliveries = %d, want 8", len(users))
	}
	for u, n := range users {
		if n != 1 {
			t.Errorf("%s has %d deliveries", u, n)
		}
	}
	// The opted-out subscriber's delivery is suppressed in the log, not queued.
	if statuses[herald.StatusAccepted] != 7 || statuses[herald.StatusSuppressed] != 1 {
		t.Errorf("statuses = %v, want 7 accepted and 1 suppressed", statuses)
	}
	queued := pub.users()
	if len(queued) != 7 || !slices.IsSorted(queued) || slices.Contains(queued, "zz-opted-out") {
		t.Errorf("queued %v, want u00…u06 in order", queued)
	}
	if pub.events != 8 {
		t.Errorf("events published = %d, want 8", pub.events)
	}
	f, err := s.GetFanout(t.Context(), appID, nid)
	if err != nil {
		t.Fatal(err)
	}
	if f.Status != herald.FanoutCompleted || f.Recipients != 8 || f.Cursor != "zz-opted-out" {
		t.Errorf("fan-out = %+v, want completed with 8 recipients", f)
	}
	if pages, err := r.Pass(t.Context()); err != nil || pages != 0 {
		t.Errorf("a pass after completion: %d pages, %v; want nothing", pages, err)
	}
}

// TestAnotherRunnerResumesAfterACrash: a runner dies right after its first
// commit, holding the lease; once the lease expires another takes over
// from the cursor, and no subscriber has two deliveries.
func TestAnotherRunnerResumesAfterACrash(t *testing.T) {
	s := openStore(t)
	clk := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	nid := seed(t, s, 7, clk.Now())
	crashing := &sink{}
	first := newRunner(t, s, crashing, fanout.Options{Holder: "first", Now: clk.Now,
		AfterCommit: func(*herald.FanoutPage) error { return errors.New("crash") }})
	if _, err := first.Pass(t.Context()); err == nil {
		t.Fatal("the crashing pass reported no error")
	}
	if got := crashing.users(); len(got) != 0 {
		t.Fatalf("the crashed runner queued %v", got)
	}

	pub := &sink{}
	second := newRunner(t, s, pub, fanout.Options{Holder: "second", Now: clk.Now})
	if pages, err := second.Pass(t.Context()); err != nil || pages != 0 {
		t.Fatalf("while the first holds the lease: %d pages, %v; want nothing", pages, err)
	}
	clk.Advance(31 * time.Second)
	if _, err := second.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	users, _ := perUser(t, s, nid)
	if len(users) != 8 {
		t.Errorf("users with deliveries = %d, want 8", len(users))
	}
	for u, n := range users {
		if n != 1 {
			t.Errorf("%s has %d deliveries", u, n)
		}
	}
	// The first page's deliveries are in the log, left to the reconciler to queue.
	if got := pub.users(); !slices.Equal(got, []string{"u03", "u04", "u05", "u06"}) {
		t.Errorf("the second runner queued %v, want u03…u06", got)
	}
}
