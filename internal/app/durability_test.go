package app_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/provider/providertest"
)

// concurrentOneKey fires 50 identical sends with one Idempotency-Key,
// spread over the given API clients, and checks every answer: 202 with one
// notification id (replays marked) or 409 with Retry-After. It returns the id.
func concurrentOneKey(t *testing.T, clients ...*api) string {
	t.Helper()
	const n = 50
	body := map[string]any{"to": []any{map[string]any{"user_id": "ada"}}, "channels": []string{"email"},
		"content": map[string]any{"subject": "Once", "body": "exactly once"}}
	key := fmt.Sprintf("order-%d", time.Now().UnixNano())
	answers := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i] = clients[i%len(clients)].do("POST", "/v1/notifications", body, "Idempotency-Key", key)
		})
	}
	close(start)
	wg.Wait()

	ids := map[string]bool{}
	fresh, replayed, busy := 0, 0, 0
	for i, r := range answers {
		switch r.status {
		case 202:
			var acc struct{ ID string }
			r.decode(t, &acc)
			ids[acc.ID] = true
			if r.header.Get("Idempotent-Replayed") == "true" {
				replayed++
			} else {
				fresh++
			}
		case 409:
			if r.header.Get("Retry-After") == "" {
				t.Errorf("answer %d: 409 without Retry-After: %s", i, r.body)
			}
			busy++
		default:
			t.Errorf("answer %d: status %d: %s", i, r.status, r.body)
		}
	}
	t.Logf("%d accepted, %d replayed, %d told to retry", fresh, replayed, busy)
	if fresh != 1 || len(ids) != 1 {
		t.Fatalf("%d fresh 202s with ids %v, want exactly one notification", fresh, ids)
	}
	for id := range ids {
		return id
	}
	return ""
}

// notificationCount counts the app's notifications through the API.
func notificationCount(t *testing.T, c *api) int {
	t.Helper()
	var page struct {
		Data []struct{ ID string } `json:"data"`
	}
	c.must(200, "GET", "/v1/notifications?limit=100", nil).decode(t, &page)
	return len(page.Data)
}

// exactlyMessages waits for n messages and checks that no more came, once
// every notification is done.
func exactlyMessages(t *testing.T, smtpd *providertest.SMTPServer, n int) {
	t.Helper()
	smtpd.WaitForMessages(t, n, 30*time.Second)
	if got := len(smtpd.Messages()); got != n {
		t.Fatalf("the SMTP server received %d messages, want exactly %d", got, n)
	}
}

// TestIdempotencyUnderConcurrencyEmbedded: 50 concurrent sends with one key
// to the embedded default make one notification and one email.
func TestIdempotencyUnderConcurrencyEmbedded(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	c := emailSetup(t, smtpd, 3)
	id := concurrentOneKey(t, c)
	if n := c.waitDone(id, 30*time.Second); n.Deliveries[0].Status != "sent" {
		t.Fatalf("delivery = %+v, want sent", n.Deliveries[0])
	}
	if got := notificationCount(t, c); got != 1 {
		t.Errorf("the store holds %d notifications, want 1", got)
	}
	exactlyMessages(t, smtpd, 1)
}

// TestIdempotencyUnderConcurrencyTwoProcesses: the same with two API
// processes on one Postgres, so no in-process map can be what saves it.
func TestIdempotencyUnderConcurrencyTwoProcesses(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := scaledConfig(t)
	a := start(t, cfg)
	cfg2 := cfg
	cfg2.DataDir = t.TempDir()
	b := start(t, cfg2)
	key := newApp(t, a, "shop")
	ca, cb := newAPI(t, a, key), newAPI(t, b, key)
	configureEmail(t, ca, smtpd)
	id := concurrentOneKey(t, ca, cb)
	if n := cb.waitDone(id, 30*time.Second); n.Deliveries[0].Status != "sent" {
		t.Fatalf("delivery = %+v, want sent", n.Deliveries[0])
	}
	if got := notificationCount(t, ca); got != 1 {
		t.Errorf("the store holds %d notifications, want 1", got)
	}
	exactlyMessages(t, smtpd, 1)
}

