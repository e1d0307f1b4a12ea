package queue_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/natsembed"
	"github.com/heraldhq/herald/internal/queue"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The suite runs against an embedded server and, when HERALD_TEST_NATS_URL
// is set, against an external one: the queue must not tell them apart.

func TestEmbedded(t *testing.T) {
	t.Parallel()
	srv := startEmbedded(t, t.TempDir())
	nc := connectEmbedded(t, srv)
	runSuite(t, nc)
}

func TestExternal(t *testing.T) {
	t.Parallel()
	url := heraldtest.ServiceURL(t, heraldtest.EnvNATS)
	nc, err := nats.Connect(url, nats.Name("herald queue test"))
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	runSuite(t, nc)
}

func runSuite(t *testing.T, nc *nats.Conn) {
	tests := []struct {
		name string
		run  func(*testing.T, *nats.Conn)
	}{
		{"OpenIsIdempotent", testOpenIsIdempotent},
		{"PublishConsumePerChannelAndPriority", testPublishConsumePerChannelAndPriority},
		{"DuplicateMsgIDStoredOnce", testDuplicateMsgIDStoredOnce},
		{"NakWithDelayRedelivers", testNakWithDelayRedelivers},
		{"SlowHandlerKeepsItsJob", testSlowHandlerKeepsItsJob},
		{"TermRemoves", testTermRemoves},
		{"AckRemoves", testAckRemoves},
		{"StopWaitsForInFlight", testStopWaitsForInFlight},
		{"StopGivesUpWithContext", testStopGivesUpWithContext},
		{"ConcurrencyBound", testConcurrencyBound},
		{"PublishMany", testPublishMany},
		{"PublishRejectsBadJobs", testPublishRejectsBadJobs},
		{"Events", testEvents},
		{"EventHandlerErrorRedelivers", testEventHandlerErrorRedelivers},
		{"EventsInBatches", testEventsInBatches},
		{"ManyEventsRoundTrip", testManyEventsRoundTrip},
		{"EventsOfOldFormatRead", testEventsOfOldFormatRead},
		{"EventMessagesGathered", testEventMessagesGathered},
		{"MalformedEventMessagesTerminated", testMalformedEventMessagesTerminated},
		{"PublishEventsNamesFailures", testPublishEventsNamesFailures},
		{"MalformedMessageTerminated", testMalformedMessageTerminated},
		{"DepthAndPing", testDepthAndPing},
		{"FullQueueRefusesNew", testFullQueueRefusesNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, nc)
		})
	}
}

