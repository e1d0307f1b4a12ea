package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/heraldhq/herald"
	"github.com/nats-io/nats.go/jetstream"
)

// Delivery is one job handed to a worker, with what JetStream knows of it.
// Exactly one of Ack, NakWithDelay and Term should end it; InProgress may
// precede them to extend the ack wait (ConsumeJobs does so by itself while
// the handler runs).
type Delivery struct {
	Job
	// NumDelivered counts the deliveries of this message, this one included.
	NumDelivered uint64
	// StoredAt is when the message was stored in the stream.
	StoredAt time.Time

	msg   jetstream.Msg
	mu    sync.Mutex // orders InProgress against the answer that ends the delivery
	ended bool
}

// end runs the answer that ends the delivery; InProgress is a no-op after it.
func (d *Delivery) end(op string, f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ended = true
	return translate(fmt.Sprintf("queue: %s delivery %q", op, d.DeliveryID), f())
}

// Ack removes the job from the queue and waits for the server to confirm,
// so that a lost ack cannot make a sent delivery look pending. It waits at
// most ackTimeout (less when ctx ends first): while the consumer is between
// leaders an ack may get no answer for seconds, and a handler waiting for
// it holds a worker slot. A failed ack costs little: the message comes back
// after the ack wait and the worker finds the outcome in the log.
func (d *Delivery) Ack(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	return d.end("ack", func() error { return d.msg.DoubleAck(ctx) })
}

// ackTimeout bounds the wait for the server's confirmation of an ack. The
// other answers (nak, term, progress) are published without waiting.
const ackTimeout = 2 * time.Second

// NakWithDelay hands the job back for redelivery after delay.
func (d *Delivery) NakWithDelay(delay time.Duration) error {
	return d.end("nak", func() error { return d.msg.NakWithDelay(delay) })
}

// Term removes the job without sending it again.
func (d *Delivery) Term() error {
	return d.end("term", d.msg.Term)
}

// InProgress restarts the ack wait, for a send that takes longer than
// expected. After the delivery was ended it does nothing.
func (d *Delivery) InProgress() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended {
		return nil
	}
	return translate(fmt.Sprintf("queue: extend delivery %q", d.DeliveryID), d.msg.InProgress())
}

// keepInProgress restarts the ack wait every interval until the returned
// stop is called, so that JetStream never hands a job whose handler is
// still running (a slow provider, a slow log commit) to a second worker.
func (d *Delivery) keepInProgress(interval time.Duration, log *slog.Logger) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := d.InProgress(); err != nil {
					log.Warn("extending the ack wait failed; the job may be redelivered", "delivery_id", d.DeliveryID, "err", err)
				}
			}
		}
	}()
	return func() { close(done); <-exited }
}

// Consumer runs handlers for the messages of one durable consumer until
// Stopped.
type Consumer struct {
	stopping chan struct{} // closed by Stop: pull no more
	done     chan struct{} // closed when the loop ended and every handler returned
	once     sync.Once
	stopPull context.CancelFunc // abandons the pull request in flight
	cancel   context.CancelFunc // cancels the handlers' context
}

// Stop stops pulling messages and waits for the handlers in flight to
// return. When ctx ends first their context is canceled and Stop returns
// CodeUnavailable; unacknowledged messages are then redelivered after the
// ack wait. Safe to call more than once and concurrently.
func (c *Consumer) Stop(ctx context.Context) error {
	c.once.Do(func() {
		close(c.stopping)
		c.stopPull()
	})
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.cancel()
		return &herald.Error{Code: herald.CodeUnavailable, Message: "queue: stop consumer: handlers still running", Err: ctx.Err()}
	}
}

