package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/heraldtest"
)

// testConfig is the embedded default on a temporary data dir and a free port,
// with short timers so that recovery paths run within a test's patience.
func testConfig(t *testing.T) app.Config {
	t.Helper()
	cfg := app.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.LogLevel = "warn"
	cfg.Workers = 4
	cfg.SendTimeout = 2 * time.Second
	cfg.RetryBackoff = 200 * time.Millisecond
	cfg.ReconcileInterval = 200 * time.Millisecond
	cfg.ReconcileAfter = time.Second
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.AllowPrivateTargets = true // the provider fakes listen on loopback
	return cfg
}

// scaledConfig is Postgres (a schema of its own) and the external NATS server
// (a prefix of its own): the scaled-out mode, isolated from other tests.
func scaledConfig(t *testing.T) app.Config {
	t.Helper()
	pgURL := heraldtest.ServiceURL(t, heraldtest.EnvPostgres)
	natsURL := heraldtest.ServiceURL(t, heraldtest.EnvNATS)
	cfg := testConfig(t)
	cfg.DatabaseURL = postgresSchema(t, pgURL)
	cfg.NATSURL = natsURL
	cfg.NATSReplicas = 1
	cfg.NATSPrefix = fmt.Sprintf("t%d", rand.Uint64())
	cfg.SecretKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes, base64
	return cfg
}

func postgresSchema(t *testing.T, url string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to postgres: %v", err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("e2e_%d", rand.Uint64())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema
}

// start runs an App and stops it when the test ends.
func start(t *testing.T, cfg app.Config) *app.App {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := app.New(cfg, testLogger(t))
	startApp(t, a)
	return a
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startApp starts a and stops it at the end of the test.
func startApp(t *testing.T, a *app.App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newApp creates an app in a's store and returns its admin key.
func newApp(t *testing.T, a *app.App, name string) string {
	t.Helper()
	_, key, err := app.CreateApp(context.Background(), a.Store(), name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// api is a client for one app that validates every response against docs/openapi.yaml.
type api struct {
	t    *testing.T
	base string
	key  string
	c    *http.Client
}

func newAPI(t *testing.T, a *app.App, key string) *api {
	base := "http://" + a.Addr()
	return &api{t: t, base: base, key: key, c: heraldtest.OpenAPIClient(t, base)}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (c *api) do(method, path string, body any, headers ...string) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.c.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: raw}
}

// must performs a request and fails the test unless it answers want.
func (c *api) must(want int, method, path string, body any, headers ...string) response {
	c.t.Helper()
	r := c.do(method, path, body, headers...)
	if r.status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	return r
}

type notificationView struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Deliveries []struct {
		ID                string `json:"id"`
		Channel           string `json:"channel"`
		Status            string `json:"status"`
		Reason            string `json:"reason"`
		Provider          string `json:"provider"`
		ProviderMessageID string `json:"provider_message_id"`
		Attempts          int    `json:"attempts"`
		Timeline          []struct {
			Status string `json:"status"`
			Detail string `json:"detail"`
		} `json:"timeline"`
	} `json:"deliveries"`
}

// waitStatus polls the notification until every delivery is in a final status.
func (c *api) waitDone(id string, timeout time.Duration) notificationView {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var n notificationView
		c.must(200, "GET", "/v1/notifications/"+id, nil).decode(c.t, &n)
		done := len(n.Deliveries) > 0
		for _, d := range n.Deliveries {
			switch d.Status {
			case "sent", "failed", "suppressed", "dead", "canceled":
			default:
				done = false
			}
		}
		if done {
			return n
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("notification %s not done after %s: %+v", id, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