func testOpenIsIdempotent(t *testing.T, nc *nats.Conn) {
	ns := namespace()
	q := openQueue(t, nc, queue.Options{Namespace: ns})
	// Several processes start at once.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() {
			_, err := queue.Open(t.Context(), nc, queue.Options{Namespace: ns, Logger: testLogger(t)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	if _, err := queue.Open(t.Context(), nc, queue.Options{Namespace: ns, Logger: testLogger(t)}); err != nil {
		t.Fatalf("second Open: %v", err)
	}

	notify, events := q.StreamNames()
	if want := ns + "_NOTIFY"; notify != want {
		t.Errorf("notify stream = %q, want %q", notify, want)
	}
	if want := ns + "_EVENTS"; events != want {
		t.Errorf("events stream = %q, want %q", events, want)
	}
	js := jetStream(t, nc)
	s, err := js.Stream(t.Context(), notify)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Retention != jetstream.WorkQueuePolicy || cfg.Storage != jetstream.FileStorage {
		t.Errorf("notify stream: retention %v storage %v, want work queue on file", cfg.Retention, cfg.Storage)
	}
	if want := []string{ns + ".notify.>"}; !reflect.DeepEqual(cfg.Subjects, want) {
		t.Errorf("notify subjects = %v, want %v", cfg.Subjects, want)
	}
	var names []string
	for name := range s.ConsumerNames(t.Context()).Name() {
		names = append(names, name)
	}
	if len(names) != 6 {
		t.Errorf("notify consumers = %v, want one per channel and priority", names)
	}
	c, err := s.Consumer(t.Context(), "email_high")
	if err != nil {
		t.Fatal(err)
	}
	cc := c.CachedInfo().Config
	if cc.MaxDeliver != -1 || cc.AckPolicy != jetstream.AckExplicitPolicy || cc.AckWait != queue.DefaultAckWait || cc.FilterSubject != ns+".notify.email.high" {
		t.Errorf("consumer config = max deliver %d, ack %v, wait %v, filter %q", cc.MaxDeliver, cc.AckPolicy, cc.AckWait, cc.FilterSubject)
	}
	e, err := js.Stream(t.Context(), events)
	if err != nil {
		t.Fatal(err)
	}
	if ec := e.CachedInfo().Config; ec.Retention != jetstream.LimitsPolicy || ec.MaxAge != queue.DefaultEventsMaxAge {
		t.Errorf("events stream: retention %v max age %v", ec.Retention, ec.MaxAge)
	}
}

func testPublishConsumePerChannelAndPriority(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	var jobs []queue.Job
	for _, ch := range herald.AllChannels() {
		for _, p := range []herald.Priority{herald.PriorityNormal, herald.PriorityHigh} {
			jobs = append(jobs, queue.Job{AppID: "app1", NotificationID: "n1", DeliveryID: fmt.Sprintf("d-%s-%s", ch, p), Channel: ch, Priority: p})
		}
	}
	if err := q.Publish(t.Context(), jobs); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string][]queue.Job{} // by consumer
	for _, ch := range herald.AllChannels() {
		for _, p := range []herald.Priority{herald.PriorityNormal, herald.PriorityHigh} {
			key := string(ch) + "." + string(p)
			consume(t, q, ch, p, 2, func(ctx context.Context, d *queue.Delivery) {
				mu.Lock()
				got[key] = append(got[key], d.Job)
				mu.Unlock()
				if err := d.Ack(ctx); err != nil {
					t.Errorf("ack: %v", err)
				}
			})
		}
	}
	waitFor(t, "every job handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, js := range got {
			n += len(js)
		}
		return n == len(jobs)
	})
	waitStreamEmpty(t, nc, q)
	mu.Lock()
	defer mu.Unlock()
	for _, j := range jobs {
		key := string(j.Channel) + "." + string(j.Priority)
		want := j
		want.MsgID = j.DeliveryID
		if len(got[key]) != 1 || got[key][0] != want {
			t.Errorf("consumer %s got %+v, want only %+v", key, got[key], want)
		}
	}
}

func testDuplicateMsgIDStoredOnce(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	j := job("d1", herald.ChannelSMS, herald.PriorityNormal)
	for range 2 {
		if err := q.Publish(t.Context(), []queue.Job{j, j}); err != nil {
			t.Fatal(err)
		}
	}
	if n := streamMsgs(t, nc, q); n != 1 {
		t.Fatalf("stream holds %d messages after publishing one delivery four times, want 1", n)
	}
	// A retry published under its own message id is a new message.
	retry := j
	retry.MsgID = "d1/2"
	if err := q.Publish(t.Context(), []queue.Job{retry, retry}); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, nc, q); n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
}

func testNakWithDelayRedelivers(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	if err := q.Publish(t.Context(), []queue.Job{job("d1", herald.ChannelPush, herald.PriorityHigh)}); err != nil {
		t.Fatal(err)
	}
	var seen []uint64
	var mu sync.Mutex
	consume(t, q, herald.ChannelPush, herald.PriorityHigh, 1, func(ctx context.Context, d *queue.Delivery) {
		mu.Lock()
		seen = append(seen, d.NumDelivered)
		first := len(seen) == 1
		mu.Unlock()
		var err error
		if first {
			err = d.NakWithDelay(50 * time.Millisecond)
		} else {
			err = d.Ack(ctx)
		}
		if err != nil {
			t.Errorf("ending delivery %d: %v", d.NumDelivered, err)
		}
	})
	waitStreamEmpty(t, nc, q)
	mu.Lock()
	defer mu.Unlock()
	if want := []uint64{1, 2}; !reflect.DeepEqual(seen, want) {
		t.Errorf("NumDelivered seen = %v, want %v", seen, want)
	}
}

