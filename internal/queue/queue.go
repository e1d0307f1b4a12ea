// Package queue is Herald's one path to JetStream: the NOTIFY work queue of
// deliveries, the EVENTS stream of state changes, their subjects, message
// ids and pull consumers. It takes a *nats.Conn and never knows whether the
// server behind it is embedded or a cluster.
//
// Subjects are notify.<channel>.<priority> and events.batch (events in
// batches; before them, one event a message on events.<channel>.<status>),
// each prefixed with "<namespace>." when a namespace is set; stream names
// are then prefixed with "<namespace>_". One durable pull consumer per
// (channel, priority) reads NOTIFY, so a slow provider never holds up
// another channel and high never waits behind normal.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/heraldhq/herald"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options configure a Queue. Zero values take the documented defaults.
type Options struct {
	// Namespace prefixes the streams, subjects and consumers of one
	// deployment, so that several can share a NATS account (tests use a
	// random one). Letters, digits, '-' and '_'; "" means no prefix.
	Namespace string
	// Replicas of each stream; default 1 (3 on a cluster).
	Replicas int
	// AckWait is how long a delivered job may go unacknowledged before
	// JetStream redelivers it; default 60s. It must exceed the provider
	// timeout, or a slow send would be handed to a second worker.
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged messages per consumer; default 1000.
	MaxAckPending int
	// DuplicateWindow is how long a message id is remembered for
	// de-duplication; default 2m.
	DuplicateWindow time.Duration
	// EventsMaxAge is how long events are kept; default 72h.
	EventsMaxAge time.Duration
	// NotifyMaxMsgs bounds the deliveries waiting in NOTIFY; default
	// 10,000,000. A full NOTIFY refuses publishes (DiscardNew) rather than
	// dropping old messages: the log holds every refused delivery and the
	// reconciler republishes it once there is room.
	NotifyMaxMsgs int64
	// NotifyMaxBytes bounds NOTIFY's size; 0 leaves it to the server's file
	// store limit. JetStream reserves a stream's MaxBytes on the server, so
	// a large value can make the stream impossible to create.
	NotifyMaxBytes int64
	// Logger receives what the queue cannot return as an error (malformed
	// messages, failed pulls); nil discards.
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultAckWait         = 60 * time.Second
	DefaultMaxAckPending   = 1000
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultEventsMaxAge    = 72 * time.Hour
	DefaultNotifyMaxMsgs   = 10_000_000
)

// publishAckTimeout bounds the wait for one PubAck, so that a publish to a
// server that went away fails instead of waiting for the caller's context
// only.
const publishAckTimeout = 10 * time.Second

// Queue publishes and consumes Herald's JetStream messages. It is safe for
// concurrent use. Closing the connection is the caller's business.
type Queue struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	o      Options
	log    *slog.Logger
	prefix string // "" or "<namespace>."
	notify string // stream names
	events string
}

