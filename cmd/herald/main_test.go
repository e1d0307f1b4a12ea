package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/provider/providertest"
)

// The test binary doubles as the herald binary: started with
// HERALD_TEST_RUN_MAIN=1 it runs main, so the crash tests drive the real
// program in separate processes that can be killed.
func TestMain(m *testing.M) {
	if os.Getenv("HERALD_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

type proc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
}

// syncBuffer collects a process's log while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startedAddr finds the address in the "herald started" log line.
var startedAddr = regexp.MustCompile(`msg="herald started" addr=(\S+)`)

func heraldEnv(dataDir string, extra ...string) []string {
	env := append(os.Environ(), "HERALD_TEST_RUN_MAIN=1", "HERALD_DATA_DIR="+dataDir,
		"HERALD_SEND_TIMEOUT=2s", "HERALD_RECONCILE_INTERVAL=200ms", "HERALD_RECONCILE_AFTER=1s",
		"HERALD_RETRY_BACKOFF=200ms", "HERALD_LOG_LEVEL=info")
	return append(env, extra...)
}

// run runs a short herald command to completion and returns its stdout.
func run(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("herald %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// serve starts `herald serve` on a port the system picks — so no other
// test's server can take it first — and waits until it is ready.
func serve(t *testing.T, env []string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(os.Args[0], "serve"), stderr: &syncBuffer{}}
	p.cmd.Env = append(env, "HERALD_HTTP_ADDR=127.0.0.1:0")
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("herald log:\n%s", p.stderr.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for p.addr == "" {
		if m := startedAddr.FindStringSubmatch(p.stderr.String()); m != nil {
			p.addr = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald did not start:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		res, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald did not get ready: %v\n%s", err, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) call(t *testing.T, key, method, path string, body any, wantStatus int) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, "http://"+p.addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != wantStatus {
		t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, out, wantStatus)
	}
	return out
}

type deliveryView struct {
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Timeline []struct {
		Status string `json:"status"`
		Detail string `json:"detail"`
	} `json:"timeline"`
}

func (p *proc) waitSent(t *testing.T, key, id string) deliveryView {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		var n struct{ Deliveries []deliveryView }
		if err := json.Unmarshal(p.call(t, key, "GET", "/v1/notifications/"+id, nil, 200), &n); err != nil {
			t.Fatal(err)
		}
		if len(n.Deliveries) == 1 && n.Deliveries[0].Status == "sent" {
			return n.Deliveries[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("notification %s not sent: %+v", id, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setUp creates an app (through the CLI, while serve runs on the same data
// dir), a user and an SMTP provider, and returns the app's key.
func setUp(t *testing.T, p *proc, env []string, smtpAddr string) string {
	t.Helper()
	var created struct {
		AppID  string `json:"app_id"`
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(run(t, env, "apps", "create", "shop", "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if created.AppID == "" || !strings.HasPrefix(created.APIKey, "hrd_") {
		t.Fatalf("apps create answered %+v", created)
	}
	p.call(t, created.APIKey, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com"}, 201)
	p.call(t, created.APIKey, "PUT", "/v1/providers/email", []map[string]any{{"kind": "smtp",
		"settings": map[string]any{"endpoint": smtpAddr, "from": "shop@example.com", "tls": "none"}}}, 200)
	return created.APIKey
}

func send(t *testing.T, p *proc, key string) string {
	t.Helper()
	var acc struct{ ID string }
	body := map[string]any{"to": []any{map[string]any{"user_id": "ada"}}, "channels": []string{"email"},
		"content": map[string]any{"subject": "Your code", "body": "123456"}}
	if err := json.Unmarshal(p.call(t, key, "POST", "/v1/notifications", body, 202), &acc); err != nil {
		t.Fatal(err)
	}
	return acc.ID
}

func kill(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// TestKilledAfterAcceptDeliversExactlyOnce: a process that answered 202 and
// was then killed (SIGKILL) before any worker saw the notification still
// delivers it exactly once after a restart.
func TestKilledAfterAcceptDeliversExactlyOnce(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	dir := t.TempDir()
	// The first process only accepts, so the kill lands before delivery.
	p1 := serve(t, heraldEnv(dir, "HERALD_ROLES=api,tracker"))
	key := setUp(t, p1, heraldEnv(dir), smtpd.Addr())
	id := send(t, p1, key)
	kill(t, p1)

	p2 := serve(t, heraldEnv(dir))
	d := p2.waitSent(t, key, id)
	if d.Attempts != 1 {
		t.Errorf("attempts = %d, want 1", d.Attempts)
	}
	assertOneMail(t, smtpd, p2)
	stopGracefully(t, p2)
}

// TestKilledWhileRunningAllRolesDeliversExactlyOnce kills a process running
// every role right after its 202, wherever the delivery happens to be.
func TestKilledWhileRunningAllRolesDeliversExactlyOnce(t *testing.T) {
	smtpd := providertest.NewSMTPServer(t)
	dir := t.TempDir()
	p1 := serve(t, heraldEnv(dir))
	key := setUp(t, p1, heraldEnv(dir), smtpd.Addr())
	id := send(t, p1, key)
	kill(t, p1)

	p2 := serve(t, heraldEnv(dir))
	p2.waitSent(t, key, id)
	assertOneMail(t, smtpd, p2)
	stopGracefully(t, p2)
}

// assertOneMail checks that exactly one message arrived, and still only one
// after several reconciler passes.
func assertOneMail(t *testing.T, smtpd *providertest.SMTPServer, p *proc) {
	t.Helper()
	smtpd.WaitForMessages(t, 1, 10*time.Second)
	// Let the reconciler run a few passes (200ms each, 1s staleness): nothing may be sent again.
	time.Sleep(2500 * time.Millisecond)
	if n := len(smtpd.Messages()); n != 1 {
		t.Fatalf("SMTP server got %d messages, want exactly 1\n%s", n, p.stderr.String())
	}
}

// stopGracefully sends SIGTERM and expects a clean exit.
func stopGracefully(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("herald exited with %v after SIGTERM\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("herald did not exit within 30s of SIGTERM")
	}
	if !strings.Contains(p.stderr.String(), "herald stopped cleanly") {
		t.Errorf("no clean-stop line in the log:\n%s", p.stderr.String())
	}
}
