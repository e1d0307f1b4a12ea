//go:build unix

package docs_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
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
	"strings"
	"syscall"
	"testing"
	"time"
)

// backgroundMark starts a block that runs a long-lived process in a
// terminal of its own: the test runs it in the background and stops it at
// the end.
var backgroundMark = regexp.MustCompile(`^# terminal \d+: leave it running\s*$`)

// shBlocks returns the ```sh blocks of a Markdown document, in order.
func shBlocks(md string) []string {
	var blocks []string
	for _, m := range regexp.MustCompile("(?ms)^```sh\n(.*?)^```").FindAllStringSubmatch(md, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestQuickstart runs docs/quickstart.md word for word, as a new user
// would: its ```sh blocks in order with bash, in a fresh copy of the
// repository, the blocks marked "# terminal N: leave it running" in the
// background and the others one after another in one shell (terminal 3).
// Then the receiver must hold the email and the decrypted web push.
func TestQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds herald and runs the quickstart; skipped with -short")
	}
	for _, tool := range []string{"bash", "curl", "jq", "git", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the quickstart needs %s, which is not on PATH (CI=true)", tool)
			}
			t.Skipf("the quickstart needs %s, which is not on PATH; install it to run this test", tool)
		}
	}
	md, err := os.ReadFile("quickstart.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := shBlocks(string(md))
	if len(blocks) < 5 {
		t.Fatalf("quickstart.md has %d sh blocks; the test expects the whole walk-through", len(blocks))
	}

	dir := copyRepo(t)
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	var logs []string
	for i, b := range blocks {
		first, _, _ := strings.Cut(b, "\n")
		if backgroundMark.MatchString(first) {
			log := fmt.Sprintf("background-%d.log", i)
			logs = append(logs, log)
			fmt.Fprintf(&script, "(\n%s) >%s 2>&1 &\n", b, log)
			continue
		}
		fmt.Fprintf(&script, "echo '+++ block %d'\n%s", i, b)
	}
	scriptPath := filepath.Join(t.TempDir(), "quickstart.sh")
	if err := os.WriteFile(scriptPath, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// The ports the document lets a reader change, picked free so that
	// parallel runs do not collide.
	env := map[string]string{"HERALD_HTTP_ADDR": freeAddr(t), "SINK_ADDR": freeAddr(t), "SINK_SMTP": freeAddr(t)}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", scriptPath)
	cmd.Dir = dir
	cmd.Env = cleanEnv(env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Every process the script started is in its process group: stop them
	// all, however the script ended, before the temporary directory goes.
	t.Cleanup(func() { stopGroup(t, cmd.Process.Pid) })
	runErr := cmd.Wait()
	dump := func() {
		t.Logf("script output:\n%s", out.String())
		for _, l := range logs {
			b, _ := os.ReadFile(filepath.Join(dir, l))
			t.Logf("%s:\n%s", l, b)
		}
	}
	if runErr != nil {
		dump()
		t.Fatalf("the quickstart failed: %v", runErr)
	}

	arrivals, err := readArrivals(dir, env["SINK_ADDR"])
	if err != nil {
		dump()
		t.Fatal(err)
	}
	var email, push bool
	for _, a := range arrivals {
		switch a.Kind {
		case "smtp":
			email = email || a.Text == "Welcome"
		case "webpush":
			var p struct{ Title, Body string }
			push = push || (json.Unmarshal([]byte(a.Text), &p) == nil && p.Title == "Hello" && p.Body == "Hello Ada!")
		}
	}
	if !email || !push {
		dump()
		t.Fatalf("the receiver got %+v; want the email (subject Welcome) and the decrypted push (Hello Ada!)", arrivals)
	}
}

type arrival struct {
	Kind string `json:"k"`
	Text string `json:"text"`
}

// readArrivals asks the receiver what arrived, trusting the CA it wrote.
func readArrivals(dir, addr string) ([]arrival, error) {
	ca, err := os.ReadFile(filepath.Join(dir, "sink-ca.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	res, err := c.Get("https://" + addr + "/arrivals")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var page struct{ Arrivals []arrival }
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		return nil, fmt.Errorf("read /arrivals: %w", err)
	}
	return page.Arrivals, nil
}

// copyRepo copies the repository's working tree (tracked files and new
// ones not ignored, as they are now) into a temporary directory: a fresh
// checkout with no build output, data directory or running process of the
// developer's.
func copyRepo(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dst := t.TempDir()
	for name := range strings.SplitSeq(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		st, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := copyFile(src, to, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// cleanEnv is the test's environment without HERALD_* settings (a reader's
// fresh shell has none), plus env.
func cleanEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "HERALD_") || k == "SINK_ADDR" || k == "SINK_SMTP" {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// stopGroup sends SIGTERM to the process group and waits for it to be
// gone (Herald drains and exits), killing it after 20 seconds.
func stopGroup(t *testing.T, pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(20 * time.Second)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			t.Errorf("processes of the quickstart still running after SIGTERM; killing them")
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			time.Sleep(time.Second)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
