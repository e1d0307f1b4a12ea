package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/clustertest"
	"github.com/heraldhq/herald/internal/provider/providertest"
)

// deployDir holds the documented clustered deployment (docs/cluster.md).
const deployDir = "../../deploy/cluster"

// deployNATSConfig is node n's deploy/cluster/nats-N.conf with the ports and
// store path the file documents replaced by the test's own.
func deployNATSConfig(t *testing.T) clustertest.NATSConfig {
	return func(n clustertest.NATSNode) string {
		raw, err := os.ReadFile(filepath.Join(deployDir, fmt.Sprintf("nats-%d.conf", n.Index+1)))
		if err != nil {
			t.Fatal(err)
		}
		conf := string(raw)
		subst := map[string]string{
			addr(4222 + n.Index): addr(n.ClientPort),
			addr(8222 + n.Index): addr(n.MonitorPort),
			fmt.Sprintf("%q", fmt.Sprintf("data/nats-%d", n.Index+1)): strconv.Quote(n.StoreDir),
		}
		for j, p := range n.Routes {
			subst[addr(6222+j)] = addr(p)
		}
		var pairs []string
		for from, to := range subst {
			if !strings.Contains(conf, from) {
				t.Fatalf("nats-%d.conf does not contain %s: keep it in step with this test", n.Index+1, from)
			}
			pairs = append(pairs, from, to)
		}
		return strings.NewReplacer(pairs...).Replace(conf)
	}
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// TestClusteredDeployment runs deploy/cluster as documented — a 3-node
// JetStream cluster from its nats-*.conf, two API processes, two workers
// and a tracker/scheduler from its role configs, on a private PostgreSQL —
// sends through both API processes, kills a worker and a NATS node midway,
// checks that every notification reaches the SMTP server exactly once, and
// restarts the NATS node.
func TestClusteredDeployment(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 3 nats-servers, PostgreSQL and 5 Herald processes")
	}
	smtpd := providertest.NewSMTPServer(t)
	pg := clustertest.StartPostgres(t)
	nats := clustertest.StartNATSClusterConfig(t, 3, deployNATSConfig(t))

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	// The role configs point at the documented addresses; the environment,
	// which wins over the file, points them at this test's servers.
	role := func(name string) []string {
		return heraldEnv(t.TempDir(), "HERALD_CONFIG="+filepath.Join(deployDir, name+".yaml"),
			"HERALD_DATABASE_URL="+pg.URL(), "HERALD_NATS_URL="+nats.URL(),
			"HERALD_SECRET_KEY="+base64.StdEncoding.EncodeToString(key), "HERALD_WORKERS=4")
	}
	start := func(name, roles string) *proc {
		t.Helper()
		p := serve(t, role(name))
		for _, want := range []string{"roles=" + roles, "store=postgres", "queue=external-jetstream", "nats-replicas=3"} {
			if !strings.Contains(p.stderr.String(), want) {
				t.Fatalf("%s.yaml: no %s in the log:\n%s", name, want, p.stderr.String())
			}
		}
		return p
	}
	tracker := start("tracker", `"[tracker scheduler]"`)
	api := []*proc{start("api-1", "[api]"), start("api-2", "[api]")}
	workers := []*proc{start("worker-1", "[worker]"), start("worker-2", "[worker]")}
	appKey := setUp(t, api[0], role("api-1"), smtpd.Addr())

	const total = 30
	ids := make([]string, 0, total)
	for i := range total {
		switch i {
		case total / 3:
			kill(t, workers[0]) // its in-flight sends come back to worker-2 or the reconciler
		case total / 2:
			nats.Kill(1) // the streams keep a majority on the other two nodes
		}
		ids = append(ids, send(t, api[i%2], appKey))
	}
	for _, id := range ids {
		api[1].waitSent(t, appKey, id)
	}

	// Exactly once: one mail per notification, told apart by the Message-ID
	// derived from the delivery id. A repeat is allowed only where the log
	// says a killed worker may have sent before it could record the outcome.
	smtpd.WaitForMessages(t, total, 30*time.Second)
	time.Sleep(2500 * time.Millisecond) // several reconciler passes (200ms, 1s staleness): nothing more may come
	mails := smtpd.Messages()
	byID := map[string]int{}
	for _, m := range mails {
		byID[m.MessageID]++
	}
	possibleDup := 0
	for _, id := range ids {
		var n struct{ Deliveries []deliveryView }
		if err := json.Unmarshal(api[0].call(t, appKey, "GET", "/v1/notifications/"+id, nil, 200), &n); err != nil {
			t.Fatal(err)
		}
		for _, e := range n.Deliveries[0].Timeline {
			if strings.HasPrefix(e.Detail, "possible_duplicate") {
				possibleDup++
			}
		}
	}
	if len(byID) != total {
		t.Errorf("%d distinct Message-IDs over %d mails, want %d", len(byID), len(mails), total)
	}
	if extra := len(mails) - len(byID); extra > possibleDup {
		t.Errorf("%d repeated mails, but the log records only %d possible duplicates", extra, possibleDup)
	}
	t.Logf("%d notifications, %d mails, %d attempts marked possible_duplicate", total, len(mails), possibleDup)

	// The killed NATS node rejoins; the rest of the deployment stops cleanly.
	nats.Start(1)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := nats.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(append([]*proc{tracker}, api...), workers[1]) {
		stopGracefully(t, p)
	}
}
