package queue_test

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/queue"
	"github.com/nats-io/nats.go"
)

// readEvents consumes the events of q through a reader named "tracker"
// until want of them arrived, and returns them with the size of each
// handler call. The reader stops when the test ends.
func readEvents(t *testing.T, nc *nats.Conn, q *queue.Queue, want int) (got []herald.Event, calls []int) {
	t.Helper()
	var mu sync.Mutex
	c, err := q.ConsumeEvents(t.Context(), "tracker", func(ctx context.Context, evs []herald.Event) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, evs...)
		calls = append(calls, len(evs))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	waitFor(t, fmt.Sprintf("%d events handled", want), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= want
	})
	_, stream := q.StreamNames()
	waitAckPendingOn(t, nc, stream, "tracker", 0)
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(got), slices.Clone(calls)
}

// eventMessages returns the bodies of the messages on EVENTS.
func eventMessages(t *testing.T, nc *nats.Conn, q *queue.Queue) [][]byte {
	t.Helper()
	_, stream := q.StreamNames()
	s, err := jetStream(t, nc).Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Data)
	}
	return out
}

// testManyEventsRoundTrip: a call with more events than one message takes,
// by count and by size, is read back once each and in order, the handler
// never getting more than MaxEventBatch at a time.
func testManyEventsRoundTrip(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	var events []herald.Event
	for i := range 1000 {
		e := herald.Event{AppID: "a", NotificationID: fmt.Sprintf("n%04d", i), DeliveryID: fmt.Sprintf("d%04d", i),
			Channel: herald.ChannelEmail, Status: herald.StatusSent, Attempt: 1, Provider: "smtp", At: at.Add(time.Duration(i) * time.Millisecond)}
		switch {
		case i == 850:
			e.Detail = strings.Repeat("x", 300<<10) // larger than a batch may be: alone in its message
		case i >= 700:
			e.Detail = strings.Repeat("<provider said>", 150) // about 4 KiB once escaped
		}
		events = append(events, e)
	}
	if err := q.PublishEvents(t.Context(), events[:990]); err != nil {
		t.Fatal(err)
	}
	if err := q.PublishEvents(t.Context(), events[990:]); err != nil {
		t.Fatal(err)
	}

	msgs := eventMessages(t, nc, q)
	lines := 0
	for i, body := range msgs {
		n := bytes.Count(body, []byte("\n")) + 1
		lines += n
		if n > queue.MaxEventBatch || len(body) > 256<<10 && n > 1 {
			t.Errorf("message %d holds %d events in %d bytes", i, n, len(body))
		}
	}
	// By count 4 would do; the long details need about 4 more, the longest its own.
	if lines != len(events) || len(msgs) < 5 || len(msgs) > 12 {
		t.Errorf("%d events in %d messages, want %d in about 10", lines, len(msgs), len(events))
	}

	got, calls := readEvents(t, nc, q, len(events))
	t.Logf("%d events in %d messages, handed over as %v", len(events), len(msgs), calls)
	if !reflect.DeepEqual(got, events) {
		t.Errorf("read %d events, want the %d published, once each and in order", len(got), len(events))
	}
	for _, n := range calls {
		if n > queue.MaxEventBatch {
			t.Errorf("handler calls of %v events: want at most %d each", calls, queue.MaxEventBatch)
			break
		}
	}
}

