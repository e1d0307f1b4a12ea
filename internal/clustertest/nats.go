// Package clustertest runs the clustered deployment's servers for tests:
// a JetStream cluster of real nats-server processes and a private
// PostgreSQL instance, each of which a test can kill, stop and start again.
// Everything lives under t.TempDir() on loopback ports and is killed at
// t.Cleanup; a failed test gets the servers' logs.
//
// Without the binaries a test is skipped with a message saying how to
// enable it; with CI=true it fails instead.
package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvNATSServer names the nats-server binary the tests run.
const EnvNATSServer = "HERALD_TEST_NATS_SERVER"

// minNATS is the oldest nats-server Herald supports.
var minNATS = [3]int{2, 10, 23}

// NATSServerBinary returns the nats-server to run: $HERALD_TEST_NATS_SERVER,
// else .ci/bin/nats-server at the module root, else nats-server on PATH if
// it is at least 2.10.23. Otherwise the test is skipped (failed under CI=true).
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvNATSServer); p != "" {
		return p
	}
	if root, err := moduleRoot(); err == nil {
		p := filepath.Join(root, ".ci", "bin", "nats-server")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	why := "no nats-server on PATH"
	if p, err := exec.LookPath("nats-server"); err == nil {
		out, err := exec.Command(p, "--version").CombinedOutput()
		v, ok := parseVersion(string(out))
		if err == nil && ok && !versionLess(v, minNATS) {
			return p
		}
		why = fmt.Sprintf("%s is %q, older than v2.10.23", p, strings.TrimSpace(string(out)))
	}
	unavailable(t, why+"; set "+EnvNATSServer+" to a nats-server >= 2.10.23 (bash .ci/run builds one into .ci/bin)")
	return ""
}

// unavailable skips the test, or fails it under CI=true.
func unavailable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var versionRE = regexp.MustCompile(`v?(\d+)\.(\d+)\.(\d+)`)

func parseVersion(s string) ([3]int, bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return [3]int{}, false
	}
	var v [3]int
	for i := range v {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	return v, true
}

func versionLess(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// moduleRoot is the nearest directory above the working directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// NATSNode is what a config writer needs to know about one node.
type NATSNode struct {
	Index       int    // 0-based
	Name        string // server_name, unique in the cluster
	ClientPort  int    // on 127.0.0.1
	ClusterPort int    // on 127.0.0.1, for the routes between nodes
	MonitorPort int    // on 127.0.0.1, HTTP: /healthz and /jsz
	StoreDir    string // JetStream store, kept across restarts
	Routes      []int  // every node's cluster port, this one's included
}

// NATSConfig returns the text of a node's config file.
type NATSConfig func(NATSNode) string

// DefaultNATSConfig is a JetStream cluster node named herald-test.
func DefaultNATSConfig(n NATSNode) string {
	routes := make([]string, len(n.Routes))
	for i, p := range n.Routes {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	return fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster {
  name: herald-test
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, n.Name, n.ClientPort, n.MonitorPort, n.StoreDir, n.ClusterPort, strings.Join(routes, ", "))
}

// NATSCluster is a JetStream cluster of nats-server processes.
type NATSCluster struct {
	t     testing.TB
	bin   string
	mu    sync.Mutex
	nodes []*natsNode
}

type natsNode struct {
	NATSNode
	conf, log string
	proc      *process // nil while stopped
}

// StartNATSCluster starts n nodes of DefaultNATSConfig and waits until
// JetStream has a meta leader.
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	return StartNATSClusterConfig(t, n, DefaultNATSConfig)
}

// StartNATSClusterConfig starts n nodes whose config files conf writes, and
// waits until JetStream has a meta leader. conf must make each node listen
// on the given ports (the monitor port too: readiness is read from it) and
// keep its store in StoreDir.
func StartNATSClusterConfig(t testing.TB, n int, conf NATSConfig) *NATSCluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("clustertest: a cluster of %d nodes", n)
	}
	c := &NATSCluster{t: t, bin: NATSServerBinary(t)}
	dir := t.TempDir()
	ports := freePorts(t, 3*n)
	routes := ports[n : 2*n]
	for i := range n {
		node := &natsNode{NATSNode: NATSNode{Index: i, Name: fmt.Sprintf("n%d", i+1),
			ClientPort: ports[i], ClusterPort: ports[n+i], MonitorPort: ports[2*n+i],
			StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1), "jetstream"), Routes: routes}}
		node.conf = filepath.Join(dir, node.Name+".conf")
		node.log = filepath.Join(dir, node.Name+".log")
		if err := os.WriteFile(node.conf, []byte(conf(node.NATSNode)), 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, node)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, node := range c.nodes {
			node.kill()
		}
		if t.Failed() {
			for _, node := range c.nodes {
				t.Logf("nats-server %s log:\n%s", node.Name, tail(node.log))
			}
		}
	})
	for i := range n {
		c.Start(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("clustertest: NATS cluster not ready: %v", err)
	}
	return c
}

