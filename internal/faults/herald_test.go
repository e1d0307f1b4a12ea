package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/cli"
)

// The test binary doubles as the herald binary: started with
// HERALD_TEST_RUN_MAIN=1 it runs the CLI, so the tests drive the real
// program in separate processes that can be killed with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("HERALD_TEST_RUN_MAIN") == "1" {
		os.Exit(cli.Main(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// baseEnv is the environment every Herald process of these tests gets:
// short send timeout, retries and reconciler passes, so that a run drains
// in seconds rather than minutes.
func baseEnv(extra ...string) []string {
	env := append(os.Environ(), "HERALD_TEST_RUN_MAIN=1",
		"HERALD_SEND_TIMEOUT=2s", "HERALD_RECONCILE_INTERVAL=250ms", "HERALD_RECONCILE_AFTER=2s",
		"HERALD_RETRY_BACKOFF=200ms", "HERALD_PROVIDER_COOLDOWN=1s", "HERALD_LOG_LEVEL=info",
		// Waits of a few seconds at most, so a run drains soon after its faults end.
		"HERALD_PUSH_RETRY_CAP=5s", "HERALD_SMS_RETRY_CAP=5s", "HERALD_EMAIL_RETRY_CAP=5s",
		"HERALD_ALLOW_PRIVATE_TARGETS=true")
	return append(env, extra...)
}

// startedAddr finds the address in the "herald started" log line.
var startedAddr = regexp.MustCompile(`msg="herald started" addr=(\S+)`)

// heraldProc is one Herald process that a test can kill and start again
// with the same environment; it listens on a port the system picks, so its
// address changes with every start.
type heraldProc struct {
	t    *testing.T
	name string
	env  []string
	dir  string // where its logs go, one file per start

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	addr   string
	starts int
	logs   []string
}

// startHerald starts `herald serve` with env and waits until it is ready.
func startHerald(t *testing.T, name string, env []string) *heraldProc {
	t.Helper()
	p := &heraldProc{t: t, name: name, env: env, dir: t.TempDir()}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s: last log:\n%s", p.name, p.lastLog(4000))
		}
		p.keepLogs(os.Getenv("HERALD_FAULTS_LOGS"))
	})
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs a new process and waits for /readyz; it returns an error
// rather than failing, so a background killer can call it.
func (p *heraldProc) start() error {
	p.mu.Lock()
	p.starts++
	logPath := filepath.Join(p.dir, fmt.Sprintf("%s-%d.log", p.name, p.starts))
	p.logs = append(p.logs, logPath)
	p.mu.Unlock()
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(append([]string(nil), p.env...), "HERALD_HTTP_ADDR=127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	addr := ""
	for addr == "" {
		raw, _ := os.ReadFile(logPath)
		if m := startedAddr.FindSubmatch(raw); m != nil {
			addr = string(m[1])
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before it started:\n%s", p.name, raw)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not start:\n%s", p.name, raw)
		}
	}
	for {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not get ready: %v", p.name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.mu.Lock()
	p.addr = addr
	p.mu.Unlock()
	return nil
}

// kill sends SIGKILL and waits for the process to be gone; it is a no-op
// when the process is not running.
func (p *heraldProc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd, p.addr = nil, ""
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	p.t.Logf("%s killed at %s", p.name, time.Now().Format("15:04:05.000"))
}

// baseURL is where the process answers now, or "" while it is down.
func (p *heraldProc) baseURL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.addr == "" {
		return ""
	}
	return "http://" + p.addr
}

// lastLog returns the end of the newest log file.
func (p *heraldProc) lastLog(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.logs) == 0 {
		return ""
	}
	raw, _ := os.ReadFile(p.logs[len(p.logs)-1])
	if len(raw) > n {
		raw = raw[len(raw)-n:]
	}
	return string(raw)
}

// keepLogs copies every log file of the process (one per start) into
// dir/<test name>, for reading after a run that passed; "" keeps nothing.
func (p *heraldProc) keepLogs(dir string) {
	if dir == "" {
		return
	}
	dst := filepath.Join(dir, strings.ReplaceAll(p.t.Name(), "/", "_"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		p.t.Logf("keep logs of %s: %v", p.name, err)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, src := range p.logs {
		raw, err := os.ReadFile(src)
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, filepath.Base(src)), raw, 0o644)
		}
		if err != nil {
			p.t.Logf("keep logs of %s: %v", p.name, err)
		}
	}
}

// runHerald runs a short herald command to completion and returns its stdout.
func runHerald(t *testing.T, env []string, args ...string) string {
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

// client calls Herald's API with one app's key at whatever address a
// function returns (the current process, or one of several).
type client struct {
	key  string
	base func() string
	http *http.Client
}

func newClient(key string, base func() string) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &client{key: key, base: base, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do sends one request and returns the status, the Retry-After header and the body.
func (c *client) do(ctx context.Context, method, path string, header http.Header, body any) (int, []byte, error) {
	base := c.base()
	if base == "" {
		return 0, nil, fmt.Errorf("herald is down")
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

// must sends a request that has to answer want, retrying while Herald is
// down or restarting (set-up calls may race a kill in cluster cases).
func (c *client) must(t *testing.T, want int, method, path string, body any) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, out, err := c.do(context.Background(), method, path, nil, body)
		if err == nil && status == want {
			return out
		}
		if time.Now().After(deadline) || (err == nil && status != http.StatusServiceUnavailable) {
			t.Fatalf("%s %s: %d %s %v, want %d", method, path, status, out, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createApp creates an app through the CLI against the same store as the
// running processes and returns its admin key.
func createApp(t *testing.T, env []string) string {
	t.Helper()
	var created struct {
		AppID  string `json:"app_id"`
		APIKey string `json:"api_key"`
	}
	out := runHerald(t, env, "apps", "create", "faults", "--json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.APIKey, "hrd_") {
		t.Fatalf("apps create answered %q (%v)", out, err)
	}
	return created.APIKey
}