// ConsumeJobs runs handle for the jobs of channel ch and priority p, at most
// concurrency at a time. It pulls only as many messages as it has free
// handlers, so no job waits in a local buffer while its ack wait runs out.
// handle gets a context that carries ctx's values and is canceled only when
// a Stop gives up waiting; while it runs, the job's ack wait is restarted
// every third of AckWait (InProgress); handle must end the delivery (Ack, NakWithDelay
// or Term). A message that is not a valid job is logged and terminated.
//
// Errors: CodeInternal for a bad channel, priority or concurrency, or when
// the consumer does not exist (Open creates it); CodeUnavailable when the
// server does not answer.
func (q *Queue) ConsumeJobs(ctx context.Context, ch herald.Channel, p herald.Priority, concurrency int, handle func(context.Context, *Delivery)) (*Consumer, error) {
	name := jobConsumerName(ch, p)
	if !ch.Valid() || !p.Valid() || concurrency < 1 || handle == nil {
		return nil, herald.Errorf(herald.CodeInternal, "queue: consume jobs %q: needs a known channel and priority, concurrency >= 1 and a handler (got %d)", name, concurrency)
	}
	cons, err := q.js.Consumer(ctx, q.notify, name)
	if err != nil {
		return nil, translate(fmt.Sprintf("queue: consume jobs: consumer %q on %q", name, q.notify), err)
	}
	log := q.log.With("consumer", name)
	return q.run(ctx, cons, concurrency, log, func(hctx context.Context, m jetstream.Msg) {
		d, err := q.decodeJob(m, ch, p)
		if err != nil {
			log.Error("terminating malformed job", "subject", m.Subject(), "err", err)
			if err := m.Term(); err != nil {
				log.Warn("term of malformed job failed", "err", err)
			}
			return
		}
		// A third of the ack wait leaves two chances for a progress ack to arrive in time.
		stop := d.keepInProgress(q.o.AckWait/3, log)
		defer stop()
		handle(hctx, d)
	}), nil
}

func (q *Queue) decodeJob(m jetstream.Msg, ch herald.Channel, p herald.Priority) (*Delivery, error) {
	j, err := decodeJobJSON(m.Data())
	if err != nil {
		return nil, fmt.Errorf("decode job: %w", err)
	}
	if j.DeliveryID == "" || j.Channel != ch || j.Priority != p {
		return nil, fmt.Errorf("job of delivery %q for %s/%s on the %s/%s consumer", j.DeliveryID, j.Channel, j.Priority, ch, p)
	}
	md, err := m.Metadata()
	if err != nil {
		return nil, fmt.Errorf("job of delivery %q: metadata: %w", j.DeliveryID, err)
	}
	j.MsgID = m.Headers().Get(jetstream.MsgIDHeader)
	return &Delivery{Job: j, NumDelivered: md.NumDelivered, StoredAt: md.Timestamp, msg: m}, nil
}

