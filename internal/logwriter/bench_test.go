package logwriter_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/logwriter"
)

// BenchmarkSteadyWrites offers the writer requests at a steady rate, as
// herald serve's accepts, claims and outcomes arrive under load (here 4,000
// a second, each one notification into SQLite with synchronous=FULL),
// rather than as fast as it takes them: then a commit carries what arrived
// since the one before, and its fixed cost is shared by that many. The
// figure is the process's CPU per request, with the writer taking what is
// waiting (interval=0) and with it spacing busy commits (Interval).
func BenchmarkSteadyWrites(b *testing.B) {
	const rate = 4000 // requests per second
	for _, interval := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond} {
		b.Run(fmt.Sprintf("interval=%s", interval), func(b *testing.B) {
			s := openStore(b)
			var o observer
			w := startWriter(b, s, logwriter.Options{Interval: interval, Observe: o.observe})
			ctx := context.Background()
			var wg sync.WaitGroup
			b.ResetTimer()
			cpu0 := heraldtest.CPUTime()
			start := time.Now()
			for i := range b.N {
				if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
					time.Sleep(d)
				}
				wg.Go(func() {
					if err := w.Write(ctx, batchOf(notification(fmt.Sprintf("n-%d", i), now(), herald.StatusAccepted))); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64((heraldtest.CPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/request")
			var reqs int
			obs := o.all()
			for _, c := range obs {
				reqs += c.requests
			}
			b.ReportMetric(float64(reqs)/float64(len(obs)), "requests/commit")
		})
	}
}
