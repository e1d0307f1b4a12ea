package queue_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald"
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
