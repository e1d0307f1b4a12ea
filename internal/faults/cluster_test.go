package faults

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/clustertest"
)

// cluster is Herald scaled out: API processes, worker processes and one
// process for the tracker and scheduler, sharing Postgres and JetStream.
type cluster struct {
	api, workers []*heraldProc
	rest         *heraldProc
	env          []string
	next         atomic.Uint64
}

// startCluster starts apis API processes, workers worker processes and a
// tracker+scheduler process against databaseURL and natsURL.
func startCluster(t *testing.T, databaseURL, natsURL string, replicas, apis, workers int) *cluster {
	t.Helper()
	env := baseEnv("HERALD_DATABASE_URL="+databaseURL, "HERALD_NATS_URL="+natsURL,
		fmt.Sprintf("HERALD_NATS_REPLICAS=%d", replicas), fmt.Sprintf("HERALD_NATS_PREFIX=f%d", mrand.Uint32()),
		"HERALD_SECRET_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	cl := &cluster{env: env}
	// The first process creates the schema and the streams before the others race to.
	cl.rest = startHerald(t, "tracker-scheduler", append(env, "HERALD_ROLES=tracker,scheduler", "HERALD_DATA_DIR="+t.TempDir()))
	for i := range apis {
		cl.api = append(cl.api, startHerald(t, fmt.Sprintf("api%d", i), append(env, "HERALD_ROLES=api", "HERALD_DATA_DIR="+t.TempDir())))
	}
	for i := range workers {
		// A data dir of its own for each worker's outcome journal, kept across its restarts.
		cl.workers = append(cl.workers, startHerald(t, fmt.Sprintf("worker%d", i), append(env, "HERALD_ROLES=worker", "HERALD_DATA_DIR="+t.TempDir())))
	}
	return cl
}

// baseURL spreads requests over the API processes that are up.
func (cl *cluster) baseURL() string {
	n := cl.next.Add(1)
	for i := range cl.api {
		if u := cl.api[(int(n)+i)%len(cl.api)].baseURL(); u != "" {
			return u
		}
	}
	return ""
}

// disruptUnderLoad runs the load in the background and, on the test's
// goroutine (the cluster helpers may call t.Fatal), calls disrupt every 3–6 s
// until the load is done; it returns the load's duration and how many
// disruptions there were.
func disruptUnderLoad(t *testing.T, c *client, l load, led *ledger, disrupt func()) (time.Duration, int) {
	t.Helper()
	done := make(chan struct{})
	begin := time.Now()
	go func() {
		defer close(done)
		l.run(context.Background(), c, led)
	}()
	n := 0
	for {
		select {
		case <-done:
			return time.Since(begin), n
		case <-time.After(3*time.Second + mrand.N(3*time.Second)):
		}
		select {
		case <-done:
			return time.Since(begin), n
		default:
		}
		disrupt()
		n++
	}
}

// TestCluster (case d): Herald scaled out as deploy/cluster runs it — a
// 3-node JetStream cluster (stream replicas 3), a private PostgreSQL, two
// API processes, two workers and a tracker and scheduler — under load while
// one part after another fails: a worker killed with SIGKILL, a NATS node
// killed and brought back, PostgreSQL restarted.
func TestCluster(t *testing.T) {
	count, rate := 2000, 200.0
	if long() {
		count, rate = 20000, 250
	}
	cases := []struct {
		name    string
		disrupt func(t *testing.T, cl *cluster, nats *clustertest.NATSCluster, pg *clustertest.Postgres) func()
	}{
		{"kill9_worker", func(t *testing.T, cl *cluster, _ *clustertest.NATSCluster, _ *clustertest.Postgres) func() {
			return func() {
				w := cl.workers[mrand.IntN(len(cl.workers))]
				w.kill()
				if err := w.start(); err != nil {
					t.Fatalf("restart after kill -9: %v", err)
				}
			}
		}},
		{"kill9_nats_node", func(t *testing.T, _ *cluster, nats *clustertest.NATSCluster, _ *clustertest.Postgres) func() {
			return func() {
				i := mrand.IntN(3)
				nats.Kill(i)
				time.Sleep(3 * time.Second) // down under load
				nats.Start(i)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				if err := nats.WaitReady(ctx); err != nil {
					t.Fatalf("NATS node %d did not rejoin: %v", i, err)
				}
			}
		}},
		{"restart_postgres", func(t *testing.T, _ *cluster, _ *clustertest.NATSCluster, pg *clustertest.Postgres) func() {
			return func() { pg.Restart() }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pg := clustertest.StartPostgres(t)
			nats := clustertest.StartNATSCluster(t, 3)
			prov := startProviders(t)
			cl := startCluster(t, pg.URL(), nats.URL(), 3, 2, 2)
			c := newClient(createApp(t, cl.env), cl.baseURL)
			prov.configure(t, c)
			createUsers(t, c, 50)

			f := figures{Case: "d_cluster_" + tc.name, Form: form(), Notifications: count}
			led := &ledger{}
			l := load{Count: count, Concurrency: 16, Rate: rate, Users: 50, RunID: "d" + runID()}
			took, n := disruptUnderLoad(t, c, l, led, tc.disrupt(t, cl, nats, pg))
			f.LoadSeconds, f.Disruptions = took.Seconds(), n
			settle(t, c, led, prov.rec, 3*time.Minute, &f)
			f.Faults = prov.faultCounts()
			f.Latency = latency(led, prov.rec, "push", "email", "sms")
			check(t, led, &f)
			if n == 0 {
				t.Errorf("the run ended before the first disruption")
			}
		})
	}
}
