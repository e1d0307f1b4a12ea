package deliver_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/deliver"
	"github.com/heraldhq/herald/internal/logwriter"
	"github.com/heraldhq/herald/internal/provider/providertest"
	"github.com/heraldhq/herald/internal/provider/smtp"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

// fixture is a worker over the real SQLite store and group-commit writer,
// sending through the real SMTP provider to a real SMTP server.
type fixture struct {
	store    *sqlite.Store
	writer   *logwriter.Writer
	provider herald.Provider
	worker   *deliver.Worker
	smtpd    *providertest.SMTPServer
	appID    string
	now      time.Time
}

// oneProvider serves every delivery with the same provider.
type oneProvider struct{ p herald.Provider }

func (o oneProvider) For(context.Context, string, herald.Channel, herald.Platform) (herald.Provider, error) {
	return o.p, nil
}

func newFixture(t *testing.T, o deliver.Options, smtpOpts ...providertest.SMTPOption) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	w := logwriter.New(st, logwriter.Options{})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(ctx) })
	smtpd := providertest.NewSMTPServer(t, smtpOpts...)
	settings, _ := json.Marshal(map[string]string{"endpoint": smtpd.Addr(), "from": "shop@example.com", "tls": "none"})
	p, err := smtp.New(settings, herald.ProviderEnv{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, writer: w, provider: p, smtpd: smtpd, appID: "app-1", now: time.Now().UTC().Truncate(time.Microsecond)}
	if o.Now == nil {
		o.Now = func() time.Time { return f.now }
	}
	f.worker = deliver.New(st, w, oneProvider{p}, o)
	return f
}