// URL is every node's client URL, comma-separated: a nats.go server list.
func (c *NATSCluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.NodeURL(i)
	}
	return strings.Join(urls, ",")
}

// NodeURL is node i's client URL.
func (c *NATSCluster) NodeURL(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.nodes[i].ClientPort)
}

// Kill ends node i with SIGKILL, as a crash would.
func (c *NATSCluster) Kill(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[i].kill()
}

// Stop ends node i with SIGTERM and waits for it to exit (SIGKILL after 30s).
func (c *NATSCluster) Stop(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[i]
	if n.proc == nil {
		return
	}
	if err := n.proc.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		c.t.Errorf("clustertest: stop %s: %v", n.Name, err)
	}
	n.proc = nil
}

// Start starts node i, with the same ports and store it had. It does not
// wait: call WaitReady.
func (c *NATSCluster) Start(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[i]
	if n.proc != nil {
		c.t.Fatalf("clustertest: %s is already running", n.Name)
	}
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== clustertest: starting %s at %s\n", n.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if n.proc, err = startProcess(cmd); err != nil {
		c.t.Fatalf("clustertest: start %s: %v", n.Name, err)
	}
}

// WaitReady waits until every running node answers its health check (which
// in a cluster means it is current with the JetStream meta leader) and
// knows the meta leader.
func (c *NATSCluster) WaitReady(ctx context.Context) error {
	c.mu.Lock()
	var ports []int
	for _, n := range c.nodes {
		if n.proc != nil {
			ports = append(ports, n.MonitorPort)
		}
	}
	c.mu.Unlock()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		last = nil
		for _, p := range ports {
			if err := nodeReady(ctx, client, p); err != nil {
				last = err
				break
			}
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func nodeReady(ctx context.Context, client *http.Client, port int) error {
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	get := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
		if err != nil {
			return nil, err
		}
		res, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		if err != nil {
			return nil, err
		}
		if res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s%s: %d %s", base, path, res.StatusCode, bytes.TrimSpace(body))
		}
		return body, nil
	}
	if _, err := get("/healthz"); err != nil {
		return err
	}
	body, err := get("/jsz")
	if err != nil {
		return err
	}
	var jsz struct {
		Meta *struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if err := json.Unmarshal(body, &jsz); err != nil {
		return fmt.Errorf("%s/jsz: %w", base, err)
	}
	if jsz.Meta == nil || jsz.Meta.Leader == "" {
		return fmt.Errorf("%s: no JetStream meta leader yet", base)
	}
	return nil
}

func (n *natsNode) kill() {
	if n.proc == nil {
		return
	}
	n.proc.kill()
	n.proc = nil
}

// process is a started server whose exit one goroutine waits for.
type process struct {
	cmd   *exec.Cmd
	group bool          // kill the whole process group (it has one of its own)
	done  chan struct{} // closed when the process has exited
	err   error         // its exit status, once done is closed
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	p.group = cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop signals the process and waits for it to exit, killing it after timeout.
func (p *process) stop(sig syscall.Signal, timeout time.Duration) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("did not exit within %s of %v; killed", timeout, sig)
	}
}

// kill sends SIGKILL (to the process group if it has its own) and waits.
func (p *process) kill() {
	if p.group {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	} else {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
	if p.group {
		// The children (PostgreSQL's backends) die a moment after the
		// leader; a restart before they are gone finds their shared memory.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if err := syscall.Kill(-p.cmd.Process.Pid, 0); errors.Is(err, syscall.ESRCH) {
				return
			}
		}
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// tail is the end of a log file, enough to see why a server failed.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 32 << 10
	if len(b) > max {
		return "…\n" + string(b[len(b)-max:])
	}
	return string(b)
}
