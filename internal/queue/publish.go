package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Job is one delivery to send, as it travels on NOTIFY. It carries ids
// only: the worker reads the rest from the log, which stays the source of
// truth.
type Job struct {
	AppID          string          `json:"app_id"`
	NotificationID string          `json:"notification_id"`
	DeliveryID     string          `json:"delivery_id"`
	Channel        herald.Channel  `json:"channel"`
	Priority       herald.Priority `json:"priority"`
	// MsgID is the de-duplication id (Nats-Msg-Id); DeliveryID when empty.
	// A republish of the same delivery within the duplicate window is then
	// stored once. It travels as a header, not in the body.
	MsgID string `json:"-"`
}

func (j Job) msgID() string {
	if j.MsgID != "" {
		return j.MsgID
	}
	return j.DeliveryID
}

// stallWait bounds how long one publish waits for room among the
// outstanding asynchronous publishes before it fails.
const stallWait = 5 * time.Second

// Publish queues jobs on NOTIFY. It sends them all asynchronously, then
// waits for every PubAck, so hundreds of jobs cost about one round trip. A
// job whose message id was seen within the duplicate window counts as
// published. An empty Priority means normal.
//
// Errors: one *herald.Error joining, per failed job, an error naming its
// delivery id; CodeUnavailable when any failed for want of the server (or
// ctx ended), CodeInternal otherwise (also for a job without a delivery id
// or with an unknown channel or priority, which is a caller's bug). Jobs
// not named were stored.
func (q *Queue) Publish(ctx context.Context, jobs []Job) error {
	msgs := make([]*nats.Msg, len(jobs))
	ids := make([]string, len(jobs))
	var errs []error
	for i, j := range jobs {
		ids[i] = j.DeliveryID
		if j.Priority == "" {
			j.Priority = herald.PriorityNormal
		}
		if j.DeliveryID == "" || !j.Channel.Valid() || !j.Priority.Valid() {
			errs = append(errs, herald.Errorf(herald.CodeInternal,
				"job %d (delivery %q): needs a delivery id, a known channel (%q) and priority (%q)", i, j.DeliveryID, j.Channel, j.Priority))
			continue
		}
		body := appendJob(make([]byte, 0, 192), j)
		msgs[i] = &nats.Msg{Subject: q.jobSubject(j.Channel, j.Priority), Data: body, Header: nats.Header{}}
		msgs[i].Header.Set(jetstream.MsgIDHeader, j.msgID())
	}
	errs = append(errs, q.publishAll(ctx, q.notify, msgs, func(i int) string { return fmt.Sprintf("delivery %q", ids[i]) })...)
	return joinFailures("queue: publish jobs", len(errs), len(jobs), errs)
}

// wireEvent is an Event on the EVENTS stream: compact JSON with stable,
// snake_case names that do not change when the Go struct is renamed.
type wireEvent struct {
	AppID          string         `json:"app_id"`
	NotificationID string         `json:"notification_id,omitempty"`
	DeliveryID     string         `json:"delivery_id,omitempty"`
	Channel        herald.Channel `json:"channel,omitempty"`
	Status         herald.Status  `json:"status"`
	Reason         string         `json:"reason,omitempty"`
	Attempt        int            `json:"attempt,omitempty"`
	Provider       string         `json:"provider,omitempty"`
	Detail         string         `json:"detail,omitempty"`
	At             time.Time      `json:"at"`
}

func toWire(e herald.Event) wireEvent {
	return wireEvent{AppID: e.AppID, NotificationID: e.NotificationID, DeliveryID: e.DeliveryID,
		Channel: e.Channel, Status: e.Status, Reason: e.Reason, Attempt: e.Attempt,
		Provider: e.Provider, Detail: e.Detail, At: e.At}
}

func (w wireEvent) event() herald.Event {
	return herald.Event{AppID: w.AppID, NotificationID: w.NotificationID, DeliveryID: w.DeliveryID,
		Channel: w.Channel, Status: w.Status, Reason: w.Reason, Attempt: w.Attempt,
		Provider: w.Provider, Detail: w.Detail, At: w.At}
}

// Events travel on EVENTS in batches, so that a commit's events cost the
// server one message to store and each reader one to pull and ack: a
// message on events.batch holds up to MaxEventBatch events and at most
// maxBatchBytes of body (an event larger than that goes alone), each
// event's JSON (appendEvent) on a line of its own; the JSON has no raw
// newline, since control characters in strings are escaped. Messages
// written before batching hold one event's JSON each, on
// events.<channel>.<status>; ConsumeEvents reads both.
const (
	eventBatchSubject = "events.batch"
	// maxBatchBytes keeps a batch well under NATS's default 1 MiB payload
	// limit; an event's detail has no cap of its own.
	maxBatchBytes = 256 << 10
)

