package app

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/heraldhq/herald"
)

// loadConfig reads a configuration the way the CLI does: defaults, then
// the environment and the flags (Bind), then the config file for the
// settings neither gave.
func loadConfig(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	c := Defaults()
	fs := flag.NewFlagSet("herald test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := c.Bind(fs, func(k string) string { return env[k] }); err != nil {
		return c, err
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		if env[f.Tag.Get("env")] != "" {
			set[f.Tag.Get("flag")] = true
		}
	}
	return c, c.LoadFile(set)
}

// writeFile writes a config file into the test's temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("write config file: %v", err)
	}
	return path
}

func TestDefaultsValidate(t *testing.T) {
	t.Parallel()
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
	if got, want := c.PublicURL, "http://127.0.0.1:8080"; got != want {
		t.Errorf("PublicURL = %q, want %q", got, want)
	}
	if !filepath.IsAbs(c.DataDir) {
		t.Errorf("DataDir = %q, want it made absolute", c.DataDir)
	}
	if got, want := c.RoleList(), AllRoles; !slices.Equal(got, want) {
		t.Errorf("roles = %v, want %v", got, want)
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"HERALD_WORKERS":        "7",
		"HERALD_LOG_LEVEL":      "debug",
		"HERALD_SEND_TIMEOUT":   "5s",
		"HERALD_MAX_BODY_BYTES": "2048",
		"HERALD_ROLES":          "api",
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want func(*Config)
	}{
		{"defaults", nil, nil, func(*Config) {}},
		{"environment over defaults", env, nil, func(c *Config) {
			c.Workers, c.LogLevel, c.SendTimeout, c.MaxBodyBytes, c.Roles = 7, "debug", 5*time.Second, 2048, "api"
		}},
		{"flags over defaults", nil, []string{"--workers", "9", "-log-format=json"}, func(c *Config) {
			c.Workers, c.LogFormat = 9, "json"
		}},
		{"flags over environment", env, []string{"--workers", "9", "--send-timeout=1m", "--roles", "worker,tracker"}, func(c *Config) {
			c.Workers, c.LogLevel, c.SendTimeout, c.MaxBodyBytes, c.Roles = 9, "debug", time.Minute, 2048, "worker,tracker"
		}},
		{"empty variable is unset", map[string]string{"HERALD_WORKERS": ""}, nil, func(*Config) {}},
		{"a boolean flag alone means true", nil, []string{"--allow-private-targets", "--workers", "3"}, func(c *Config) {
			c.AllowPrivateTargets, c.Workers = true, 3
		}},
		{"a boolean flag set to false", map[string]string{"HERALD_PPROF": "true"}, []string{"--pprof=false"}, func(*Config) {}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := loadConfig(t, tt.env, tt.args...)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			want := Defaults()
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBadEnvironmentNamesTheVariable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, value string }{
		{"HERALD_WORKERS", "abc"},
		{"HERALD_MAX_BODY_BYTES", "1.5"},
		{"HERALD_SEND_TIMEOUT", "30"}, // a duration needs a unit
		{"HERALD_NATS_REPLICAS", "three"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(t, map[string]string{tt.name: tt.value})
			if err == nil {
				t.Fatalf("%s=%s: no error", tt.name, tt.value)
			}
			if !strings.Contains(err.Error(), tt.name) || !strings.Contains(err.Error(), tt.value) {
				t.Errorf("%s=%s: error %q, want it to name the variable and the value", tt.name, tt.value, err)
			}
		})
	}
}

func TestBadFlagValue(t *testing.T) {
	t.Parallel()
	if _, err := loadConfig(t, nil, "--workers", "many"); err == nil || !strings.Contains(err.Error(), "workers") {
		t.Errorf("--workers many: error %v, want one naming the flag", err)
	}
}

