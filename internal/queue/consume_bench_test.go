package queue_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/queue"
)

// BenchmarkConsumeEvents reads events from EVENTS on embedded JetStream
// through two durable consumers, as the tracker and the webhook matcher
// do, with handlers that do nothing: the figure is the queue's own cost of
// handing over and acknowledging an event, per event and per reader. The
// events are published before the timer starts, 20 per call as the log
// writer publishes a group commit's.
func BenchmarkConsumeEvents(b *testing.B) {
	ctx := context.Background()
	q := benchQueue(b)
	evs := make([]herald.Event, 0, 20)
	for i := 0; i < b.N; i += len(evs) {
		evs = evs[:0]
		for j := range min(20, b.N-i) {
			evs = append(evs, herald.Event{AppID: "app", NotificationID: fmt.Sprintf("0190b7a4-0000-7000-8000-%012d", i+j),
				DeliveryID: fmt.Sprintf("0190b7a4-0000-8000-8000-%012d", i+j), Channel: herald.ChannelEmail,
				Status: herald.StatusSent, Attempt: 1, Provider: "smtp", At: time.Now()})
		}
		if err := q.PublishEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := heraldtest.CPUTime()
	var handled atomic.Int64
	done := make(chan struct{})
	for _, name := range []string{"reader-1", "reader-2"} {
		c, err := q.ConsumeEvents(ctx, name, func(_ context.Context, evs []herald.Event) error {
			if handled.Add(int64(len(evs))) == int64(2*b.N) {
				close(done)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Stop(context.Background()) })
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("handled %d of %d events", handled.Load(), 2*b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64((heraldtest.CPUTime()-cpu0).Microseconds())/float64(2*b.N), "cpu-µs/read")
}

// BenchmarkConsumeJobs hands queued deliveries to 32 concurrent handlers
// that take 5 ms each, as a provider call does, then ack: the figure is the
// queue's own cost per job (pull, hand-over, progress keeping, the ack and
// its confirmation). The jobs are published before the timer starts.
func BenchmarkConsumeJobs(b *testing.B) {
	ctx := context.Background()
	q := benchQueue(b)
	ds := make([]herald.Delivery, 0, 100)
	for i := 0; i < b.N; i += len(ds) {
		ds = ds[:0]
		for j := range min(100, b.N-i) {
			ds = append(ds, herald.Delivery{AppID: "app", NotificationID: fmt.Sprintf("0190b7a4-0000-7000-8000-%012d", i+j),
				ID: fmt.Sprintf("0190b7a4-0000-8000-8000-%012d", i+j), Channel: herald.ChannelEmail, Priority: herald.PriorityNormal})
		}
		if err := q.PublishDeliveries(ctx, ds); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := heraldtest.CPUTime()
	var handled atomic.Int64
	done := make(chan struct{})
	c, err := q.ConsumeJobs(ctx, herald.ChannelEmail, herald.PriorityNormal, 32, func(ctx context.Context, d *queue.Delivery) {
		time.Sleep(5 * time.Millisecond)
		if err := d.Ack(ctx); err != nil {
			b.Error(err)
		}
		if handled.Add(1) == int64(b.N) {
			close(done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Stop(context.Background()) })
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("handled %d of %d jobs", handled.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64((heraldtest.CPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/job")
}
