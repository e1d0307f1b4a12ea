package faults

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald/internal/heraldtest"
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
	cl.rest = startHerald(t, "tracker-scheduler", append(env, "HERALD_ROLES=tracker,scheduler"))
	for i := range apis {
		cl.api = append(cl.api, startHerald(t, fmt.Sprintf("api%d", i), append(env, "HERALD_ROLES=api")))
	}
	for i := range workers {
		cl.workers = append(cl.workers, startHerald(t, fmt.Sprintf("worker%d", i), append(env, "HERALD_ROLES=worker")))
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

// postgresSchema creates a schema of the test's own in the Postgres at
// HERALD_TEST_POSTGRES_URL, dropped at cleanup, and returns a URL using it.
func postgresSchema(t *testing.T) string {
	t.Helper()
	base := heraldtest.ServiceURL(t, heraldtest.EnvPostgres)
	schema := fmt.Sprintf("faults_%d", mrand.Uint64())
	conn, err := pgx.Connect(context.Background(), base)
	if err != nil {
		t.Fatalf("connect to %s: %v", heraldtest.EnvPostgres, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestKillNineWorker (case d, workers): Herald scaled out on Postgres and
// an external JetStream, two API processes, two workers and a tracker and
// scheduler; one of the two workers is killed with SIGKILL every 3–6 s and
// started again.
func TestKillNineWorker(t *testing.T) {
	count, rate := 3000, 200.0
	if long() {
		count, rate = 20000, 250
	}
	databaseURL := postgresSchema(t)
	natsURL := heraldtest.ServiceURL(t, heraldtest.EnvNATS)
	prov := startProviders(t)
	cl := startCluster(t, databaseURL, natsURL, 1, 2, 2)
	c := newClient(createApp(t, cl.env), cl.baseURL)
	prov.configure(t, c)
	createUsers(t, c, 50)

	f := figures{Case: "d_kill9_worker", Form: form(), Notifications: count}
	led := &ledger{}
	k := startKiller(t, func() *heraldProc { return cl.workers[mrand.IntN(len(cl.workers))] })
	begin := time.Now()
	load{Count: count, Concurrency: 16, Rate: rate, Users: 50, RunID: "d" + runID()}.run(context.Background(), c, led)
	f.LoadSeconds = time.Since(begin).Seconds()
	f.Kills = k.stop()
	settle(t, c, led, prov.rec, 3*time.Minute, &f)
	f.Faults = prov.faultCounts()
	f.Latency = latency(led, prov.rec, "push", "email", "sms")
	check(t, led, &f)
	if f.Kills == 0 {
		t.Errorf("the run ended before the first kill")
	}
}