// accepted writes a notification with one email delivery in status accepted.
func (f *fixture) accepted(t *testing.T) herald.Delivery {
	t.Helper()
	nid := uuid.Must(uuid.NewV7()).String()
	d := herald.Delivery{AppID: f.appID, ID: uuid.Must(uuid.NewV7()).String(), NotificationID: nid,
		Channel: herald.ChannelEmail, Priority: herald.PriorityNormal, Address: "ada@example.com",
		Status: herald.StatusAccepted, CreatedAt: f.now, UpdatedAt: f.now, NextAttemptAt: f.now}
	err := f.store.Apply(context.Background(), &herald.Batch{Notifications: []herald.NewNotification{{
		Notification: herald.Notification{AppID: f.appID, ID: nid, Category: "transactional", Priority: herald.PriorityNormal,
			Content: herald.Content{Subject: "Hi", Body: "hello"}, CreatedAt: f.now},
		Deliveries: []herald.Delivery{d},
		Events:     []herald.Event{{AppID: f.appID, NotificationID: nid, DeliveryID: d.ID, Channel: d.Channel, Status: herald.StatusAccepted, At: f.now}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) get(t *testing.T, id string) herald.Delivery {
	t.Helper()
	d, err := f.store.GetDelivery(context.Background(), f.appID, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSentOnceThenAcked(t *testing.T) {
	f := newFixture(t, deliver.Options{})
	d := f.accepted(t)
	if v := f.worker.Handle(context.Background(), f.appID, d.ID, f.now); v.Action != deliver.Ack {
		t.Fatalf("verdict = %+v, want ack", v)
	}
	got := f.get(t, d.ID)
	if got.Status != herald.StatusSent || got.Attempts != 1 || got.Provider != "smtp" || got.ProviderMessageID == "" {
		t.Fatalf("delivery = %+v", got)
	}
	// A redelivered copy of the message finds it sent and sends nothing.
	if v := f.worker.Handle(context.Background(), f.appID, d.ID, f.now); v.Action != deliver.Ack {
		t.Fatalf("second verdict = %+v, want ack", v)
	}
	if n := len(f.smtpd.Messages()); n != 1 {
		t.Fatalf("SMTP server got %d messages, want 1", n)
	}
	evs, _ := f.store.ListEvents(context.Background(), f.appID, d.NotificationID)
	var steps []herald.Status
	for _, e := range evs {
		steps = append(steps, e.Status)
	}
	want := []herald.Status{herald.StatusAccepted, herald.StatusQueued, herald.StatusSending, herald.StatusSent}
	if len(steps) != len(want) {
		t.Fatalf("timeline = %v, want %v", steps, want)
	}
	for i := range want {
		if steps[i] != want[i] {
			t.Fatalf("timeline = %v, want %v", steps, want)
		}
	}
}

// The claim of a fresh delivery records queued, dated when the queue took
// the message, then sending; the claim of a retry, already queued,
// records only sending.
func TestClaimsTimeline(t *testing.T) {
	f := newFixture(t, deliver.Options{Schedules: emailSchedule(2, time.Millisecond)}, providertest.FailData(451, "try later"))
	d := f.accepted(t)
	t0 := f.now
	f.now = t0.Add(2 * time.Second)
	f.worker.Handle(context.Background(), f.appID, d.ID, t0.Add(time.Second))
	f.now = t0.Add(3 * time.Second)
	f.worker.Handle(context.Background(), f.appID, d.ID, t0.Add(2500*time.Millisecond))
	evs, err := f.store.ListEvents(context.Background(), f.appID, d.NotificationID)
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		Status  herald.Status
		Attempt int
		At      time.Duration // since accepted
	}
	var got []step
	for _, e := range evs {
		got = append(got, step{e.Status, e.Attempt, e.At.Sub(t0)})
	}
	want := []step{
		{herald.StatusAccepted, 0, 0},
		{herald.StatusQueued, 0, time.Second},
		{herald.StatusSending, 1, 2 * time.Second},
		{herald.StatusQueued, 1, 2 * time.Second}, // the retry
		{herald.StatusSending, 2, 3 * time.Second},
		{herald.StatusDead, 2, 3 * time.Second},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
}

func TestUnknownDeliveryIsDropped(t *testing.T) {
	f := newFixture(t, deliver.Options{})
	if v := f.worker.Handle(context.Background(), f.appID, "no-such-delivery", f.now); v.Action != deliver.Drop {
		t.Fatalf("verdict = %+v, want drop", v)
	}
}

// A delivery another worker is sending right now is left alone until its claim runs out.
func TestClaimedDeliveryIsHeld(t *testing.T) {
	f := newFixture(t, deliver.Options{SendTimeout: 5 * time.Second})
	d := f.accepted(t)
	zero := 0
	claim := &herald.Batch{Transitions: []herald.Transition{{AppID: f.appID, DeliveryID: d.ID, IfAttempts: &zero,
		To: herald.StatusSending, Attempts: 1, DueAt: f.now.Add(15 * time.Second),
		Event: herald.Event{Status: herald.StatusSending, Attempt: 1, At: f.now}}}}
	if err := f.store.Apply(context.Background(), claim); err != nil || !claim.Transitions[0].Applied {
		t.Fatalf("claim: %v", err)
	}
	v := f.worker.Handle(context.Background(), f.appID, d.ID, f.now)
	if v.Action != deliver.Retry || v.Delay < 15*time.Second {
		t.Fatalf("verdict = %+v, want a retry after the claim's 15s", v)
	}
	if len(f.smtpd.Messages()) != 0 {
		t.Fatal("a held delivery was sent")
	}
	// Once the claim has run out (the worker died), the next look takes over, flagged.
	f.now = f.now.Add(16 * time.Second)
	if v := f.worker.Handle(context.Background(), f.appID, d.ID, f.now); v.Action != deliver.Ack {
		t.Fatalf("verdict after the claim = %+v, want ack", v)
	}
	got := f.get(t, d.ID)
	if got.Status != herald.StatusSent || got.Attempts != 2 {
		t.Fatalf("delivery = %+v, want sent on attempt 2", got)
	}
	evs, _ := f.store.ListEvents(context.Background(), f.appID, d.NotificationID)
	flagged := false
	for _, e := range evs {
		flagged = flagged || (e.Status == herald.StatusSending && e.Attempt == 2 && len(e.Detail) > 0)
	}
	if !flagged {
		t.Errorf("the take-over attempt is not flagged possible_duplicate: %+v", evs)
	}
}

// A short retry waits in the queue; a long one is kept in the log and the
// message acknowledged, so it never holds up the channel's consumer.
func TestRetriesShortInQueueLongInLog(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backoff time.Duration
		want    deliver.Action
	}{
		{"short", time.Second, deliver.Retry},
		{"long", time.Hour, deliver.Ack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, deliver.Options{Schedules: emailSchedule(8, tc.backoff), Jitter: func(n int64) int64 { return n - 1 }},
				providertest.FailData(451, "try later"))
			d := f.accepted(t)
			v := f.worker.Handle(context.Background(), f.appID, d.ID, f.now)
			if v.Action != tc.want {
				t.Fatalf("verdict = %+v, want action %d", v, tc.want)
			}
			got := f.get(t, d.ID)
			if got.Status != herald.StatusQueued || got.Attempts != 1 {
				t.Fatalf("delivery = %+v, want queued after attempt 1", got)
			}
			if wantDue := f.now.Add(tc.backoff); got.NextAttemptAt.Before(wantDue.Add(-time.Second)) {
				t.Errorf("next attempt at %s, want about %s", got.NextAttemptAt, wantDue)
			}
		})
	}
}

func TestLastAttemptIsDead(t *testing.T) {
	f := newFixture(t, deliver.Options{Schedules: emailSchedule(2, time.Millisecond)}, providertest.FailData(451, "try later"))
	d := f.accepted(t)
	f.worker.Handle(context.Background(), f.appID, d.ID, f.now)
	f.now = f.now.Add(time.Second)
	if v := f.worker.Handle(context.Background(), f.appID, d.ID, f.now); v.Action != deliver.Ack {
		t.Fatalf("verdict = %+v, want ack", v)
	}
	got := f.get(t, d.ID)
	if got.Status != herald.StatusDead || got.Reason != herald.ReasonRetriesExhausted || got.Attempts != 2 {
		t.Fatalf("delivery = %+v, want dead after 2 attempts", got)
	}
}

func emailSchedule(attempts int, base time.Duration) map[herald.Channel]deliver.Schedule {
	return map[herald.Channel]deliver.Schedule{herald.ChannelEmail: {Attempts: attempts, Base: base, Cap: time.Hour}}
}

// A provider call that runs out of time may have reached the provider: the
// retry says so, and so does the next attempt's "sending" event.
func TestTimedOutAttemptIsFlaggedPossibleDuplicate(t *testing.T) {
	f := newFixture(t, deliver.Options{SendTimeout: 200 * time.Millisecond, Schedules: emailSchedule(3, time.Millisecond)},
		providertest.DataDelay(time.Second))
	d := f.accepted(t)
	if v := f.worker.Handle(context.Background(), f.appID, d.ID, f.now); v.Action != deliver.Retry {
		t.Fatalf("verdict = %+v, want a retry", v)
	}
	if got := f.get(t, d.ID); got.Status != herald.StatusQueued || got.Reason != herald.ReasonPossibleDuplicate {
		t.Fatalf("delivery = %+v, want queued with reason possible_duplicate", got)
	}
	f.now = f.now.Add(time.Second)
	f.worker.Handle(context.Background(), f.appID, d.ID, f.now)
	evs, err := f.store.ListEvents(context.Background(), f.appID, d.NotificationID)
	if err != nil {
		t.Fatal(err)
	}
	var retry, next bool
	for _, e := range evs {
		flagged := strings.HasPrefix(e.Detail, deliver.PossibleDuplicate)
		retry = retry || e.Status == herald.StatusQueued && e.Attempt == 1 && flagged
		next = next || e.Status == herald.StatusSending && e.Attempt == 2 && flagged
	}
	if !retry || !next {
		t.Errorf("timeline %+v: flagged retry %v, flagged next attempt %v; want both", evs, retry, next)
	}
}

// A delivery replayed from the dead letters gets a fresh budget of attempts.
func TestReplayedDeliveryGetsAFreshBudget(t *testing.T) {
	f := newFixture(t, deliver.Options{Schedules: emailSchedule(2, time.Millisecond)}, providertest.FailData(451, "try later"))
	d := f.accepted(t)
	for range 2 {
		f.worker.Handle(context.Background(), f.appID, d.ID, f.now)
		f.now = f.now.Add(time.Second)
	}
	if got := f.get(t, d.ID); got.Status != herald.StatusDead || got.Attempts != 2 {
		t.Fatalf("delivery = %+v, want dead after 2 attempts", got)
	}
	two := 2
	replay := &herald.Batch{Transitions: []herald.Transition{{AppID: f.appID, DeliveryID: d.ID,
		From: []herald.Status{herald.StatusDead}, IfAttempts: &two, To: herald.StatusAccepted, Reason: herald.ReasonReplayed,
		Event: herald.Event{Status: herald.StatusAccepted, Reason: herald.ReasonReplayed, Attempt: 2, At: f.now}}}}
	if err := f.store.Apply(context.Background(), replay); err != nil || !replay.Transitions[0].Applied {
		t.Fatalf("replay: %v", err)
	}
	f.worker.Handle(context.Background(), f.appID, d.ID, f.now)
	if got := f.get(t, d.ID); got.Status != herald.StatusQueued || got.Attempts != 3 {
		t.Fatalf("after the replay's first attempt: %+v, want queued for a retry", got)
	}
	f.now = f.now.Add(time.Second)
	f.worker.Handle(context.Background(), f.appID, d.ID, f.now)
	if got := f.get(t, d.ID); got.Status != herald.StatusDead || got.Attempts != 4 {
		t.Fatalf("after the replay's budget: %+v, want dead after attempt 4", got)
	}
}

// The default schedules keep push and SMS trying about 6 hours on
// average (as Amazon SNS does), and email longer.
func TestDefaultScheduleHorizons(t *testing.T) {
	s := deliver.DefaultSchedules()
	for _, tc := range []struct {
		c            herald.Channel
		minMean, max time.Duration
	}{
		{herald.ChannelPush, 5 * time.Hour, 13 * time.Hour},
		{herald.ChannelSMS, 5 * time.Hour, 13 * time.Hour},
		{herald.ChannelEmail, 20 * time.Hour, 48 * time.Hour},
	} {
		mean, longest := s[tc.c].Horizon()
		if mean < tc.minMean || longest > tc.max {
			t.Errorf("%s: %d attempts, mean horizon %s, longest %s; want a mean of at least %s and at most %s",
				tc.c, s[tc.c].Attempts, mean, longest, tc.minMean, tc.max)
		}
	}
}
