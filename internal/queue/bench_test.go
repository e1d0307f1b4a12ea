package queue_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/natsembed"
	"github.com/heraldhq/herald/internal/queue"
)

// benchQueue opens a queue on an embedded server of its own, stopped when
// the benchmark ends.
func benchQueue(b *testing.B) *queue.Queue {
	b.Helper()
	ctx := context.Background()
	ns, err := natsembed.Start(ctx, natsembed.Options{StoreDir: filepath.Join(b.TempDir(), "js")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ns.Stop(context.Background()) })
	nc, err := ns.Connect()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	q, err := queue.Open(ctx, nc, queue.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return q
}

// BenchmarkPublishDeliveries queues deliveries on embedded JetStream (file
// store, the default sync), one call per delivery versus one call per
// batch of 100 (what the log writer does after each commit); ns/op and
// allocations are per delivery.
func BenchmarkPublishDeliveries(b *testing.B) {
	ctx := context.Background()
	q := benchQueue(b)
	seq := 0
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ds := make([]herald.Delivery, batch)
			b.ReportAllocs()
			for i := 0; i < b.N; i += batch {
				n := min(batch, b.N-i)
				for j := range n {
					seq++
					ds[j] = herald.Delivery{AppID: "app", NotificationID: fmt.Sprintf("0190b7a4-0000-7000-8000-%012d", seq),
						ID: fmt.Sprintf("0190b7a4-0000-8000-8000-%012d", seq), Channel: herald.ChannelEmail, Priority: herald.PriorityNormal}
				}
				if err := q.PublishDeliveries(ctx, ds[:n]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublishEvents appends events to EVENTS on embedded JetStream,
// 20 per call as the log writer publishes a group commit's events: the
// figure is the CPU of the whole process (client and server) per event.
func BenchmarkPublishEvents(b *testing.B) {
	ctx := context.Background()
	q := benchQueue(b)
	const perCall = 20
	evs := make([]herald.Event, perCall)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := heraldtest.CPUTime()
	for i := 0; i < b.N; i += perCall {
		n := min(perCall, b.N-i)
		for j := range n {
			evs[j] = herald.Event{AppID: "app", NotificationID: fmt.Sprintf("0190b7a4-0000-7000-8000-%012d", i+j),
				DeliveryID: fmt.Sprintf("0190b7a4-0000-8000-8000-%012d", i+j), Channel: herald.ChannelEmail,
				Status: herald.StatusSent, Attempt: 1, Provider: "smtp", At: time.Now()}
		}
		if err := q.PublishEvents(ctx, evs[:n]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((heraldtest.CPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
}
