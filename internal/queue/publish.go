package queue

import (
	"context"
	"errors"
	"fmt"
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
	errs = append(errs, q.publishAll(ctx, q.notify, msgs, ids)...)
	return joinFailures("queue: publish jobs", len(jobs), errs)
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

// PublishEvents appends events to EVENTS on events.<channel>.<status>
// (a channel or status that is empty or not a plain token becomes "_"),
// asynchronously, and waits for every PubAck. Errors as for Publish,
// naming the failed events' delivery ids.
func (q *Queue) PublishEvents(ctx context.Context, events []herald.Event) error {
	msgs := make([]*nats.Msg, len(events))
	ids := make([]string, len(events))
	var errs []error
	for i, e := range events {
		ids[i] = e.DeliveryID
		body, err := appendEvent(make([]byte, 0, 256), toWire(e))
		if err != nil {
			errs = append(errs, fmt.Errorf("event of delivery %q: encode: %w", e.DeliveryID, err))
			continue
		}
		msgs[i] = &nats.Msg{Subject: q.prefix + "events." + token(string(e.Channel)) + "." + token(string(e.Status)), Data: body}
	}
	errs = append(errs, q.publishAll(ctx, q.events, msgs, ids)...)
	return joinFailures("queue: publish events", len(events), errs)
}

// token makes s usable as one subject token.
func token(s string) string {
	if s == "" || strings.ContainsAny(s, ".*> \t\r\n") {
		return "_"
	}
	return s
}

// publishAll publishes the non-nil msgs asynchronously and waits for their
// acks, returning one error per failure, named by ids[i].
func (q *Queue) publishAll(ctx context.Context, stream string, msgs []*nats.Msg, ids []string) []error {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	var errs []error
	for i, m := range msgs {
		if m == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("delivery %q: %w", ids[i], err))
			continue
		}
		f, err := q.js.PublishMsgAsync(m, jetstream.WithExpectStream(stream), jetstream.WithStallWait(stallWait))
		if err != nil {
			errs = append(errs, fmt.Errorf("delivery %q: %w", ids[i], q.connErr(err)))
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
			errs = append(errs, fmt.Errorf("delivery %q: %w", ids[i], err))
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("delivery %q: waiting for the ack: %w", ids[i], ctx.Err()))
		}
	}
	return errs
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

// joinFailures turns per-message errors into one *herald.Error, or nil.
func joinFailures(op string, total int, errs []error) error {
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
	return &herald.Error{Code: code, Message: fmt.Sprintf("%s: %d of %d failed", op, len(errs), total), Err: errors.Join(errs...)}
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
