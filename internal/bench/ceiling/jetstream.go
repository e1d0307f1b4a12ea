package ceiling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishConsume measures messages per second through embedded JetStream
// set up as Herald's embedded default sets it up in internal/natsembed
// (nats-server as a library, no listener, an in-process connection, the
// file store under dir with the server's default sync; repeated here
// because only the composition root may use that adapter): one publisher
// publishing asynchronously (up to 4096 unacknowledged, as Herald's queue
// does) to a work-queue stream, and one consumer acknowledging each
// message. A message counts once its consumer acknowledged it.
func PublishConsume(ctx context.Context, dir string, d time.Duration, logger *slog.Logger) (float64, error) {
	wrap := func(err error) error { return fmt.Errorf("ceiling: publish+consume: %w", err) }
	ns, err := server.NewServer(&server.Options{ServerName: "herald-ceiling", JetStream: true,
		StoreDir: filepath.Join(dir, "jetstream"), DontListen: true, NoSigs: true})
	if err != nil {
		return 0, wrap(err)
	}
	if logger != nil {
		ns.SetLoggerV2(slogWarnings{logger}, false, false, false)
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(30*time.Second) || !ns.JetStreamEnabled() {
		return 0, wrap(errors.New("the embedded server did not start"))
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		return 0, wrap(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return 0, wrap(err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CEILING", Subjects: []string{"ceiling.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew})
	if err != nil {
		return 0, wrap(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "ceiling",
		AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000})
	if err != nil {
		return 0, wrap(err)
	}
	var acked atomic.Int64
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if m.Ack() == nil {
			acked.Add(1)
		}
	})
	if err != nil {
		return 0, wrap(err)
	}
	defer cc.Stop()

	// A delivery message of Herald's size: a few hundred bytes.
	payload := make([]byte, 300)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	pubCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var n int64
	for pubCtx.Err() == nil {
		if _, err := js.PublishAsync("ceiling.push", payload, jetstream.WithStallWait(time.Second)); err != nil {
			if pubCtx.Err() != nil {
				break
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-pubCtx.Done():
			}
			continue
		}
		n++
	}
	// The figure is messages through, publish to ack: wait for the
	// consumer to finish what was published (for a while at most).
	drain := time.Now().Add(max(3*d, 10*time.Second))
	for acked.Load() < n && time.Now().Before(drain) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	rate, err := perSecond(acked.Load(), start)
	if err != nil {
		return 0, wrap(fmt.Errorf("%d published, none acknowledged", n))
	}
	return rate, nil
}

// slogWarnings passes the server's warnings and errors to a logger.
type slogWarnings struct{ log *slog.Logger }

func (l slogWarnings) Noticef(string, ...any) {}
func (l slogWarnings) Debugf(string, ...any)  {}
func (l slogWarnings) Tracef(string, ...any)  {}
func (l slogWarnings) Warnf(format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...), "component", "ceiling-nats-server")
}
func (l slogWarnings) Errorf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...), "component", "ceiling-nats-server")
}
func (l slogWarnings) Fatalf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...), "component", "ceiling-nats-server")
}
