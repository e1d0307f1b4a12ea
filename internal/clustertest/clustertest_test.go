package clustertest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/internal/clustertest"
)

// TestNATSClusterSurvivesOneNode: a stream replicated on all three nodes
// keeps taking publishes with one node killed, and the node rejoins and
// catches up after Start.
func TestNATSClusterSurvivesOneNode(t *testing.T) {
	t.Parallel()
	c := clustertest.StartNATSCluster(t, 3)
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			// A publish may meet a leader election: retry it, deduplicated by its id.
			for {
				// Each try gets its own deadline: a request caught by a
				// reconnect is never answered.
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := js.Publish(pctx, "s.x", []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint(i)))
				pcancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	publish(0, 10)

	// Kill whichever node leads the stream, the hardest case.
	info, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	leader := streamLeader(t, info)
	c.Kill(leader)
	publish(10, 20)

	c.Start(leader)
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	// The restarted node catches up: the stream reports all three replicas current.
	for {
		s, err := js.Stream(ctx, "S")
		if err == nil && s.CachedInfo().State.Msgs == 20 && allCurrent(s.CachedInfo().Cluster, 2) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("stream did not recover: %v %+v", err, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// And it serves clients on its own again.
	nc1, err := nats.Connect(c.NodeURL(leader))
	if err != nil {
		t.Fatal(err)
	}
	defer nc1.Close()
	js1, _ := jetstream.New(nc1)
	// Its routes may still be settling: retry until the test's deadline.
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js1.Publish(pctx, "s.x", []byte("20"), jetstream.WithMsgID("20"))
		pcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("publish through the restarted node: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// streamLeader is the index of the node leading the stream (nodes are named n1…nN).
func streamLeader(t *testing.T, s jetstream.Stream) int {
	t.Helper()
	ci := s.CachedInfo().Cluster
	var i int
	if ci == nil || ci.Leader == "" {
		t.Fatalf("stream has no leader: %+v", ci)
	}
	if _, err := fmt.Sscanf(ci.Leader, "n%d", &i); err != nil {
		t.Fatalf("leader %q: %v", ci.Leader, err)
	}
	return i - 1
}

func allCurrent(ci *jetstream.ClusterInfo, followers int) bool {
	if ci == nil || ci.Leader == "" || len(ci.Replicas) != followers {
		return false
	}
	for _, r := range ci.Replicas {
		if !r.Current || r.Offline {
			return false
		}
	}
	return true
}

// TestPostgresKeepsDataAcrossRestartAndCrash: a committed row survives a
// fast shutdown and a SIGKILL of every server process (fsync is on).
func TestPostgresKeepsDataAcrossRestartAndCrash(t *testing.T) {
	t.Parallel()
	pg := clustertest.StartPostgres(t)
	ctx := t.Context()
	exec := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, pg.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	count := func() int {
		t.Helper()
		conn, err := pgx.Connect(ctx, pg.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM kept").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	exec("CREATE TABLE kept (id int PRIMARY KEY)")
	exec("INSERT INTO kept VALUES (1)")
	pg.Restart()
	if n := count(); n != 1 {
		t.Fatalf("after a restart: %d rows, want 1", n)
	}
	exec("INSERT INTO kept VALUES (2)")
	pg.Kill()
	if _, err := pgx.Connect(ctx, pg.URL()); err == nil {
		t.Fatal("connected to a killed server")
	}
	pg.Start()
	if n := count(); n != 2 {
		t.Fatalf("after a crash: %d rows, want 2", n)
	}
	pg.Stop()
	pg.Stop() // safe twice
}
