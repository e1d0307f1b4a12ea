package clustertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvPostgresBin names the directory of PostgreSQL's initdb and postgres.
const EnvPostgresBin = "HERALD_TEST_POSTGRES_BIN"

// Postgres is a private PostgreSQL instance: its own data directory under
// t.TempDir(), trust authentication on 127.0.0.1 only, fsync on.
type Postgres struct {
	t        testing.TB
	bin      string
	dataDir  string
	log      string
	port     int
	cred     *syscall.Credential // the postgres user's, when the test runs as root
	mu       sync.Mutex
	postgres *process // nil while stopped
}

// StartPostgres initialises and starts a private PostgreSQL instance. The
// binaries come from $HERALD_TEST_POSTGRES_BIN, else PATH, else the newest
// /usr/lib/postgresql/*/bin; without them the test is skipped (failed
// under CI=true). Run as root, the server runs as the postgres user, since
// PostgreSQL refuses to run as root.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	p := &Postgres{t: t, bin: postgresBin(t)}
	if os.Getuid() == 0 {
		p.cred = postgresUser(t)
	}
	dir := t.TempDir()
	p.dataDir = filepath.Join(dir, "pgdata")
	p.log = filepath.Join(dir, "postgres.log")
	if p.cred != nil {
		// The postgres user must reach the data dir: let it through the
		// test's own temporary directories (traverse only) and own the rest.
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Mkdir(p.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{p.dataDir, p.log} {
			if f == p.log {
				if err := os.WriteFile(f, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chown(f, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	initdb := p.command("initdb", "-D", p.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("clustertest: initdb: %v\n%s", err, out)
	}
	// Trust, but only over loopback TCP and the private socket directory.
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(p.dataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	p.port = freePorts(t, 1)[0]
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"+
		"fsync = on\nsynchronous_commit = on\nfull_page_writes = on\nmax_connections = 200\n", p.port, p.dataDir)
	f, err := os.OpenFile(filepath.Join(p.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.kill()
		if t.Failed() {
			t.Logf("postgres log:\n%s", tail(p.log))
		}
	})
	p.Start()
	return p
}

// URL is the instance's postgres database as the postgres superuser.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// Start starts the server on its port and data directory and waits until it
// accepts connections (crash recovery included).
func (p *Postgres) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.postgres != nil {
		p.t.Fatal("clustertest: postgres is already running")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		exited, err := p.startOnce(ctx)
		if err == nil {
			return
		}
		// After a Kill, a backend that was still ending holds the old shared
		// memory for a moment and the new postmaster refuses to start: try again.
		if exited && strings.Contains(err.Error(), "pre-existing shared memory block") && ctx.Err() == nil {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		p.t.Fatalf("clustertest: %v", err)
	}
}

// startOnce starts the postmaster and waits until it accepts connections;
// exited says whether it ended on its own, and the error then carries the
// log lines it wrote.
func (p *Postgres) startOnce(ctx context.Context) (exited bool, err error) {
	var offset int64
	if fi, err := os.Stat(p.log); err == nil {
		offset = fi.Size()
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return false, err
	}
	defer logf.Close()
	cmd := p.command("postgres", "-D", p.dataDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if p.postgres, err = startProcess(cmd); err != nil {
		return false, fmt.Errorf("start postgres: %w", err)
	}
	for {
		conn, err := pgx.Connect(ctx, p.URL())
		if err == nil {
			conn.Close(ctx)
			return false, nil
		}
		select {
		case <-p.postgres.done:
			p.postgres = nil
			return true, fmt.Errorf("postgres exited at start-up:\n%s", logFrom(p.log, offset))
		case <-ctx.Done():
			return false, fmt.Errorf("postgres not ready: %v\n%s", err, tail(p.log))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logFrom returns what the file holds past offset.
func logFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return tail(path)
	}
	return string(b[offset:])
}

// Stop shuts the server down fast (SIGINT: sessions are ended, then a
// checkpoint) and waits for it to exit.
func (p *Postgres) Stop() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.postgres == nil {
		return
	}
	if err := p.postgres.stop(syscall.SIGINT, 60*time.Second); err != nil {
		p.t.Errorf("clustertest: stop postgres: %v", err)
	}
	p.postgres = nil
}

// Kill ends the postmaster and every backend with SIGKILL at once, as a
// crash of the machine would; the next Start runs crash recovery. (Killing
// the postmaster alone would leave its backends holding the shared memory,
// and a new postmaster would refuse to start until they noticed.)
func (p *Postgres) Kill() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kill()
}

// Restart is Stop then Start.
func (p *Postgres) Restart() {
	p.t.Helper()
	p.Stop()
	p.Start()
}

func (p *Postgres) kill() {
	if p.postgres == nil {
		return
	}
	p.postgres.kill()
	p.postgres = nil
}

// command runs a PostgreSQL binary as the postgres user when needed, in a
// process group of its own so that Kill reaches the backends too.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if p.cred != nil {
		cmd.Dir = p.dataDir
	}
	return cmd
}

// postgresBin finds the directory holding initdb and postgres.
func postgresBin(t testing.TB) string {
	t.Helper()
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(EnvPostgresBin); d != "" {
		if !has(d) {
			unavailable(t, EnvPostgresBin+"="+d+" holds no initdb and postgres")
		}
		return d
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if has(d) {
			return d
		}
	}
	unavailable(t, "no PostgreSQL initdb and postgres found; install PostgreSQL or set "+EnvPostgresBin+" to their directory (e.g. /usr/lib/postgresql/15/bin)")
	return ""
}

func postgresUser(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		unavailable(t, "running as root and there is no postgres user to run PostgreSQL as: "+err.Error())
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("clustertest: postgres user has uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}