// testSlowHandlerKeepsItsJob: a handler running several times the ack wait
// keeps its job (progress acks), so a second free handler never gets it.
func testSlowHandlerKeepsItsJob(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{AckWait: time.Second})
	if err := q.Publish(t.Context(), []queue.Job{job("d1", herald.ChannelSMS, herald.PriorityNormal)}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []uint64
	consume(t, q, herald.ChannelSMS, herald.PriorityNormal, 2, func(ctx context.Context, d *queue.Delivery) {
		mu.Lock()
		seen = append(seen, d.NumDelivered)
		mu.Unlock()
		time.Sleep(4 * time.Second) // four ack waits of work
		if err := d.Ack(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
	})
	waitStreamEmpty(t, nc, q)
	mu.Lock()
	defer mu.Unlock()
	if want := []uint64{1}; !reflect.DeepEqual(seen, want) {
		t.Errorf("NumDelivered seen = %v, want %v: the job went to a second handler while the first was working", seen, want)
	}
}

func testTermRemoves(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	if err := q.Publish(t.Context(), []queue.Job{job("d1", herald.ChannelEmail, herald.PriorityNormal)}); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	consume(t, q, herald.ChannelEmail, herald.PriorityNormal, 1, func(ctx context.Context, d *queue.Delivery) {
		calls.Add(1)
		if err := d.InProgress(); err != nil {
			t.Errorf("in progress: %v", err)
		}
		if err := d.Term(); err != nil {
			t.Errorf("term: %v", err)
		}
	})
	waitStreamEmpty(t, nc, q)
	waitAckPending(t, nc, q, "email_normal", 0)
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
}

func testAckRemoves(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	jobs := []queue.Job{job("d1", herald.ChannelSMS, herald.PriorityHigh), job("d2", herald.ChannelSMS, herald.PriorityHigh)}
	if err := q.Publish(t.Context(), jobs); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, nc, q); n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
	var acked atomic.Int32
	consume(t, q, herald.ChannelSMS, herald.PriorityHigh, 4, func(ctx context.Context, d *queue.Delivery) {
		if err := d.Ack(ctx); err != nil {
			t.Errorf("ack: %v", err)
			return
		}
		acked.Add(1)
	})
	waitFor(t, "both acked", func() bool { return acked.Load() == 2 })
	// Ack is a double ack: once it returned, the server has removed the message.
	if n := streamMsgs(t, nc, q); n != 0 {
		t.Errorf("stream holds %d messages after both were acked, want 0", n)
	}
}