func TestConfigFileFillsOnlyUnsetSettings(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `
workers: 5               # also a flag: the flag wins
log-level: warn          # also in the environment: the environment wins
max-attempts: 3
send-timeout: 45s
public-url: https://herald.example.com
nats-url: nats://a:4222,nats://b:4222
`)
	got, err := loadConfig(t, map[string]string{"HERALD_LOG_LEVEL": "debug"}, "--workers", "9", "--config", path)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	want := Defaults()
	want.ConfigFile, want.Workers, want.LogLevel, want.MaxAttempts, want.SendTimeout = path, 9, "debug", 3, 45*time.Second
	want.PublicURL, want.NATSURL = "https://herald.example.com", "nats://a:4222,nats://b:4222"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}

	// The file may also be named in the environment.
	got, err = loadConfig(t, map[string]string{"HERALD_CONFIG": path})
	if err != nil {
		t.Fatalf("load with HERALD_CONFIG: %v", err)
	}
	if got.Workers != 5 || got.LogLevel != "warn" {
		t.Errorf("with HERALD_CONFIG: workers %d, log level %q; want the file's 5 and warn", got.Workers, got.LogLevel)
	}
}

func TestConfigFileErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		content string
		want    string // in the error
	}{
		{"unknown key", "wokers: 5\n", `unknown setting "wokers"`},
		{"env name as key", "HERALD_WORKERS: 5\n", `unknown setting "HERALD_WORKERS"`},
		{"bad value", "workers: many\n", "workers"},
		{"bad duration", "send-timeout: soon\n", "send-timeout"},
		{"not a mapping", "- workers\n", "config file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tt.content)
			_, err := loadConfig(t, nil, "--config", path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		_, err := loadConfig(t, nil, "--config", filepath.Join(t.TempDir(), "absent.yaml"))
		if err == nil || !strings.Contains(err.Error(), "config file") {
			t.Errorf("error %v, want a config file error", err)
		}
	})
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   string // in the error; "" for a valid configuration
	}{
		{"unknown role", func(c *Config) { c.Roles = "api,bogus" }, `unknown role "bogus"`},
		{"no role", func(c *Config) { c.Roles = " , " }, "at least one role"},
		{"roles with spaces", func(c *Config) { c.Roles = " api , worker " }, ""},
		{"mysql database", func(c *Config) { c.DatabaseURL = "mysql://u:p@db/herald" }, "database-url"},
		{"sqlite database url", func(c *Config) { c.DatabaseURL = "sqlite:///tmp/h.db" }, "database-url"},
		{"postgres database", func(c *Config) { c.DatabaseURL = "postgres://u:p@db/herald" }, ""},
		{"postgresql database", func(c *Config) { c.DatabaseURL = "postgresql://u:p@db/herald" }, ""},
		{"bad log level", func(c *Config) { c.LogLevel = "verbose" }, "log-level"},
		{"bad log format", func(c *Config) { c.LogFormat = "xml" }, "log-format"},
		{"no workers", func(c *Config) { c.Workers = 0 }, "workers"},
		{"tiny body limit", func(c *Config) { c.MaxBodyBytes = 100 }, "max-body-bytes"},
		{"zero duration", func(c *Config) { c.ReconcileInterval = 0 }, "durations must be positive"},
		{"relative public url", func(c *Config) { c.PublicURL = "herald.example.com" }, "public-url"},
		{"embedded without data dir", func(c *Config) { c.DataDir = "" }, "data-dir"},
		{"postgres without data dir", func(c *Config) { c.DataDir, c.DatabaseURL = "", "postgres://db/herald" }, "data-dir"},
		{"idempotency kept a day", func(c *Config) { c.IdempotencyRetention = 24 * time.Hour }, ""},
		{"idempotency kept a week", func(c *Config) { c.IdempotencyRetention = 7 * 24 * time.Hour }, ""},
		{"idempotency kept less than a day", func(c *Config) { c.IdempotencyRetention = 23 * time.Hour }, "idempotency-retention"},
		{"no queue messages", func(c *Config) { c.QueueMaxMsgs = 0 }, "queue-max-msgs"},
		{"negative queue bytes", func(c *Config) { c.QueueMaxBytes = -1 }, "queue-max-bytes"},
		{"queue high water above 1", func(c *Config) { c.QueueHighWater = 1.5 }, "queue-high-water"},
		{"queue high water zero", func(c *Config) { c.QueueHighWater = 0 }, "queue-high-water"},
		{"negative api rate", func(c *Config) { c.APIRate = -1 }, "api-rate"},
		{"negative api burst", func(c *Config) { c.APIBurst = -1 }, "api-burst"},
		{"api limit off", func(c *Config) { c.APIRate, c.APIBurst = 0, 0 }, ""},
		{"scaled out without data dir", func(c *Config) {
			c.DataDir, c.DatabaseURL, c.NATSURL = "", "postgres://db/herald", "nats://a:4222"
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Defaults()
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPublicURLDefaultsToHTTPAddr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ addr, public, want string }{
		{"127.0.0.1:8080", "", "http://127.0.0.1:8080"},
		{"0.0.0.0:9000", "", "http://0.0.0.0:9000"},
		{"0.0.0.0:9000", "https://herald.example.com", "https://herald.example.com"},
	} {
		c := Defaults()
		c.HTTPAddr, c.PublicURL = tt.addr, tt.public
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate(): %v", err)
		}
		if c.PublicURL != tt.want {
			t.Errorf("http-addr %s, public-url %q: PublicURL = %q, want %q", tt.addr, tt.public, c.PublicURL, tt.want)
		}
	}
}