// Open creates or updates the NOTIFY and EVENTS streams and the NOTIFY
// consumers, so that a process may call it at every start, and several
// processes may call it at once. Errors: CodeInvalid for bad options,
// CodeUnavailable when the server cannot be reached in time, CodeInternal
// when JetStream refuses the configuration.
func Open(ctx context.Context, nc *nats.Conn, o Options) (*Queue, error) {
	if nc == nil {
		return nil, herald.Errorf(herald.CodeInternal, "queue: open: nil connection")
	}
	var v herald.Validation
	if !validNamespace(o.Namespace) {
		v.Add("namespace", "may hold only letters, digits, '-' and '_'")
	}
	if o.Replicas < 0 || o.Replicas > 5 {
		v.Add("replicas", "must be between 1 and 5")
	}
	if o.AckWait < 0 || o.MaxAckPending < 0 || o.DuplicateWindow < 0 || o.EventsMaxAge < 0 ||
		o.NotifyMaxMsgs < 0 || o.NotifyMaxBytes < 0 {
		v.Add("options", "durations and limits must not be negative")
	}
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("queue: open: %w", err)
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.AckWait == 0 {
		o.AckWait = DefaultAckWait
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = DefaultMaxAckPending
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.EventsMaxAge == 0 {
		o.EventsMaxAge = DefaultEventsMaxAge
	}
	if o.NotifyMaxMsgs == 0 {
		o.NotifyMaxMsgs = DefaultNotifyMaxMsgs
	}
	notifyMaxBytes := o.NotifyMaxBytes
	if notifyMaxBytes == 0 {
		notifyMaxBytes = -1 // unlimited, in JetStream's terms
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(publishAckTimeout),
		jetstream.WithPublishAsyncMaxPending(4096),
	)
	if err != nil {
		return nil, translate("queue: open", err)
	}
	q := &Queue{nc: nc, js: js, o: o, log: log.With("component", "queue"), notify: "NOTIFY", events: "EVENTS"}
	if o.Namespace != "" {
		q.prefix = o.Namespace + "."
		q.notify = o.Namespace + "_NOTIFY"
		q.events = o.Namespace + "_EVENTS"
	}

	if err := q.ensureStream(ctx, jetstream.StreamConfig{
		Name:        q.notify,
		Description: "Herald deliveries to send, one subject per channel and priority",
		Subjects:    []string{q.prefix + "notify.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Duplicates:  o.DuplicateWindow,
		MaxMsgs:     o.NotifyMaxMsgs,
		MaxBytes:    notifyMaxBytes,
		// A full work queue must refuse new deliveries, never silently drop
		// accepted ones (DiscardOld would delete the oldest).
		Discard: jetstream.DiscardNew,
	}); err != nil {
		return nil, err
	}
	// A duplicate window longer than the max age is refused by the server.
	eventsDup := min(o.DuplicateWindow, o.EventsMaxAge)
	if err := q.ensureStream(ctx, jetstream.StreamConfig{
		Name:        q.events,
		Description: "Herald delivery state changes, for the tracker",
		Subjects:    []string{q.prefix + "events.>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		MaxAge:      o.EventsMaxAge,
		Duplicates:  eventsDup,
	}); err != nil {
		return nil, err
	}
	for _, ch := range herald.AllChannels() {
		for _, p := range priorities() {
			if err := q.ensureConsumer(ctx, q.notify, q.jobConsumerConfig(ch, p)); err != nil {
				return nil, err
			}
		}
	}
	return q, nil
}

// priorities lists the priorities that have their own consumer.
func priorities() []herald.Priority {
	return []herald.Priority{herald.PriorityNormal, herald.PriorityHigh}
}

// validNamespace reports whether ns is usable both as a subject token and
// in a stream name.
func validNamespace(ns string) bool {
	for _, r := range ns {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		if !ok {
			return false
		}
	}
	return true
}

// upsertAttempts bounds the retries of a create that raced another process.
const upsertAttempts = 5

// ensureStream creates or updates a stream. Two processes opening at once
// may both find it missing and both create it; the loser sees "name in
// use" (when the server filled in a default differently) and simply
// retries as an update.
func (q *Queue) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) error {
	var err error
	for range upsertAttempts {
		if _, err = q.js.CreateOrUpdateStream(ctx, cfg); err == nil || !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			break
		}
	}
	return translate(fmt.Sprintf("queue: create or update stream %q", cfg.Name), err)
}

// ensureConsumer creates or updates a durable consumer, retrying a lost
// creation race like ensureStream.
func (q *Queue) ensureConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) error {
	var err error
	for range upsertAttempts {
		if _, err = q.js.CreateOrUpdateConsumer(ctx, stream, cfg); err == nil || !errors.Is(err, jetstream.ErrConsumerExists) {
			break
		}
	}
	return translate(fmt.Sprintf("queue: create or update consumer %q on %q", cfg.Durable, stream), err)
}

func (q *Queue) jobConsumerConfig(ch herald.Channel, p herald.Priority) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       jobConsumerName(ch, p),
		Description:   fmt.Sprintf("Herald %s workers, %s priority", ch, p),
		FilterSubject: q.jobSubject(ch, p),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.o.AckWait,
		MaxAckPending: q.o.MaxAckPending,
		// Herald decides from its log when a delivery is dead, not JetStream.
		MaxDeliver: -1,
		// Priority ordering comes from separate consumers; the server
		// default of 512 waiting pulls is plenty for the workers of a cluster.
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// jobConsumerName is the durable name of the NOTIFY consumer for ch and p.
// Consumers live inside the namespaced stream, so they need no prefix.
func jobConsumerName(ch herald.Channel, p herald.Priority) string {
	return string(ch) + "_" + string(p)
}

func (q *Queue) jobSubject(ch herald.Channel, p herald.Priority) string {
	return q.prefix + "notify." + string(ch) + "." + string(p)
}

// StreamNames returns the names of the NOTIFY and EVENTS streams, with the
// namespace applied.
func (q *Queue) StreamNames() (notify, events string) { return q.notify, q.events }

// Ping checks that JetStream answers, for /readyz. Errors: CodeUnavailable
// when it does not in time, CodeInternal otherwise.
func (q *Queue) Ping(ctx context.Context) error {
	_, err := q.js.AccountInfo(ctx)
	return translate("queue: ping", err)
}

// Depth returns, per NOTIFY consumer keyed "<channel>.<priority>", the
// messages still in the queue for it: not yet delivered plus delivered and
// awaiting an ack (in flight or waiting for a delayed retry). For metrics.
func (q *Queue) Depth(ctx context.Context) (map[string]uint64, error) {
	depth := make(map[string]uint64, len(herald.AllChannels())*2)
	for _, ch := range herald.AllChannels() {
		for _, p := range priorities() {
			name := jobConsumerName(ch, p)
			c, err := q.js.Consumer(ctx, q.notify, name)
			if err != nil {
				return nil, translate(fmt.Sprintf("queue: depth of consumer %q", name), err)
			}
			info := c.CachedInfo()
			depth[string(ch)+"."+string(p)] = info.NumPending + uint64(info.NumAckPending)
		}
	}
	return depth, nil
}

