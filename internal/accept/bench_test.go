package accept_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/accept"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/logwriter"
	"github.com/heraldhq/herald/internal/natsembed"
	"github.com/heraldhq/herald/internal/queue"
	"github.com/heraldhq/herald/internal/store/postgres"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

// pipeline is the accept path: a real store behind the group-commit
// writer, and embedded JetStream.
type pipeline struct {
	svc   *accept.Service
	store herald.Store
	appID string
}

// openStore opens the store a benchmark runs on: SQLite in a temporary
// directory, or Postgres in a schema of its own.
type openStore func(tb testing.TB, dir string) herald.Store

func openSQLite(tb testing.TB, dir string) herald.Store {
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "herald.db"))
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func openPostgres(tb testing.TB, _ string) herald.Store {
	url := heraldtest.ServiceURL(tb, heraldtest.EnvPostgres)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), url); err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			_ = c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	st, err := postgres.Open(ctx, url+sep+"search_path="+schema)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func newPipeline(tb testing.TB, withQueue bool) *pipeline {
	return newPipelineOn(tb, withQueue, openSQLite)
}

func newPipelineOn(tb testing.TB, withQueue bool, open openStore) *pipeline {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	st := open(tb, dir)
	ns, err := natsembed.Start(ctx, natsembed.Options{StoreDir: filepath.Join(dir, "js")})
	if err != nil {
		tb.Fatal(err)
	}
	nc, err := ns.Connect()
	if err != nil {
		tb.Fatal(err)
	}
	q, err := queue.Open(ctx, nc, queue.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	var pub logwriter.Publisher
	if withQueue {
		pub = q
	}
	var commits, reqs atomic.Int64
	w := logwriter.New(st, logwriter.Options{Publisher: pub, Observe: func(n int, _ time.Duration, _ error) {
		commits.Add(1)
		reqs.Add(int64(n))
	}})
	if b, ok := tb.(*testing.B); ok {
		b.Cleanup(func() {
			if c := commits.Load(); c > 0 {
				b.ReportMetric(float64(reqs.Load())/float64(c), "requests/commit")
			}
		})
	}
	if err := w.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = w.Stop(ctx)
		nc.Close()
		_ = ns.Stop(ctx)
		_ = st.Close()
	})
	appID := "bench-app"
	if err := st.CreateApp(ctx, herald.App{ID: appID, Name: "bench", CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}); err != nil {
		tb.Fatal(err)
	}
	return &pipeline{svc: accept.New(st, w, accept.Options{}), store: st, appID: appID}
}

var seq atomic.Int64

func request() herald.SendRequest {
	n := seq.Add(1)
	return herald.SendRequest{
		To:       []herald.Recipient{{Email: fmt.Sprintf("user%d@example.com", n)}},
		Channels: []herald.Channel{herald.ChannelEmail},
		Content:  herald.Content{Subject: "Your code", Body: fmt.Sprintf("Code %d", n)},
	}
}

// BenchmarkAccept measures accepted notifications per second, each one
// durable in SQLite (synchronous=FULL) before Send returns, with one sender
// at a time and with 64 concurrent senders whose writes the group commit
// shares out over one transaction and one fsync. queue=on also queues every
// delivery and event on embedded JetStream after each commit, as herald
// serve does; that work is off the request's path but shares the CPU.
func BenchmarkAccept(b *testing.B) {
	for _, queued := range []bool{false, true} {
		for _, senders := range []int{1, 64} {
			name := fmt.Sprintf("queue=%s/senders=%d", map[bool]string{false: "off", true: "on"}[queued], senders)
			b.Run(name, func(b *testing.B) { benchmarkAccept(b, queued, senders) })
		}
	}
}

// BenchmarkAcceptPostgres is BenchmarkAccept's queue=off case on
// PostgreSQL (HERALD_TEST_POSTGRES_URL), whose commits fsync too.
func BenchmarkAcceptPostgres(b *testing.B) {
	for _, senders := range []int{1, 64} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			benchmarkAcceptOn(b, newPipelineOn(b, false, openPostgres), senders)
		})
	}
}

func benchmarkAccept(b *testing.B, queued bool, senders int) {
	benchmarkAcceptOn(b, newPipeline(b, queued), senders)
}

func benchmarkAcceptOn(b *testing.B, p *pipeline, senders int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, _, err := p.svc.Send(ctx, p.appID, request()); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "notifications/s")
}

// TestAcceptIsDurableAndQueued checks the pipeline the benchmark measures:
// concurrent sends all land in the log with their deliveries.
func TestAcceptIsDurableAndQueued(t *testing.T) {
	p := newPipeline(t, true)
	ctx := context.Background()
	ids := make(chan string, 64)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, _, err := p.svc.Send(ctx, p.appID, request())
			if err != nil {
				t.Error(err)
				return
			}
			ids <- a.ID
		}()
	}
	wg.Wait()
	close(ids)
	n := 0
	for id := range ids {
		ds, err := p.store.ListDeliveries(ctx, p.appID, id)
		if err != nil || len(ds) != 1 {
			t.Fatalf("notification %s: %d deliveries, %v", id, len(ds), err)
		}
		n++
	}
	if n != 64 {
		t.Fatalf("%d notifications accepted, want 64", n)
	}
}
