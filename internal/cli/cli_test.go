package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/apikey"
	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

type result struct {
	code           int
	stdout, stderr string
}

// run runs Main with an environment of env only, so the real one cannot
// leak in. A command that unexpectedly starts serving is stopped after a
// while instead of hanging the test.
func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := Main(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
}

// openStore opens the SQLite store the CLI writes in dir.
func openStore(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(dir, "herald.db"))
	if err != nil {
		t.Fatalf("open the CLI's store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

func TestUsageAndVersion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args   []string
		code   int
		stdout string // a part of it; "" means stdout stays empty
		stderr string // a part of it; "" means stderr stays empty
	}{
		{nil, 2, "", "Usage:"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"version"}, 0, "herald " + Version, ""},
		{[]string{"--version"}, 0, "herald " + Version, ""},
		{[]string{"help"}, 0, "Usage:", ""},
		{[]string{"serve", "-h"}, 0, "", "HERALD_WORKERS"}, // every flag with its environment twin
	} {
		t.Run(strings.Join(append([]string{"herald"}, tt.args...), " "), func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, tt.args...)
			wantCode(t, r, tt.code)
			if !strings.Contains(r.stdout, tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stdout %q, stderr %q; want them to contain %q and %q", r.stdout, r.stderr, tt.stdout, tt.stderr)
			}
			if tt.stdout == "" && r.stdout != "" {
				t.Errorf("stdout %q, want it empty", r.stdout)
			}
			if tt.stderr == "" && r.stderr != "" {
				t.Errorf("stderr %q, want it empty", r.stderr)
			}
		})
	}
}

type created struct {
	AppID  string `json:"app_id"`
	APIKey string `json:"api_key"`
}

func createApp(t *testing.T, env map[string]string, args ...string) created {
	t.Helper()
	r := run(t, env, append([]string{"apps", "create"}, args...)...)
	wantCode(t, r, 0)
	var c created
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("output %q is not JSON: %v", r.stdout, err)
	}
	if c.AppID == "" || !strings.HasPrefix(c.APIKey, "hrd_a_") || !apikey.LooksLike(c.APIKey) {
		t.Errorf("created %+v, want an app id and an admin key hrd_a_…", c)
	}
	return c
}

// wantApp checks that the store has the app and that the key, stored by
// the keyed hash of the data dir's secret, opens it with the admin scope.
func wantApp(t *testing.T, s *sqlite.Store, dir string, c created, name string) {
	t.Helper()
	got, err := s.GetApp(t.Context(), c.AppID)
	if err != nil {
		t.Fatalf("get app %s: %v", c.AppID, err)
	}
	if got.Name != name {
		t.Errorf("app %s is named %q, want %q", c.AppID, got.Name, name)
	}
	cfg := app.Defaults()
	cfg.DataDir = dir
	hasher, err := app.KeyHasher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.KeyByHash(t.Context(), hasher.Sum(c.APIKey))
	if err != nil {
		t.Fatalf("the printed key is not stored by its keyed hash: %v", err)
	}
	if k.AppID != c.AppID || k.Scope != herald.ScopeAdmin {
		t.Errorf("key belongs to app %s with scope %s, want app %s, scope admin", k.AppID, k.Scope, c.AppID)
	}
}

func TestAppsCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := createApp(t, nil, "shop", "--json", "--data-dir", dir)
	// Flags before the name, and the data dir from the environment.
	second := createApp(t, map[string]string{"HERALD_DATA_DIR": dir}, "--json", "shop")
	if first.AppID == second.AppID || first.APIKey == second.APIKey {
		t.Errorf("two creations gave %+v and %+v, want distinct apps and keys", first, second)
	}
	s := openStore(t, dir)
	wantApp(t, s, dir, first, "shop")
	wantApp(t, s, dir, second, "shop")
}

func TestAppsCreateText(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := run(t, nil, "apps", "create", "--data-dir="+dir, "my shop")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, `"my shop"`) || !strings.Contains(r.stdout, "hrd_a_") {
		t.Errorf("stdout %q, want the app's name and its key", r.stdout)
	}
}

func TestAppsUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"apps"},
		{"apps", "delete", "shop"},
		{"apps", "create", "--data-dir", "DIR"},
		{"apps", "create", "--json", "--data-dir", "DIR"},
		{"apps", "create", "shop", "extra", "--data-dir", "DIR"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args = slices.Clone(args)
			if i := slices.Index(args, "DIR"); i >= 0 {
				args[i] = dir
			}
			r := run(t, nil, args...)
			wantCode(t, r, 2)
			if !strings.Contains(r.stderr, "usage: herald apps create NAME") {
				t.Errorf("stderr %q, want the apps usage", r.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "herald.db")); err == nil {
				t.Errorf("a refused apps command created a database")
			}
		})
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 2 { // a second run finds nothing to do
		r := run(t, nil, "migrate", "--data-dir", dir)
		wantCode(t, r, 0)
		if !strings.Contains(r.stdout, "migrations applied") {
			t.Errorf("run %d: stdout %q, want it to say migrations were applied", i+1, r.stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "herald.db")); err != nil {
		t.Errorf("migrate left no database: %v", err)
	}
}

func TestConfigFileDataDirYieldsToEnvironment(t *testing.T) {
	t.Parallel()
	fromFile, fromEnv := t.TempDir(), t.TempDir()
	config := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(config, []byte("data-dir: "+fromFile+"\n"), 0o600); err != nil {
		t.Fatalf("write config: %v", err)
	}

	wantCode(t, run(t, nil, "migrate", "--config", config), 0)
	if _, err := os.Stat(filepath.Join(fromFile, "herald.db")); err != nil {
		t.Errorf("migrate with a config file: no database in the file's data dir: %v", err)
	}
	wantCode(t, run(t, map[string]string{"HERALD_DATA_DIR": fromEnv, "HERALD_CONFIG": config}, "migrate"), 0)
	if _, err := os.Stat(filepath.Join(fromEnv, "herald.db")); err != nil {
		t.Errorf("HERALD_DATA_DIR did not win over the config file: %v", err)
	}
}

func TestServeRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string // in stderr
	}{
		{"unknown role", nil, []string{"--roles", "api,bogus"}, `unknown role "bogus"`},
		{"bad environment", map[string]string{"HERALD_WORKERS": "abc"}, nil, "HERALD_WORKERS"},
		{"bad log level", map[string]string{"HERALD_LOG_LEVEL": "loud"}, nil, "log-level"},
		{"unknown flag", nil, []string{"--wokers", "3"}, "wokers"},
		{"mysql database", nil, []string{"--database-url", "mysql://db/herald"}, "database-url"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := map[string]string{"HERALD_HTTP_ADDR": "127.0.0.1:0"}
			maps.Copy(env, tt.env)
			r := run(t, env, append([]string{"serve", "--data-dir", dir}, tt.args...)...)
			wantCode(t, r, 2)
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tt.want)
			}
			if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
				t.Errorf("a refused serve touched the data dir: %v, %v", entries, err)
			}
		})
	}
}