// OldestWaiting returns, per NOTIFY consumer keyed "<channel>.<priority>",
// when the oldest message not yet handed to any worker was stored: the
// head of the workers' backlog. A consumer with nothing waiting is absent.
// Every message stored before that time has been handed out at least once
// (redeliveries aside), so a delivery published earlier that makes no
// progress is not merely waiting its turn. The reconciler reads it so as
// not to republish deliveries that are only queued behind a backlog.
//
// Errors: the consumers that could be read are in the map even when
// others failed; the error then names the failures, CodeUnavailable when
// the server did not answer.
func (q *Queue) OldestWaiting(ctx context.Context) (map[string]time.Time, error) {
	out := make(map[string]time.Time)
	var errs []error
	stream, err := q.js.Stream(ctx, q.notify)
	if err != nil {
		return out, translate(fmt.Sprintf("queue: oldest waiting on %q", q.notify), err)
	}
	for _, ch := range herald.AllChannels() {
		for _, p := range priorities() {
			if t, ok, err := q.oldestWaiting(ctx, stream, ch, p); err != nil {
				errs = append(errs, err)
			} else if ok {
				out[string(ch)+"."+string(p)] = t
			}
		}
	}
	return out, errors.Join(errs...)
}

func (q *Queue) oldestWaiting(ctx context.Context, stream jetstream.Stream, ch herald.Channel, p herald.Priority) (time.Time, bool, error) {
	name := jobConsumerName(ch, p)
	c, err := stream.Consumer(ctx, name)
	if err != nil {
		return time.Time{}, false, translate(fmt.Sprintf("queue: oldest waiting for consumer %q", name), err)
	}
	info := c.CachedInfo()
	if info.NumPending == 0 {
		return time.Time{}, false, nil
	}
	// The consumer's messages are one subject's; the first of them after
	// the last one delivered is the oldest not handed out.
	m, err := stream.GetMsg(ctx, info.Delivered.Stream+1, jetstream.WithGetMsgSubject(q.jobSubject(ch, p)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return time.Time{}, false, nil // taken in the meantime
	}
	if err != nil {
		return time.Time{}, false, translate(fmt.Sprintf("queue: oldest waiting for consumer %q", name), err)
	}
	return m.Time, true, nil
}

// StreamFill is how full a stream is against its limits, for metrics and
// for the API's back-pressure.
type StreamFill struct {
	Stream   string
	Msgs     uint64
	Bytes    uint64
	MaxMsgs  int64 // -1: no limit
	MaxBytes int64 // -1: no limit
	// LastSeq is the sequence of the newest message ever stored: its
	// growth between two reads is what was published in between, so that
	// with Msgs it gives what was removed (acknowledged, on NOTIFY).
	LastSeq uint64
	// Undelivered is what no worker has been handed yet: the sum of the
	// stream's consumers' pending counts (all of Msgs when it has none).
	// Unlike Msgs it leaves out deliveries in a worker's hands and those
	// waiting out a retry's backoff, so it is the backlog of new work.
	Undelivered uint64
}

// Ratio is the fill of the tightest limit, 0 when the stream has none.
func (f StreamFill) Ratio() float64 {
	r := 0.0
	if f.MaxMsgs > 0 {
		r = max(r, float64(f.Msgs)/float64(f.MaxMsgs))
	}
	if f.MaxBytes > 0 {
		r = max(r, float64(f.Bytes)/float64(f.MaxBytes))
	}
	return r
}

// Fill reads the state and limits of the NOTIFY and EVENTS streams, in
// that order. Errors: CodeUnavailable when the server does not answer,
// CodeInternal otherwise.
func (q *Queue) Fill(ctx context.Context) ([]StreamFill, error) {
	out := make([]StreamFill, 0, 2)
	for _, name := range []string{q.notify, q.events} {
		s, err := q.js.Stream(ctx, name)
		if err != nil {
			return nil, translate(fmt.Sprintf("queue: fill of stream %q", name), err)
		}
		info := s.CachedInfo()
		f := StreamFill{Stream: name, Msgs: info.State.Msgs, Bytes: info.State.Bytes,
			MaxMsgs: info.Config.MaxMsgs, MaxBytes: info.Config.MaxBytes, LastSeq: info.State.LastSeq}
		if f.Undelivered, err = undelivered(ctx, s, f.Msgs); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// undelivered sums the pending counts of the stream's consumers, in one
// paged listing; msgs when the stream has no consumer yet.
func undelivered(ctx context.Context, s jetstream.Stream, msgs uint64) (uint64, error) {
	var sum uint64
	consumers := 0
	lister := s.ListConsumers(ctx)
	for info := range lister.Info() {
		sum += info.NumPending
		consumers++
	}
	if err := lister.Err(); err != nil {
		return 0, translate(fmt.Sprintf("queue: consumers of %q", s.CachedInfo().Config.Name), err)
	}
	if consumers == 0 {
		return msgs, nil
	}
	return sum, nil
}