func TestNATSReplicasDefault(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		natsURL  string
		replicas int
		want     int
	}{
		{"", 0, 1},
		{"nats://a:4222,nats://b:4222,nats://c:4222", 0, 3},
		{"nats://a:4222", 1, 1},
		{"", 2, 2},
	} {
		c := Defaults()
		c.NATSURL, c.NATSReplicas = tt.natsURL, tt.replicas
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate(): %v", err)
		}
		if c.NATSReplicas != tt.want {
			t.Errorf("nats-url %q, nats-replicas %d: NATSReplicas = %d, want %d", tt.natsURL, tt.replicas, c.NATSReplicas, tt.want)
		}
	}
}

// redacted returns the Redacted lines as a map from setting name to value.
func redacted(c Config) map[string]string {
	m := map[string]string{}
	for _, line := range c.Redacted() {
		name, value, _ := strings.Cut(line, "=")
		m[name] = value
	}
	return m
}

func TestRedactedHidesSecrets(t *testing.T) {
	t.Parallel()
	c := Defaults()
	c.DatabaseURL = "postgres://herald:s3cret-db@db.internal:5432/herald?sslmode=disable"
	c.NATSURL = "nats://u1:s3cret-n1@a:4222,nats://u2:s3cret-n2@b:4222"
	c.RedisURL = "redis://:s3cret-r@redis:6379/0"
	c.SecretKey = "s3cret-key-in-base64"
	c.Workers = 12

	lines := c.Redacted()
	if all := strings.Join(lines, "\n"); strings.Contains(all, "s3cret") {
		t.Errorf("Redacted() shows a secret:\n%s", all)
	}
	if got, want := len(lines), reflect.TypeFor[Config]().NumField(); got != want {
		t.Errorf("Redacted() has %d lines, want one per setting (%d)", got, want)
	}
	got := redacted(c)
	for name, want := range map[string]string{
		"database-url": "postgres://herald:xxxxx@db.internal:5432/herald?sslmode=disable",
		"nats-url":     "nats://u1:xxxxx@a:4222,nats://u2:xxxxx@b:4222",
		"redis-url":    "redis://:xxxxx@redis:6379/0",
		"secret-key":   "[redacted]",
		"workers":      "12",
		"http-addr":    "127.0.0.1:8080",
		"send-timeout": "30s",
		"roles":        "api,worker,tracker,scheduler",
	} {
		if got[name] != want {
			t.Errorf("Redacted() %s=%q, want %q", name, got[name], want)
		}
	}
}