// TestFullQueuePushesBack: with a tiny NOTIFY and no workers, sends are
// accepted until the queue is full, then answered 503 with Retry-After;
// with workers, every accepted notification is delivered exactly once —
// also those whose publish the full stream refused (the reconciler
// republishes them from the log).
func TestFullQueuePushesBack(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := testConfig(t)
	cfg.QueueMaxMsgs = 5
	cfg.QueueHighWater = 1
	a, c, key := startAPIOnly(t, cfg, smtpd)

	var accepted []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := c.do("POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
			"channels": []string{"email"}, "content": map[string]any{"subject": "Hi", "body": "hello"}})
		if r.status == 503 {
			if r.header.Get("Retry-After") == "" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("503 without Retry-After or problem+json: %v %s", r.header, r.body)
			}
			break
		}
		if r.status != 202 {
			t.Fatalf("send: status %d: %s", r.status, r.body)
		}
		var acc struct{ ID string }
		r.decode(t, &acc)
		accepted = append(accepted, acc.ID)
		if time.Now().After(deadline) {
			t.Fatalf("still accepting after %d sends into a queue of 5", len(accepted))
		}
		time.Sleep(20 * time.Millisecond) // let the sampler see the queue
	}
	if len(accepted) < 5 {
		t.Fatalf("refused after %d sends, want at least the 5 the queue holds", len(accepted))
	}
	t.Logf("accepted %d before the queue pushed back", len(accepted))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// Workers, and room: the same data dir with every role.
	cfg.Roles = strings.Join(app.AllRoles, ",")
	cfg.QueueMaxMsgs = 1000
	b := start(t, cfg)
	c = newAPI(t, b, key)
	for _, id := range accepted {
		if n := c.waitDone(id, 30*time.Second); n.Deliveries[0].Status != "sent" {
			t.Fatalf("delivery of %s = %+v, want sent", id, n.Deliveries[0])
		}
	}
	exactlyMessages(t, smtpd, len(accepted))
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "content": map[string]any{"subject": "Hi", "body": "again"}})
}

// TestLostJetStreamStore: deliveries accepted by a process without
// workers are still in the JetStream store when it stops; the store is then
// deleted, or its message blocks corrupted. A restart with every role
// delivers each of them exactly once, from the log.
func TestLostJetStreamStore(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"deleted", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}},
		{"blocks overwritten", func(t *testing.T, dir string) {
			for _, f := range blockFiles(t, dir) {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				junk := make([]byte, fi.Size())
				for i := range junk {
					junk[i] = byte(i*7 + 13)
				}
				if err := os.WriteFile(f, junk, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"every file overwritten", func(t *testing.T, dir string) {
			blockFiles(t, dir) // there is something to damage
			err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				return os.WriteFile(path, []byte("not what nats-server wrote"), 0o600)
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"blocks truncated", func(t *testing.T, dir string) {
			for _, f := range blockFiles(t, dir) {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(f, fi.Size()/3); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			smtpd := providertest.NewSMTPServer(t)
			cfg := testConfig(t)
			a, c, key := startAPIOnly(t, cfg, smtpd)
			var ids []string
			for range 10 {
				ids = append(ids, sendEmail(t, c))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := a.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, filepath.Join(cfg.DataDir, "jetstream"))

			cfg.Roles = strings.Join(app.AllRoles, ",")
			b := start(t, cfg)
			c = newAPI(t, b, key)
			for _, id := range ids {
				if n := c.waitDone(id, 30*time.Second); n.Deliveries[0].Status != "sent" {
					t.Fatalf("delivery of %s = %+v, want sent", id, n.Deliveries[0])
				}
			}
			exactlyMessages(t, smtpd, len(ids))
			seen := map[string]bool{}
			for _, m := range smtpd.Messages() {
				id := m.MessageID
				if seen[id] {
					t.Errorf("message %s received twice", id)
				}
				seen[id] = true
			}
		})
	}
}

// blockFiles lists the NOTIFY stream's message blocks under the
// JetStream store dir, failing when there are none (the test would prove nothing).
func blockFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".blk") && strings.Contains(path, string(filepath.Separator)+"NOTIFY"+string(filepath.Separator)) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no NOTIFY message blocks under %s", dir)
	}
	return out
}

// cutProxy forwards TCP to a target until cut: then it closes every
// connection and refuses new ones, until restored.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { _ = ln.Close() })
	go p.serve()
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
		go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
	}
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
		clear(p.conns)
	}
}

