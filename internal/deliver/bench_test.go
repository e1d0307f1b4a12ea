package deliver_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/deliver"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/logwriter"
	logprovider "github.com/heraldhq/herald/internal/provider/log"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

// BenchmarkDeliver runs each delivery's three log writes and the worker's
// reads as herald serve does on the embedded default, without the queue
// and HTTP: a notification for one user is accepted through the
// group-commit writer into SQLite (synchronous=FULL), then Handle reads
// the delivery, claims it, sends it through the log provider (which
// answers at once) and commits the outcome. b.N counts deliveries, spread
// over 64 concurrent workers, so the group commit batches as it does
// under load. The figure is the log's and the worker's cost per delivery.
func BenchmarkDeliver(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "h.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	var commits, requests atomic.Int64
	w := logwriter.New(st, logwriter.Options{Observe: func(n int, _ time.Duration, _ error) {
		commits.Add(1)
		requests.Add(int64(n))
	}})
	if err := w.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Stop(ctx) })
	p, err := logprovider.New(nil, herald.ProviderEnv{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	worker := deliver.New(st, w, oneProvider{p}, deliver.Options{})
	const appID, users, workers = "app-1", 64, 64
	for i := range users {
		if _, _, err := st.PutUser(ctx, herald.User{AppID: appID, ID: fmt.Sprintf("user-%d", i),
			Email: fmt.Sprintf("user-%d@example.com", i)}); err != nil {
			b.Fatal(err)
		}
	}

	// The queue hands handlers a context that a stop may cancel; so does this.
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	b.ResetTimer()
	cpu0 := heraldtest.CPUTime()
	for g := range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				d, err := accept(hctx, w, appID, fmt.Sprintf("user-%d", g%users))
				if err != nil {
					errs <- err
					return
				}
				if v := worker.Handle(hctx, appID, d.ID, time.Now()); v.Action != deliver.Ack {
					errs <- fmt.Errorf("delivery %s: verdict %+v, want ack", d.ID, v)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((heraldtest.CPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/delivery")
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	if c := commits.Load(); c > 0 {
		b.ReportMetric(float64(requests.Load())/float64(c), "requests/commit")
	}
}

// accept writes one notification with one email delivery, as the accept
// role does, through the group-commit writer.
func accept(ctx context.Context, w *logwriter.Writer, appID, userID string) (herald.Delivery, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	nid := uuid.Must(uuid.NewV7()).String()
	d := herald.Delivery{AppID: appID, ID: uuid.Must(uuid.NewV7()).String(), NotificationID: nid, UserID: userID,
		Channel: herald.ChannelEmail, Priority: herald.PriorityNormal, Address: userID + "@example.com",
		Status: herald.StatusAccepted, CreatedAt: now, UpdatedAt: now, NextAttemptAt: now}
	err := w.Write(ctx, &herald.Batch{Notifications: []herald.NewNotification{{
		Notification: herald.Notification{AppID: appID, ID: nid, Category: "transactional", Priority: herald.PriorityNormal,
			Content: herald.Content{Subject: "Hi", Body: "hello"}, CreatedAt: now},
		Deliveries: []herald.Delivery{d},
		Events:     []herald.Event{{AppID: appID, NotificationID: nid, DeliveryID: d.ID, Channel: d.Channel, Status: herald.StatusAccepted, At: now}},
	}}})
	return d, err
}