func testStopWaitsForInFlight(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	if err := q.Publish(t.Context(), []queue.Job{job("d1", herald.ChannelEmail, herald.PriorityHigh)}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	var finished, calls atomic.Int32
	c, err := q.ConsumeJobs(t.Context(), herald.ChannelEmail, herald.PriorityHigh, 2, func(ctx context.Context, d *queue.Delivery) {
		if calls.Add(1) > 1 {
			t.Errorf("handler called after Stop for %s", d.DeliveryID)
			return
		}
		close(started)
		<-release
		if err := d.Ack(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
		finished.Store(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	waitClosed(t, "handler started", started)

	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a handler was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return after the handler finished")
	}
	if finished.Load() != 1 {
		t.Fatal("Stop returned before the in-flight handler finished")
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// A job published after Stop goes to the next consumer, not the stopped one.
	if err := q.Publish(t.Context(), []queue.Job{job("d2", herald.ChannelEmail, herald.PriorityHigh)}); err != nil {
		t.Fatal(err)
	}
	next := make(chan string, 1)
	consume(t, q, herald.ChannelEmail, herald.PriorityHigh, 1, func(ctx context.Context, d *queue.Delivery) {
		if err := d.Ack(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
		next <- d.DeliveryID
	})
	select {
	case id := <-next:
		if id != "d2" {
			t.Errorf("next consumer got %q, want d2", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the job published after Stop was not handled by the next consumer")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("stopped consumer's handler ran %d times, want 1", n)
	}
}

func testStopGivesUpWithContext(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	if err := q.Publish(t.Context(), []queue.Job{job("d1", herald.ChannelPush, herald.PriorityNormal)}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	canceled := make(chan struct{})
	c, err := q.ConsumeJobs(t.Context(), herald.ChannelPush, herald.PriorityNormal, 1, func(ctx context.Context, d *queue.Delivery) {
		close(started)
		<-ctx.Done() // a send that honours its context
		close(canceled)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, "handler started", started)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = c.Stop(ctx)
	if code := herald.ErrorCode(err); code != herald.CodeUnavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop with a stuck handler = %v (code %q), want unavailable wrapping the deadline", err, code)
	}
	waitClosed(t, "handler context canceled", canceled)
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("Stop after the handler returned: %v", err)
	}
}

func testConcurrencyBound(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	const total, limit = 20, 3
	var jobs []queue.Job
	for i := range total {
		jobs = append(jobs, job(fmt.Sprintf("d%d", i), herald.ChannelSMS, herald.PriorityNormal))
	}
	if err := q.Publish(t.Context(), jobs); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	var inFlight, maxInFlight, done atomic.Int32
	consume(t, q, herald.ChannelSMS, herald.PriorityNormal, limit, func(ctx context.Context, d *queue.Delivery) {
		n := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		<-gate
		inFlight.Add(-1)
		if err := d.Ack(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
		done.Add(1)
	})
	waitFor(t, "limit handlers in flight", func() bool { return inFlight.Load() == limit })
	// Nothing beyond what the handlers hold was pulled: the server sees
	// exactly limit messages awaiting an ack.
	waitAckPending(t, nc, q, "sms_normal", limit)
	close(gate)
	waitFor(t, "every job handled", func() bool { return done.Load() == total })
	if m := maxInFlight.Load(); m > limit {
		t.Errorf("%d handlers ran at once, limit %d", m, limit)
	}
	waitStreamEmpty(t, nc, q)
}

func testPublishMany(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	const n = 500
	jobs := make([]queue.Job, n)
	for i := range jobs {
		jobs[i] = job(fmt.Sprintf("d%d", i), herald.AllChannels()[i%3], herald.PriorityNormal)
	}
	start := time.Now()
	if err := q.Publish(t.Context(), jobs); err != nil {
		t.Fatal(err)
	}
	t.Logf("published %d jobs in %v", n, time.Since(start))
	if got := streamMsgs(t, nc, q); got != n {
		t.Errorf("stream holds %d messages, want %d", got, n)
	}
}

func testPublishRejectsBadJobs(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	err := q.Publish(t.Context(), []queue.Job{
		job("good", herald.ChannelEmail, herald.PriorityNormal),
		job("bad-channel", "pigeon", herald.PriorityNormal),
		{AppID: "a", Channel: herald.ChannelEmail},
	})
	if code := herald.ErrorCode(err); code != herald.CodeInternal {
		t.Fatalf("Publish of bad jobs = %v (code %q), want internal", err, code)
	}
	if !strings.Contains(err.Error(), `"bad-channel"`) || !strings.Contains(err.Error(), "2 of 3") {
		t.Errorf("error %q does not name the failed delivery", err)
	}
	if n := streamMsgs(t, nc, q); n != 1 {
		t.Errorf("stream holds %d messages, want the good one", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = q.Publish(ctx, []queue.Job{job("late", herald.ChannelEmail, herald.PriorityNormal)})
	if code := herald.ErrorCode(err); code != herald.CodeUnavailable || !strings.Contains(err.Error(), `"late"`) {
		t.Errorf("Publish with a canceled context = %v (code %q), want unavailable naming the delivery", err, code)
	}
}

func testEvents(t *testing.T, nc *nats.Conn) {
	ns := namespace()
	q := openQueue(t, nc, queue.Options{Namespace: ns})
	at := time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	events := []herald.Event{
		{AppID: "a", NotificationID: "n1", DeliveryID: "d1", Channel: herald.ChannelEmail, Status: herald.StatusQueued, At: at},
		{AppID: "a", NotificationID: "n1", DeliveryID: "d1", Channel: herald.ChannelEmail, Status: herald.StatusSent, Attempt: 1, Provider: "smtp", At: at.Add(time.Second)},
		{AppID: "a", NotificationID: "n1", DeliveryID: "d2", Channel: herald.ChannelSMS, Status: herald.StatusFailed, Reason: herald.ReasonProviderRejected, Detail: "21211", At: at.Add(2 * time.Second)},
	}
	if err := q.PublishEvents(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	js := jetStream(t, nc)
	_, stream := q.StreamNames()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := ns + ".events.batch"; m.Subject != want {
		t.Errorf("event subject = %q, want %q", m.Subject, want)
	}

	var mu sync.Mutex
	var got []herald.Event
	c, err := q.ConsumeEvents(t.Context(), "tracker", func(ctx context.Context, evs []herald.Event) error {
		mu.Lock()
		got = append(got, evs...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	waitFor(t, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(events)
	})
	mu.Lock()
	if !reflect.DeepEqual(got, events) {
		t.Errorf("events consumed = %+v\nwant %+v", got, events)
	}
	mu.Unlock()
	waitAckPendingOn(t, nc, stream, "tracker", 0)
	// The events, published together, are one message, which stays in the
	// stream for other readers.
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Msgs; n != 1 {
		t.Errorf("events stream holds %d messages, want 1", n)
	}
}

// testEventHandlerErrorRedelivers: when the handler fails, every event of
// the message comes back, together.
func testEventHandlerErrorRedelivers(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	if err := q.PublishEvents(t.Context(), []herald.Event{
		{AppID: "a", DeliveryID: "d1", Status: herald.StatusQueued},
		{AppID: "a", DeliveryID: "d1", Status: herald.StatusSent},
		{AppID: "a", DeliveryID: "d2", Status: herald.StatusSent},
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var calls [][]string
	c, err := q.ConsumeEvents(t.Context(), "tracker", func(ctx context.Context, evs []herald.Event) error {
		mu.Lock()
		defer mu.Unlock()
		var call []string
		for _, e := range evs {
			call = append(call, e.DeliveryID+"/"+string(e.Status))
		}
		calls = append(calls, call)
		if len(calls) == 1 {
			return errors.New("store down")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	waitFor(t, "events redelivered after a handler error", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) == 2
	})
	_, stream := q.StreamNames()
	waitAckPendingOn(t, nc, stream, "tracker", 0)
	mu.Lock()
	defer mu.Unlock()
	want := []string{"d1/queued", "d1/sent", "d2/sent"}
	if len(calls) != 2 || !slices.Equal(calls[0], want) || !slices.Equal(calls[1], want) {
		t.Errorf("handler calls %v, want %v twice", calls, want)
	}
}

// testEventsInBatches: events that wait are handed over many at a time,
// in stream order, and a failed batch comes back whole.
func testEventsInBatches(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	const n = 600 // more than one batch
	var events []herald.Event
	for i := range n {
		events = append(events, herald.Event{AppID: "a", DeliveryID: fmt.Sprintf("d%03d", i), Status: herald.StatusSent})
	}
	if err := q.PublishEvents(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sizes []int
	var failed, got []string
	c, err := q.ConsumeEvents(t.Context(), "tracker", func(ctx context.Context, evs []herald.Event) error {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(evs))
		if len(sizes) == 2 {
			for _, e := range evs {
				failed = append(failed, e.DeliveryID)
			}
			return errors.New("store down")
		}
		for _, e := range evs {
			got = append(got, e.DeliveryID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	waitFor(t, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n
	})
	mu.Lock()
	defer mu.Unlock()
	// What has arrived is handed over: how much that is depends on how the
	// messages come off the connection, but of 600 waiting events some
	// arrive together.
	if slices.Max(sizes) < 2 || slices.Max(sizes) > queue.MaxEventBatch {
		t.Errorf("batch sizes %v: want the waiting events handed over many at a time, at most %d", sizes, queue.MaxEventBatch)
	}
	// The failed batch is redelivered after the others that were already
	// pulled; each part of the stream keeps its order.
	var redelivered, rest []string
	for _, id := range got {
		if slices.Contains(failed, id) {
			redelivered = append(redelivered, id)
		} else {
			rest = append(rest, id)
		}
	}
	if !slices.Equal(redelivered, failed) || !slices.IsSorted(rest) || len(failed) == 0 {
		t.Errorf("failed batch %v came back as %v; the others in order: %v", failed, redelivered, slices.IsSorted(rest))
	}
	_, stream := q.StreamNames()
	waitAckPendingOn(t, nc, stream, "tracker", 0)
}

func testMalformedMessageTerminated(t *testing.T, nc *nats.Conn) {
	ns := namespace()
	q := openQueue(t, nc, queue.Options{Namespace: ns})
	js := jetStream(t, nc)
	subject := ns + ".notify.email.normal"
	for _, body := range []string{"{not json", `{"delivery_id":"x","channel":"sms","priority":"normal"}`, `{"channel":"email","priority":"normal"}`} {
		if _, err := js.Publish(t.Context(), subject, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Publish(t.Context(), []queue.Job{job("good", herald.ChannelEmail, herald.PriorityNormal)}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	consume(t, q, herald.ChannelEmail, herald.PriorityNormal, 2, func(ctx context.Context, d *queue.Delivery) {
		mu.Lock()
		got = append(got, d.DeliveryID)
		mu.Unlock()
		if err := d.Ack(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
	})
	waitStreamEmpty(t, nc, q)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"good"}; !reflect.DeepEqual(got, want) {
		t.Errorf("handled %v, want %v", got, want)
	}
}

func testDepthAndPing(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	if err := q.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	jobs := []queue.Job{
		job("d1", herald.ChannelEmail, herald.PriorityNormal),
		job("d2", herald.ChannelEmail, herald.PriorityNormal),
		job("d3", herald.ChannelPush, herald.PriorityHigh),
	}
	if err := q.Publish(t.Context(), jobs); err != nil {
		t.Fatal(err)
	}
	// A consumer counts a stored message a moment after the PubAck, so
	// the depth is read until it matches or a deadline passes.
	want := map[string]uint64{"email.normal": 2, "email.high": 0, "sms.normal": 0, "sms.high": 0, "push.normal": 0, "push.high": 1}
	deadline := time.Now().Add(5 * time.Second)
	for {
		depth, err := q.Depth(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if reflect.DeepEqual(depth, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Depth = %v after 5s, want %v", depth, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testFullQueueRefusesNew: a full NOTIFY refuses the publishes beyond its
// limit, naming them, and keeps the messages it holds (DiscardNew), so that
// nothing accepted is dropped without the publisher knowing.
func testFullQueueRefusesNew(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{NotifyMaxMsgs: 3})
	var jobs []queue.Job
	for i := range 5 {
		jobs = append(jobs, job(fmt.Sprintf("d%d", i), herald.ChannelEmail, herald.PriorityNormal))
	}
	err := q.Publish(t.Context(), jobs)
	if err == nil {
		t.Fatal("publishing 5 jobs to a stream limited to 3 succeeded")
	}
	if herald.ErrorCode(err) != herald.CodeUnavailable {
		t.Errorf("error code = %s, want unavailable (a full queue passes): %v", herald.ErrorCode(err), err)
	}
	for _, id := range []string{`"d3"`, `"d4"`} {
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error does not name refused delivery %s: %v", id, err)
		}
	}
	for _, id := range []string{`"d0"`, `"d1"`, `"d2"`} {
		if strings.Contains(err.Error(), id) {
			t.Errorf("error names stored delivery %s: %v", id, err)
		}
	}
	if got := streamMsgs(t, nc, q); got != 3 {
		t.Errorf("stream holds %d messages, want the first 3", got)
	}
	fill, err := q.Fill(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	notify, events := q.StreamNames()
	if fill[0].Stream != notify || fill[0].Msgs != 3 || fill[0].MaxMsgs != 3 || fill[0].MaxBytes != -1 || fill[0].Ratio() != 1 {
		t.Errorf("NOTIFY fill = %+v (ratio %v), want 3 of 3 messages, no byte limit, ratio 1", fill[0], fill[0].Ratio())
	}
	if fill[1].Stream != events {
		t.Errorf("second fill is of %s, want %s", fill[1].Stream, events)
	}
	// Consuming makes room again.
	var mu sync.Mutex
	seen := map[string]bool{}
	consume(t, q, herald.ChannelEmail, herald.PriorityNormal, 3, func(ctx context.Context, d *queue.Delivery) {
		mu.Lock()
		seen[d.DeliveryID] = true
		mu.Unlock()
		_ = d.Ack(ctx)
	})
	waitStreamEmpty(t, nc, q)
	if err := q.Publish(t.Context(), jobs[3:]); err != nil {
		t.Fatalf("publishing after the queue drained: %v", err)
	}
	waitStreamEmpty(t, nc, q)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 5 {
		t.Errorf("consumed %v, want all 5 jobs", seen)
	}
}

// TestEmbeddedRestartKeepsUnacked checks the file store: a job delivered
// but never acked is still there after the server restarts on its directory.
func TestEmbeddedRestartKeepsUnacked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ns := namespace()
	opts := queue.Options{Namespace: ns, AckWait: 300 * time.Millisecond, Logger: testLogger(t)}

	srv := startEmbedded(t, dir)
	nc := connectEmbedded(t, srv)
	q, err := queue.Open(t.Context(), nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Publish(t.Context(), []queue.Job{job("d1", herald.ChannelEmail, herald.PriorityNormal)}); err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{})
	c, err := q.ConsumeJobs(t.Context(), herald.ChannelEmail, herald.PriorityNormal, 1, func(ctx context.Context, d *queue.Delivery) {
		select {
		case <-seen:
		default:
			close(seen) // and crash before acking
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, "job delivered", seen)
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := srv.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	srv = startEmbedded(t, dir)
	nc = connectEmbedded(t, srv)
	q, err = queue.Open(t.Context(), nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *queue.Delivery, 1)
	consume(t, q, herald.ChannelEmail, herald.PriorityNormal, 1, func(ctx context.Context, d *queue.Delivery) {
		if err := d.Ack(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
		select {
		case got <- d:
		default:
		}
	})
	select {
	case d := <-got:
		if d.DeliveryID != "d1" || d.NumDelivered < 2 {
			t.Errorf("after restart got %s delivered %d times, want d1 redelivered", d.DeliveryID, d.NumDelivered)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the unacked job did not survive the restart")
	}
}

func TestOpenRejectsBadNamespace(t *testing.T) {
	t.Parallel()
	srv := startEmbedded(t, t.TempDir())
	nc := connectEmbedded(t, srv)
	_, err := queue.Open(t.Context(), nc, queue.Options{Namespace: "a.b"})
	if code := herald.ErrorCode(err); code != herald.CodeInvalid {
		t.Fatalf("Open with namespace a.b = %v, want invalid", err)
	}
}

func TestUnavailableAfterClose(t *testing.T) {
	t.Parallel()
	srv := startEmbedded(t, t.TempDir())
	nc := connectEmbedded(t, srv)
	q, err := queue.Open(t.Context(), nc, queue.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if code := herald.ErrorCode(q.Ping(t.Context())); code != herald.CodeUnavailable {
		t.Errorf("Ping on a closed connection: code %q, want unavailable", code)
	}
	err = q.Publish(t.Context(), []queue.Job{job("d1", herald.ChannelSMS, herald.PriorityHigh)})
	if code := herald.ErrorCode(err); code != herald.CodeUnavailable {
		t.Errorf("Publish on a closed connection = %v, want unavailable", err)
	}
}

// helpers

func startEmbedded(t *testing.T, dir string) *natsembed.Server {
	t.Helper()
	srv, err := natsembed.Start(t.Context(), natsembed.Options{StoreDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(context.Background()); err != nil {
			t.Errorf("stop server: %v", err)
		}
	})
	return srv
}

func connectEmbedded(t *testing.T, srv *natsembed.Server) *nats.Conn {
	t.Helper()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func namespace() string { return "qt" + strings.ToLower(rand.Text()[:12]) }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// openQueue opens a queue in a fresh namespace (unless o names one) and
// deletes its streams when the test ends.
func openQueue(t *testing.T, nc *nats.Conn, o queue.Options) *queue.Queue {
	t.Helper()
	if o.Namespace == "" {
		o.Namespace = namespace()
	}
	o.Logger = testLogger(t)
	q, err := queue.Open(t.Context(), nc, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		js, err := jetstream.New(nc)
		if err != nil {
			return
		}
		notify, events := q.StreamNames()
		for _, s := range []string{notify, events} {
			if err := js.DeleteStream(context.Background(), s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) && !nc.IsClosed() {
				t.Errorf("delete stream %s: %v", s, err)
			}
		}
	})
	return q
}

func consume(t *testing.T, q *queue.Queue, ch herald.Channel, p herald.Priority, n int, handle func(context.Context, *queue.Delivery)) {
	t.Helper()
	c, err := q.ConsumeJobs(t.Context(), ch, p, n, handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop consumer: %v", err)
		}
	})
}

func job(id string, ch herald.Channel, p herald.Priority) queue.Job {
	return queue.Job{AppID: "app1", NotificationID: "n-" + id, DeliveryID: id, Channel: ch, Priority: p}
}

func jetStream(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func streamMsgs(t *testing.T, nc *nats.Conn, q *queue.Queue) uint64 {
	t.Helper()
	notify, _ := q.StreamNames()
	s, err := jetStream(t, nc).Stream(t.Context(), notify)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

func waitStreamEmpty(t *testing.T, nc *nats.Conn, q *queue.Queue) {
	t.Helper()
	waitFor(t, "NOTIFY stream empty", func() bool { return streamMsgs(t, nc, q) == 0 })
}

func waitAckPending(t *testing.T, nc *nats.Conn, q *queue.Queue, consumer string, want int) {
	t.Helper()
	notify, _ := q.StreamNames()
	waitAckPendingOn(t, nc, notify, consumer, want)
}

func waitAckPendingOn(t *testing.T, nc *nats.Conn, stream, consumer string, want int) {
	t.Helper()
	js := jetStream(t, nc)
	waitFor(t, fmt.Sprintf("%d acks pending on %s/%s", want, stream, consumer), func() bool {
		info, err := js.Consumer(t.Context(), stream, consumer)
		if err != nil {
			t.Fatal(err)
		}
		return info.CachedInfo().NumAckPending == want
	})
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// OldestWaiting names, per consumer, when the oldest message no worker has
// been handed yet was stored, and leaves out consumers with nothing waiting.
func TestOldestWaiting(t *testing.T) {
	t.Parallel()
	srv := startEmbedded(t, t.TempDir())
	nc := connectEmbedded(t, srv)
	q := openQueue(t, nc, queue.Options{AckWait: time.Minute})
	got, err := q.OldestWaiting(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("OldestWaiting on an empty queue = %v, %v; want nothing", got, err)
	}
	before := time.Now().Add(-time.Second)
	for _, id := range []string{"d1", "d2"} {
		if err := q.Publish(t.Context(), []queue.Job{job(id, herald.ChannelEmail, herald.PriorityNormal)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err = q.OldestWaiting(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	first, ok := got["email.normal"]
	if len(got) != 1 || !ok || first.Before(before) || first.After(time.Now()) {
		t.Fatalf("OldestWaiting with two waiting = %v, want email.normal at the first publish", got)
	}

	// A worker takes d1 and keeps it: d2 is now the oldest waiting.
	taken := make(chan struct{})
	release := make(chan struct{})
	consume(t, q, herald.ChannelEmail, herald.PriorityNormal, 1, func(ctx context.Context, d *queue.Delivery) {
		if d.DeliveryID == "d1" {
			close(taken)
			<-release
		}
		if err := d.Ack(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
	})
	waitClosed(t, "d1 handed out", taken)
	got, err = q.OldestWaiting(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if second, ok := got["email.normal"]; len(got) != 1 || !ok || second.Before(first) {
		t.Errorf("OldestWaiting with d1 handed out = %v, want email.normal at or after %s", got, first)
	}
	close(release)
}