// ConsumeEvents runs handle for the events on EVENTS, in stream order
// except for redeliveries, through the durable consumer named durable
// (created or updated here; each reader of events, such as the tracker,
// has its own). handle gets a batch at a time: the events that have
// arrived since the last call, up to MaxEventBatch, so that under load a
// reader pays for one pull and one store write per batch instead of per
// event. A message's events (up to a commit's, see PublishEvents) always
// go to the same call, so that a message is acked only when all of its
// events were handled: when handle returns nil, and all of them are
// redelivered after a growing delay otherwise (a handler must therefore be
// idempotent). A malformed message is logged and terminated. The slice is
// reused for the next batch: handle must not keep it. The lifetime rules
// are those of ConsumeJobs.
func (q *Queue) ConsumeEvents(ctx context.Context, durable string, handle func(context.Context, []herald.Event) error) (*Consumer, error) {
	if durable == "" || handle == nil {
		return nil, herald.Errorf(herald.CodeInternal, "queue: consume events: needs a durable name and a handler")
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "Herald event reader " + durable,
		FilterSubject: q.prefix + "events.>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.o.AckWait,
		MaxAckPending: q.o.MaxAckPending,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if err := q.ensureConsumer(ctx, q.events, cfg); err != nil {
		return nil, err
	}
	cons, err := q.js.Consumer(ctx, q.events, durable)
	if err != nil {
		return nil, translate(fmt.Sprintf("queue: consume events: consumer %q on %q", durable, q.events), err)
	}
	r := &eventReader{log: q.log.With("consumer", durable), handle: handle, batchSubject: q.prefix + eventBatchSubject,
		maxFetch: min(MaxEventBatch, q.o.MaxAckPending), perMsg: MaxEventBatch,
		evs: make([]herald.Event, 0, MaxEventBatch)}
	return q.runBatches(ctx, cons, r.maxFetch, r.fetchSize, r.log, r.process), nil
}

// MaxEventBatch is the most events one ConsumeEvents handler call gets, and
// the most one EVENTS message holds.
const MaxEventBatch = 256

// eventReader hands the events of pulled EVENTS messages to a handler and
// answers the messages. It runs on its consumer's pull loop only.
type eventReader struct {
	log          *slog.Logger
	handle       func(context.Context, []herald.Event) error
	batchSubject string
	maxFetch     int
	// perMsg is the most events a message held in the last messages
	// handed over: the next pull asks for about MaxEventBatch events'
	// worth of messages, so that what waits in the client behind the
	// handler is about one handler call's worth, not up to MaxEventBatch
	// calls' (their ack wait runs meanwhile, and each can hold 256 KiB).
	// It starts at the most, so that a first pull after a restart with a
	// backlog takes one message.
	perMsg int

	evs  []herald.Event
	msgs []eventMsg
}

// eventMsg is a pulled message and the range of its events in evs.
type eventMsg struct {
	m          jetstream.Msg
	start, end int
}

func (r *eventReader) fetchSize() int {
	return max(1, min(r.maxFetch, MaxEventBatch/r.perMsg))
}

// process decodes ms, terminating the malformed, and hands their events
// to the handler in runs of whole messages of at most MaxEventBatch events.
func (r *eventReader) process(ctx context.Context, ms []jetstream.Msg) {
	r.evs, r.msgs = r.evs[:0], r.msgs[:0]
	perMsg := 0
	for _, m := range ms {
		start := len(r.evs)
		var err error
		r.evs, err = decodeEvents(r.evs, m.Subject() == r.batchSubject, m.Data())
		if err != nil {
			r.log.Error("terminating malformed event message", "subject", m.Subject(), "err", err)
			if err := m.Term(); err != nil {
				r.log.Warn("term of malformed event message failed", "err", err)
			}
			continue
		}
		r.msgs = append(r.msgs, eventMsg{m: m, start: start, end: len(r.evs)})
		perMsg = max(perMsg, len(r.evs)-start)
	}
	if perMsg > 0 {
		r.perMsg = perMsg
	}
	for lo := 0; lo < len(r.msgs); {
		hi := lo + 1
		for hi < len(r.msgs) && r.msgs[hi].end-r.msgs[lo].start <= MaxEventBatch {
			hi++
		}
		r.run(ctx, r.evs[r.msgs[lo].start:r.msgs[hi-1].end], r.msgs[lo:hi])
		lo = hi
	}
}

// run hands evs, the events of msgs, to the handler, and acks msgs when it
// succeeds or naks them all with a growing delay when it fails.
func (r *eventReader) run(ctx context.Context, evs []herald.Event, msgs []eventMsg) {
	if err := r.handle(ctx, evs); err != nil {
		var n uint64 = 1
		if md, mdErr := msgs[0].m.Metadata(); mdErr == nil {
			n = md.NumDelivered
		}
		delay := retryDelay(n)
		r.log.Warn("event handler failed; redelivering the batch", "events", len(evs), "messages", len(msgs),
			"first_delivery_id", evs[0].DeliveryID, "attempt", n, "delay", delay, "err", err)
		for _, m := range msgs {
			if err := m.m.NakWithDelay(delay); err != nil {
				r.log.Warn("nak of event message failed", "err", err)
			}
		}
		return
	}
	for _, m := range msgs {
		if err := m.m.Ack(); err != nil {
			r.log.Warn("ack of event message failed; its events will be redelivered", "events", m.end-m.start,
				"first_delivery_id", evs[m.start-msgs[0].start].DeliveryID, "err", err)
		}
	}
}

// retryDelay backs off the redelivery of an event whose handler failed:
// 100ms doubling up to 30s, so a broken dependency is not hammered.
func retryDelay(numDelivered uint64) time.Duration {
	d := 100 * time.Millisecond
	for i := uint64(1); i < numDelivered && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// Pull loop timing. fetchWait bounds one pull request: an idle consumer
// sends one request per fetchWait. Stop abandons the request in flight;
// the server drops a request whose requester lost interest, so at worst a
// message caught in that instant is redelivered after the ack wait. A
// failed pull is retried after a backoff that stops growing at 2s: the
// usual failure is a consumer between leaders (no responders, leadership
// change) while a NATS node restarts, which lasts seconds, and a longer
// wait would leave the workers idle well after the new leader is there.
const (
	fetchWait      = 5 * time.Second
	minPullBackoff = 100 * time.Millisecond
	maxPullBackoff = 2 * time.Second
)

// runBatches pulls from cons fetchSize() messages at a time (at most
// limit) and hands them to process in batches, one batch at a time on one
// goroutine, the pulls' own: each batch is what has arrived since the
// previous one, so a busy stream is read in large batches and a quiet one
// without waiting.
func (q *Queue) runBatches(ctx context.Context, cons jetstream.Consumer, limit int, fetchSize func() int, log *slog.Logger, process func(context.Context, []jetstream.Msg)) *Consumer {
	c, hctx, pullCtx := newConsumer(ctx)
	handle := func(ms []jetstream.Msg) {
		defer func() {
			if r := recover(); r != nil {
				// A panicking handler must not take the reader down; the
				// messages are redelivered after the ack wait.
				log.Error("handler panicked", "messages", len(ms), "panic", r, "stack", string(debug.Stack()))
			}
		}()
		process(hctx, ms)
	}

	go func() {
		defer close(c.done)
		defer c.cancel()
		backoff := minPullBackoff
		group := make([]jetstream.Msg, 0, limit)
		for {
			size := min(fetchSize(), limit)
			fctx, fcancel := context.WithTimeout(pullCtx, fetchWait)
			batch, err := cons.Fetch(size, jetstream.FetchContext(fctx))
			if err == nil {
				msgs := batch.Messages()
				for m := range msgs {
					group = append(group[:0], m)
				more:
					for len(group) < size {
						select {
						case m, ok := <-msgs:
							if !ok {
								break more
							}
							group = append(group, m)
						default:
							break more
						}
					}
					select {
					case <-c.stopping:
						// Pulled after Stop: hand them straight back so that
						// another reader need not wait for the ack wait.
						for _, m := range group {
							if err := m.Nak(); err != nil {
								log.Warn("nak after stop failed", "err", err)
							}
						}
					default:
						handle(group)
					}
				}
				err = batch.Error()
			}
			fcancel()
			if !c.afterPull(err, &backoff, log) {
				return
			}
		}
	}()
	return c
}

// run pulls from cons and hands each message to process on one of
// concurrency goroutines, never more than concurrency at a time.
func (q *Queue) run(ctx context.Context, cons jetstream.Consumer, concurrency int, log *slog.Logger, process func(context.Context, jetstream.Msg)) *Consumer {
	c, hctx, pullCtx := newConsumer(ctx)
	slots := make(chan struct{}, concurrency) // a token per running handler
	var handlers sync.WaitGroup

	release := func(n int) {
		for range n {
			<-slots
		}
	}
	handle := func(m jetstream.Msg) {
		defer release(1)
		defer func() {
			if r := recover(); r != nil {
				// A panicking handler must not take the worker down;
				// the message is redelivered after the ack wait.
				log.Error("handler panicked", "subject", m.Subject(), "panic", r, "stack", string(debug.Stack()))
			}
		}()
		process(hctx, m)
	}
	// One long-lived goroutine per slot rather than one per message: a
	// fresh goroutine grows its stack again for every message (JSON,
	// SQLite), which cost about 3 % of the CPU under load.
	work := make(chan jetstream.Msg)
	for range concurrency {
		handlers.Go(func() {
			for m := range work {
				handle(m)
			}
		})
	}
	dispatch := func(m jetstream.Msg) { work <- m }

	go func() {
		defer close(c.done)
		defer c.cancel()
		defer handlers.Wait()
		defer close(work)
		backoff := minPullBackoff
		for {
			// Wait for one free handler, then take every other free one.
			select {
			case slots <- struct{}{}:
			case <-c.stopping:
				return
			}
			n := 1
		take:
			for n < concurrency {
				select {
				case slots <- struct{}{}:
					n++
				default:
					break take
				}
			}

			fctx, fcancel := context.WithTimeout(pullCtx, fetchWait)
			batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
			got := 0
			if err == nil {
				for m := range batch.Messages() {
					got++
					select {
					case <-c.stopping:
						// Pulled after Stop: hand it straight back so that
						// another worker need not wait for the ack wait.
						if err := m.Nak(); err != nil {
							log.Warn("nak after stop failed", "err", err)
						}
						release(1)
					default:
						dispatch(m)
					}
				}
				err = batch.Error()
			}
			fcancel()
			release(n - got)
			if !c.afterPull(err, &backoff, log) {
				return
			}
		}
	}()
	return c
}

// newConsumer returns a Consumer, the context of its handlers (ctx's
// values, canceled only when a Stop gives up waiting) and that of its
// pulls (canceled by Stop).
func newConsumer(ctx context.Context) (c *Consumer, hctx, pullCtx context.Context) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pullCtx, stopPull := context.WithCancel(context.Background())
	return &Consumer{stopping: make(chan struct{}), done: make(chan struct{}), stopPull: stopPull, cancel: cancel}, hctx, pullCtx
}

// afterPull is what a pull loop does once a fetch has ended with err: it
// reports false when the consumer is stopping; otherwise, after a failed
// pull, it logs it and waits a backoff that grows up to maxPullBackoff
// (or until Stop), and after a good one it resets the backoff.
func (c *Consumer) afterPull(err error, backoff *time.Duration, log *slog.Logger) bool {
	select {
	case <-c.stopping:
		return false
	default:
	}
	if err == nil || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
		*backoff = minPullBackoff
		return true
	}
	log.Warn("pull failed; retrying", "err", err, "in", *backoff)
	select {
	case <-time.After(*backoff):
	case <-c.stopping:
		return false
	}
	*backoff = min(2**backoff, maxPullBackoff)
	return true
}