func TestRedactedQueryPasswordsAndUnsetSecrets(t *testing.T) {
	t.Parallel()
	c := Defaults()
	c.DatabaseURL = "postgres://herald@db/herald?password=s3cret-q&sslmode=require"
	got := redacted(c)
	if strings.Contains(got["database-url"], "s3cret") || !strings.Contains(got["database-url"], "password=xxxxx") {
		t.Errorf("database-url=%q, want the password parameter hidden", got["database-url"])
	}
	if !strings.Contains(got["database-url"], "sslmode=require") {
		t.Errorf("database-url=%q, want the other parameters shown", got["database-url"])
	}
	// An unset secret shows as unset, so operators can tell.
	if got["secret-key"] != "" || got["nats-url"] != "" {
		t.Errorf("unset secret-key=%q nats-url=%q, want both empty", got["secret-key"], got["nats-url"])
	}
}

func TestRedactedHidesSecretsOfUnparsableURLs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, natsURL, dbURL string }{
		{"nats token", "nats://s3cret-token@a:4222", ""},
		{"space after comma", "nats://u1:s3cret-1@a:4222, nats://u2:s3cret-2@b:4222", ""},
		{"hash in password", "", "postgres://herald:s3cret#1@db/herald"},
		{"percent in password", "", "postgres://herald:s3cret%1@db/herald"},
	} {
		c := Defaults()
		c.NATSURL, c.DatabaseURL = tt.natsURL, tt.dbURL
		if all := strings.Join(c.Redacted(), "\n"); strings.Contains(all, "s3cret") {
			t.Errorf("%s: Redacted() shows a secret:\n%s", tt.name, all)
		}
	}
}

// The CLI finds the settings given in the environment by turning each
// flag name into HERALD_NAME; that only works while every env tag follows
// the flag name.
func TestEnvNamesFollowFlagNames(t *testing.T) {
	t.Parallel()
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		name, env := f.Tag.Get("flag"), f.Tag.Get("env")
		if name == "" || f.Tag.Get("help") == "" {
			t.Errorf("field %s has no flag name or help", f.Name)
		}
		if want := "HERALD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")); env != want {
			t.Errorf("field %s: env %q, want %q for flag %q", f.Name, env, want, name)
		}
	}
}

// TestAPIKeyLimit: api-burst requests in api-burst/api-rate seconds; the
// burst defaults to twice the rate; rate 0 is no limit.
func TestAPIKeyLimit(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rate  float64
		burst int
		want  herald.Limit
	}{
		{1000, 2000, herald.Limit{Max: 2000, Per: 2 * time.Second}},
		{0.5, 3, herald.Limit{Max: 3, Per: 6 * time.Second}},
		{10, 0, herald.Limit{Max: 20, Per: 2 * time.Second}},
		{0, 50, herald.Limit{}},
	} {
		c := Config{APIRate: tt.rate, APIBurst: tt.burst}
		if got := c.APIKeyLimit(); got != tt.want {
			t.Errorf("rate %v burst %d: limit %+v, want %+v", tt.rate, tt.burst, got, tt.want)
		}
	}
}

// TestOperationsDocConfigReferenceIsCurrent: the configuration reference
// in docs/operations.md is the one ConfigReference makes from Config.
func TestOperationsDocConfigReferenceIsCurrent(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	want, ok := ReplaceConfigReference(string(raw))
	if !ok {
		t.Fatalf("docs/operations.md lacks the markers %q and %q", ConfigReferenceBegin, ConfigReferenceEnd)
	}
	if want != string(raw) {
		t.Fatal("the configuration reference in docs/operations.md is out of date with Config; " +
			"regenerate it from the repository's root with: go run ./internal/app/configdoc")
	}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		if !strings.Contains(want, "`"+f.Tag.Get("env")+"`") {
			t.Errorf("the reference lacks %s", f.Tag.Get("env"))
		}
	}
}
