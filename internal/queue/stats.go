package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerStat is one durable consumer's state, for monitoring.
type ConsumerStat struct {
	Stream   string
	Consumer string
	// Pending is what the consumer has not yet handed to any worker.
	Pending uint64
	// AckPending is what was handed out and not yet acknowledged: in a
	// worker's hands, or waiting for a delayed retry.
	AckPending int
	// Redelivered is how many of the unacknowledged were handed out more
	// than once.
	Redelivered int
	// Waiting is the pull requests waiting for messages: 0 while work is
	// pending means no worker is asking.
	Waiting int
	// OldestPending is when the oldest message not yet handed out was
	// stored; zero when nothing is pending.
	OldestPending time.Time
}

// ConsumerStats reads every durable consumer of the NOTIFY and EVENTS
// streams. The consumers that could be read are returned even when others
// failed; the error then names the failures (CodeUnavailable when the
// server did not answer).
func (q *Queue) ConsumerStats(ctx context.Context) ([]ConsumerStat, error) {
	var out []ConsumerStat
	var errs []error
	for _, name := range []string{q.notify, q.events} {
		stream, err := q.js.Stream(ctx, name)
		if err != nil {
			errs = append(errs, translate(fmt.Sprintf("queue: consumers of %q", name), err))
			continue
		}
		lister := stream.ListConsumers(ctx)
		for info := range lister.Info() {
			st := ConsumerStat{Stream: name, Consumer: info.Name, Pending: info.NumPending,
				AckPending: info.NumAckPending, Redelivered: info.NumRedelivered, Waiting: info.NumWaiting}
			if st.Pending > 0 {
				at, err := oldestPending(ctx, stream, info)
				if err != nil {
					errs = append(errs, err)
				}
				st.OldestPending = at
			}
			out = append(out, st)
		}
		if err := lister.Err(); err != nil {
			errs = append(errs, translate(fmt.Sprintf("queue: consumers of %q", name), err))
		}
	}
	return out, errors.Join(errs...)
}

// oldestPending finds when the first message after the consumer's last
// delivered one, on the consumer's subjects, was stored.
func oldestPending(ctx context.Context, stream jetstream.Stream, info *jetstream.ConsumerInfo) (time.Time, error) {
	subject := info.Config.FilterSubject
	if subject == "" && len(info.Config.FilterSubjects) == 1 {
		subject = info.Config.FilterSubjects[0]
	}
	if subject == "" {
		subject = ">"
	}
	m, err := stream.GetMsg(ctx, info.Delivered.Stream+1, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return time.Time{}, nil // taken in the meantime
	}
	if err != nil {
		return time.Time{}, translate(fmt.Sprintf("queue: oldest pending of consumer %q", info.Name), err)
	}
	return m.Time, nil
}