// testEventsOfOldFormatRead: messages of one event each, as written before
// events were batched, are still read, in order with the batches.
func testEventsOfOldFormatRead(t *testing.T, nc *nats.Conn) {
	ns := namespace()
	q := openQueue(t, nc, queue.Options{Namespace: ns})
	js := jetStream(t, nc)
	old := func(subject, body string) {
		t.Helper()
		if _, err := js.Publish(t.Context(), ns+"."+subject, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	old("events.email.queued", `{"app_id":"a","notification_id":"n1","delivery_id":"d1","channel":"email","status":"queued","at":"2025-03-04T05:06:07Z"}`)
	old("events.sms.failed", `{"app_id":"a","delivery_id":"d2","channel":"sms","status":"failed","reason":"provider_rejected","attempt":2,"detail":"21211\nunreachable \u003chandset\u003e","at":"2025-03-04T05:06:07Z"}`)
	newer := []herald.Event{
		{AppID: "a", NotificationID: "n1", DeliveryID: "d1", Channel: herald.ChannelEmail, Status: herald.StatusSending, Attempt: 1, At: at},
		{AppID: "a", NotificationID: "n1", DeliveryID: "d1", Channel: herald.ChannelEmail, Status: herald.StatusSent, Attempt: 1, Provider: "smtp", At: at},
	}
	if err := q.PublishEvents(t.Context(), newer); err != nil {
		t.Fatal(err)
	}
	old("events._._", `{"app_id":"a","status":"opened","at":"2025-03-04T05:06:07Z"}`)

	want := []herald.Event{
		{AppID: "a", NotificationID: "n1", DeliveryID: "d1", Channel: herald.ChannelEmail, Status: herald.StatusQueued, At: at},
		{AppID: "a", DeliveryID: "d2", Channel: herald.ChannelSMS, Status: herald.StatusFailed, Reason: herald.ReasonProviderRejected,
			Attempt: 2, Detail: "21211\nunreachable <handset>", At: at},
		newer[0], newer[1],
		{AppID: "a", Status: herald.StatusOpened, At: at},
	}
	got, _ := readEvents(t, nc, q, len(want))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read %+v\nwant %+v", got, want)
	}
}

// testMalformedEventMessagesTerminated: a message that is not a valid
// batch (or old event) is terminated whole, and the events after it are
// read.
func testMalformedEventMessagesTerminated(t *testing.T, nc *nats.Conn) {
	ns := namespace()
	q := openQueue(t, nc, queue.Options{Namespace: ns})
	js := jetStream(t, nc)
	line := `{"app_id":"a","delivery_id":"bad","status":"sent","at":"2025-03-04T05:06:07Z"}`
	for _, m := range []struct{ subject, body string }{
		{"events.batch", "{not json"},
		{"events.batch", line + "\n{not json"}, // its good event is not handed over either
		{"events.batch", line + "\n\n" + line},
		{"events.batch", ""},
		{"events.batch", strings.Repeat(line+"\n", queue.MaxEventBatch) + line}, // more than a batch holds
		{"events.email.sent", "{not json"},
		{"events.email.sent", line + "\n" + line}, // an old message holds one event
	} {
		if _, err := js.Publish(t.Context(), ns+"."+m.subject, []byte(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	good := []herald.Event{{AppID: "a", DeliveryID: "g1", Status: herald.StatusSent, At: at}, {AppID: "a", DeliveryID: "g2", Status: herald.StatusSent, At: at}}
	if err := q.PublishEvents(t.Context(), good); err != nil {
		t.Fatal(err)
	}
	got, _ := readEvents(t, nc, q, len(good))
	if !reflect.DeepEqual(got, good) {
		t.Errorf("read %+v\nwant only %+v", got, good)
	}
}

// testPublishEventsNamesFailures: a failed publish names the deliveries
// of the events that were not stored, and stores the others.
func testPublishEventsNamesFailures(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := q.PublishEvents(ctx, []herald.Event{
		{AppID: "a", DeliveryID: "d1", Status: herald.StatusQueued, At: at},
		{AppID: "a", DeliveryID: "d1", Status: herald.StatusSent, At: at},
		{AppID: "a", DeliveryID: "d2", Status: herald.StatusSent, At: at},
	})
	if code := herald.ErrorCode(err); code != herald.CodeUnavailable || !strings.Contains(err.Error(), `"d1", "d2"`) || !strings.Contains(err.Error(), "3 of 3") {
		t.Errorf("PublishEvents with a canceled context = %v (code %q), want unavailable naming d1 and d2", err, code)
	}

	// A time encoding/json refuses fails that event alone.
	events := []herald.Event{
		{AppID: "a", DeliveryID: "ok1", Status: herald.StatusSent, At: at},
		{AppID: "a", DeliveryID: "far", Status: herald.StatusSent, At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{AppID: "a", DeliveryID: "ok2", Status: herald.StatusSent, At: at},
	}
	err = q.PublishEvents(t.Context(), events)
	if code := herald.ErrorCode(err); code != herald.CodeInternal || !strings.Contains(err.Error(), `"far"`) || !strings.Contains(err.Error(), "1 of 3") {
		t.Errorf("PublishEvents of an unencodable event = %v (code %q), want internal naming it", err, code)
	}
	got, _ := readEvents(t, nc, q, 2)
	if want := []herald.Event{events[0], events[2]}; !reflect.DeepEqual(got, want) {
		t.Errorf("read %+v\nwant %+v", got, want)
	}
}

// testEventMessagesGathered: the messages that wait are handed over
// several at a time, each whole, so that a handler call has up to
// MaxEventBatch events however few each commit had.
func testEventMessagesGathered(t *testing.T, nc *nats.Conn) {
	q := openQueue(t, nc, queue.Options{})
	const perCall, publishes = 20, 40
	var events []herald.Event
	for i := range perCall * publishes {
		events = append(events, herald.Event{AppID: "a", DeliveryID: fmt.Sprintf("d%04d", i), Status: herald.StatusSent,
			At: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)})
	}
	for i := 0; i < len(events); i += perCall {
		if err := q.PublishEvents(t.Context(), events[i:i+perCall]); err != nil {
			t.Fatal(err)
		}
	}
	got, calls := readEvents(t, nc, q, len(events))
	t.Logf("handed over as %v", calls)
	if !reflect.DeepEqual(got, events) {
		t.Errorf("read %d events, want the %d published, once each and in order", len(got), len(events))
	}
	for _, n := range calls {
		if n%perCall != 0 || n > queue.MaxEventBatch {
			t.Errorf("handler calls of %v events: want whole messages of %d, at most %d events a call", calls, perCall, queue.MaxEventBatch)
			break
		}
	}
	if slices.Max(calls) <= perCall {
		t.Errorf("handler calls of %v events: want the waiting messages gathered", calls)
	}
}