// TestNoStoreNoSend: with the database cut off, workers handed queued
// deliveries call no provider and pause, and sends are answered 503 with
// Retry-After; once it is back, everything accepted before is delivered
// exactly once.
func TestNoStoreNoSend(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := scaledConfig(t)
	u, err := url.Parse(cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = proxy.ln.Addr().String()

	// The api process reaches the database directly; the one with every
	// role goes through the proxy.
	apiCfg := cfg
	apiCfg.Roles = "api"
	apiCfg.DataDir = t.TempDir()
	front := start(t, apiCfg)
	key := newApp(t, front, "shop")
	c := newAPI(t, front, key)
	configureEmail(t, c, smtpd)
	cfg.DatabaseURL = viaProxy.String()
	back := start(t, cfg)
	cb := newAPI(t, back, key)
	sendEmail(t, cb) // the path through the proxy works
	smtpd.WaitForMessages(t, 1, 30*time.Second)

	proxy.setCut(true)
	var ids []string
	for range 10 {
		ids = append(ids, sendEmail(t, c)) // queued; back's workers get them
	}
	r := cb.do("POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"channels": []string{"email"}, "content": map[string]any{"subject": "Hi", "body": "hello"}})
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("send without a database: status %d, Retry-After %q, want 503 with Retry-After: %s",
			r.status, r.header.Get("Retry-After"), r.body)
	}
	// The workers must have seen the queued deliveries and paused.
	waitMetric(t, back, "herald_worker_store_pauses_total", 1)
	if got := len(smtpd.Messages()); got != 1 {
		t.Fatalf("the provider received %d messages while the database was cut, want none beyond the first", got-1)
	}

	proxy.setCut(false)
	for _, id := range ids {
		if n := c.waitDone(id, 60*time.Second); n.Deliveries[0].Status != "sent" {
			t.Fatalf("delivery of %s = %+v, want sent", id, n.Deliveries[0])
		}
	}
	exactlyMessages(t, smtpd, 1+len(ids))
}

// waitMetric polls a's registry until the counter or gauge name reaches at least min.
func waitMetric(t *testing.T, a *app.App, name string, min float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mfs, err := a.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
				if v >= min {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s did not reach %v", name, min)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestQueueLagPushesBack: with --max-queue-lag and no workers, sends are
// accepted until the API has seen deliveries wait with none delivered for
// longer than the bound, then answered 429 problem+json with a Retry-After (never a 5xx), while a
// replay of an accepted request is still its first answer; with workers,
// the backlog is delivered exactly once and sends are accepted again.
func TestQueueLagPushesBack(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	cfg := testConfig(t)
	cfg.MaxQueueLag = time.Second
	a, c, key := startAPIOnly(t, cfg, smtpd)

	send := func(headers ...string) response {
		return c.do("POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
			"channels": []string{"email"}, "content": map[string]any{"subject": "Hi", "body": "hello"}}, headers...)
	}
	var accepted []string
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		var headers []string
		if i == 0 {
			headers = []string{"Idempotency-Key", "first"}
		}
		r := send(headers...)
		if r.status == 429 {
			secs, err := strconv.Atoi(r.header.Get("Retry-After"))
			if err != nil || secs < 1 || secs > 60 {
				t.Fatalf("429 with Retry-After %q, want 1 to 60 seconds", r.header.Get("Retry-After"))
			}
			var p struct{ Type, Detail string }
			r.decode(t, &p)
			if !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") || !strings.HasSuffix(p.Type, "/rate-limited") {
				t.Fatalf("429 is not a rate-limited problem: %v %s", r.header, r.body)
			}
			t.Logf("refused after %d sends: Retry-After %d: %s", len(accepted), secs, p.Detail)
			break
		}
		if r.status != 202 {
			t.Fatalf("send %d: status %d, want 202 or 429: %s", i, r.status, r.body)
		}
		var acc struct{ ID string }
		r.decode(t, &acc)
		accepted = append(accepted, acc.ID)
		if time.Now().After(deadline) {
			t.Fatalf("still accepting after %d sends with no worker", len(accepted))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := send("Idempotency-Key", "first"); r.status != 202 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay while refusing: status %d, replayed %q, want the first answer", r.status, r.header.Get("Idempotent-Replayed"))
	}
	m := string(c.must(200, "GET", "/metrics", nil).body)
	if !strings.Contains(m, `herald_sends_refused_total{reason="queue_lag"} 1`) {
		t.Errorf("metrics after one refusal lack herald_sends_refused_total{reason=\"queue_lag\"} 1")
	}
	// The lag of a stalled queue is how long it has stood still at the
	// last sample (the refusal saw it grow since): positive and finite.
	if lag := gaugeValue(t, m, "herald_queue_lag_seconds"); !(lag > 0) || math.IsInf(lag, 0) {
		t.Errorf("herald_queue_lag_seconds = %v after a refusal, want a positive, finite lag", lag)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	cfg.Roles = strings.Join(app.AllRoles, ",")
	b := start(t, cfg)
	c = newAPI(t, b, key)
	for _, id := range accepted {
		if n := c.waitDone(id, 30*time.Second); n.Deliveries[0].Status != "sent" {
			t.Fatalf("delivery of %s = %+v, want sent", id, n.Deliveries[0])
		}
	}
	exactlyMessages(t, smtpd, len(accepted))
	// The reconciler may have queued copies of the backlog (dropped by the
	// workers, as already sent); sends are accepted once they are gone.
	deadline = time.Now().Add(30 * time.Second)
	for {
		r := send()
		if r.status == 202 {
			break
		}
		if r.status != 429 || time.Now().After(deadline) {
			t.Fatalf("send while the backlog drains: status %d: %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// gaugeValue reads an unlabelled metric from a Prometheus text exposition.
func gaugeValue(t *testing.T, exposition, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in the metrics", name)
	return 0
}