// PublishEvents appends events to EVENTS, in order, packed in as few
// messages as the batch limits allow, asynchronously, and waits for every
// PubAck. Errors as for Publish, naming the delivery ids of the events
// that failed (those of a whole message when its publish failed).
func (q *Queue) PublishEvents(ctx context.Context, events []herald.Event) error {
	var (
		msgs   []*nats.Msg
		chunks [][2]int // the range of events of each message
		bad    []bool   // events that could not be encoded; nil when none
		errs   []error
		failed int
		body   []byte
		lo, n  int // first event and number of events in body
		line   = make([]byte, 0, 256)
	)
	flush := func(hi int) {
		if n > 0 {
			msgs = append(msgs, &nats.Msg{Subject: q.prefix + eventBatchSubject, Data: body})
			chunks = append(chunks, [2]int{lo, hi})
		}
		body, lo, n = nil, hi, 0
	}
	for i, e := range events {
		var err error
		line, err = appendEvent(line[:0], toWire(e))
		if err != nil {
			if bad == nil {
				bad = make([]bool, len(events))
			}
			bad[i] = true
			errs = append(errs, fmt.Errorf("event of delivery %q: encode: %w", e.DeliveryID, err))
			failed++
			continue
		}
		if n == MaxEventBatch || n > 0 && len(body)+1+len(line) > maxBatchBytes {
			flush(i)
		}
		if body == nil {
			// Room for the rest if they are about this one's size.
			body = make([]byte, 0, max(len(line), min(maxBatchBytes, min(len(events)-i, MaxEventBatch)*(len(line)+1))))
		} else {
			body = append(body, '\n')
		}
		body = append(body, line...)
		n++
	}
	flush(len(events))
	chunkErrs := q.publishAll(ctx, q.events, msgs, func(c int) string {
		var ids []string
		for i := chunks[c][0]; i < chunks[c][1]; i++ {
			if bad != nil && bad[i] {
				continue
			}
			failed++
			if !slices.Contains(ids, events[i].DeliveryID) {
				ids = append(ids, events[i].DeliveryID)
			}
		}
		return "events of deliveries " + quoteAll(ids)
	})
	errs = append(errs, chunkErrs...)
	return joinFailures("queue: publish events", failed, len(events), errs)
}

// publishAll publishes the non-nil msgs asynchronously and waits for their
// acks, returning one error per failed message, named by label(i).
func (q *Queue) publishAll(ctx context.Context, stream string, msgs []*nats.Msg, label func(i int) string) []error {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	var errs []error
	for i, m := range msgs {
		if m == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", label(i), err))
			continue
		}
		f, err := q.js.PublishMsgAsync(m, jetstream.WithExpectStream(stream), jetstream.WithStallWait(stallWait))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", label(i), q.connErr(err)))
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("%s: %w", label(i), err))
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%s: waiting for the ack: %w", label(i), ctx.Err()))
		}
	}
	return errs
}

// quoteAll lists ids quoted, separated by commas.
func quoteAll(ids []string) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(id))
	}
	return b.String()
}

// connErr marks err as a connection failure when the connection is down:
// some client errors only quote their cause instead of wrapping it.
func (q *Queue) connErr(err error) error {
	switch {
	case q.nc.IsClosed():
		return fmt.Errorf("%w: %w", nats.ErrConnectionClosed, err)
	case !q.nc.IsConnected():
		return fmt.Errorf("%w: %w", nats.ErrDisconnected, err)
	}
	return err
}

// joinFailures turns per-message errors into one *herald.Error, or nil;
// failed of total items (jobs or events) were not stored.
func joinFailures(op string, failed, total int, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	code := herald.CodeInternal
	for _, err := range errs {
		if unavailable(err) {
			code = herald.CodeUnavailable
			break
		}
	}
	return &herald.Error{Code: code, Message: fmt.Sprintf("%s: %d of %d failed", op, failed, total), Err: errors.Join(errs...)}
}

// PublishDeliveries queues deliveries for the workers, each under its
// delivery id as the message id, so a repeat within the duplicate window
// is stored once.
func (q *Queue) PublishDeliveries(ctx context.Context, ds []herald.Delivery) error {
	return q.Publish(ctx, deliveryJobs(ds, ""))
}

// RepublishDeliveries queues deliveries again under fresh message ids
// (round names the attempt): the first copy may still sit in the
// duplicate window, or may have been lost.
func (q *Queue) RepublishDeliveries(ctx context.Context, ds []herald.Delivery, round string) error {
	return q.Publish(ctx, deliveryJobs(ds, round))
}

func deliveryJobs(ds []herald.Delivery, round string) []Job {
	out := make([]Job, len(ds))
	for i, d := range ds {
		out[i] = Job{AppID: d.AppID, NotificationID: d.NotificationID, DeliveryID: d.ID, Channel: d.Channel, Priority: d.Priority}
		if round != "" {
			out[i].MsgID = d.ID + "/" + round
		}
	}
	return out
}
