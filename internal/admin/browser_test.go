package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
	"github.com/heraldhq/herald/internal/provider/providertest"
)

// Environment of the browser test.
const (
	// envArtifacts names a directory for the screenshots (a new temporary
	// directory, kept and logged, when unset).
	envArtifacts = "HERALD_ARTIFACTS"
	// envUpdateDocs=true copies the main screenshots to docs/img.
	envUpdateDocs = "HERALD_UPDATE_SCREENSHOTS"
	// envChromium overrides the browser binary.
	envChromium = "HERALD_CHROMIUM"
)

// docScreenshots are the screenshots docs/admin.md shows, by the name the
// script gives them.
var docScreenshots = []string{"overview", "notifications", "notification", "dead-letters", "template-editor", "template-preview"}

// TestAdminUIInChromium drives the admin UI in headless Chromium against a
// running Herald: sign-in onto the overview (funnel, live throughput,
// provider health, queue), a notification watched in search and detail
// until sent, a dead letter replayed, a template edited into a new version
// (and a broken edit refused with its line), a template previewed. The steps are
// in e2e/admin.test.mjs; this test prepares Herald and checks afterwards,
// through the API, that what the page claimed happened did happen.
func TestAdminUIInChromium(t *testing.T) {
	node, chromium, e2eDir := browserTools(t)

	// Every message takes a moment to be accepted, so the page can see a
	// delivery in flight; grace's mailbox answers 451 until the delivery is dead.
	smtpd := providertest.NewSMTPServer(t, providertest.DataDelay(1500*time.Millisecond),
		providertest.RejectRecipient("grace@example.com", 451, [3]int{4, 2, 1}, "mailbox busy, try again later"))
	cfg := app.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.LogLevel = "warn"
	cfg.MaxAttempts = 2
	cfg.RetryBackoff = 50 * time.Millisecond
	cfg.AllowPrivateTargets = true // the SMTP fake listens on loopback
	a := startHerald(t, cfg)
	_, key, err := app.CreateApp(context.Background(), a.Store(), "shop", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, base: "http://" + a.Addr(), key: key}

	c.must(201, "PUT", "/v1/users/123", map[string]any{"email": "ada@example.com", "locale": "de"})
	c.must(201, "PUT", "/v1/users/456", map[string]any{"email": "grace@example.com"})
	c.must(200, "PUT", "/v1/providers/email", []map[string]any{{"kind": "smtp",
		"settings": map[string]any{"endpoint": smtpd.Addr(), "from": "shop@example.com", "tls": "none"}}})

	welcome := c.send("123", "welcome", "Welcome to the shop")
	if d := c.waitDone(welcome).Deliveries[0]; d.Status != "sent" {
		t.Fatalf("the prepared notification ended %s, want sent", d.Status)
	}
	// Two dead letters: the page replays one with the admin key and is
	// refused the other with a send key.
	invoice, reminder := c.send("456", "billing", "Your invoice"), c.send("456", "billing", "Payment reminder")
	for _, id := range []string{invoice, reminder} {
		if d := c.waitDone(id).Deliveries[0]; d.Status != "dead" {
			t.Fatalf("a prepared dead letter ended %s, want dead", d.Status)
		}
	}

	env := []string{"HERALD_URL=" + c.base, "HERALD_API_KEY=" + key, "HERALD_CHROMIUM=" + chromium}
	if !c.putTemplate() {
		// Only on a build without /v1/templates: the script checks the 404 instead.
		t.Log("this build has no /v1/templates: the preview step expects its 404 (HERALD_E2E_TEMPLATES=absent)")
		env = append(env, "HERALD_E2E_TEMPLATES=absent")
	}

	shots := artifactDir(t)
	env = append(env, "HERALD_SCREENSHOTS="+shots)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "admin.test.mjs")
	cmd.Dir = e2eDir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("e2e/admin.test.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the browser steps failed (%v); screenshots in %s", err, shots)
	}

	// The page said one replay was accepted and the other refused: the
	// log must agree. Each replay starts the timeline again at accepted.
	replays := 0
	for _, id := range []string{invoice, reminder} {
		d := c.notification(id).Deliveries[0]
		accepted := 0
		for _, e := range d.Timeline {
			if e.Status == "accepted" {
				accepted++
			}
		}
		switch accepted {
		case 1:
		case 2:
			replays++
		default:
			t.Errorf("delivery %s went through accepted %d times: %+v", d.ID, accepted, d.Timeline)
		}
	}
	if replays != 1 {
		t.Errorf("%d of the two dead letters were replayed, want exactly the one the admin key replayed", replays)
	}
	// The page watched a notification for user 123 reach sent: the mail went out.
	if got := len(smtpd.WaitForMessages(t, 2, 10*time.Second)); got < 2 {
		t.Errorf("the SMTP server received %d messages, want the prepared one and the page's", got)
	}

	for _, name := range docScreenshots {
		if _, err := os.Stat(filepath.Join(shots, name+".png")); err != nil {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
	if os.Getenv(envUpdateDocs) == "true" {
		for _, name := range docScreenshots {
			copyFile(t, filepath.Join(shots, name+".png"), filepath.Join("..", "..", "docs", "img", "admin-"+name+".png"))
		}
		t.Logf("copied %d screenshots to docs/img", len(docScreenshots))
	}
}

// browserTools finds node, Chromium and the e2e directory's installed
// packages. Without them the test skips and says how to get them; on CI
// (CI=true) it fails instead, because .ci/run installs them.
func browserTools(t *testing.T) (node, chromium, e2eDir string) {
	t.Helper()
	e2eDir, err := filepath.Abs(filepath.Join("..", "..", "e2e"))
	if err != nil {
		t.Fatal(err)
	}
	chromium = os.Getenv(envChromium)
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	if node, err = exec.LookPath("node"); err != nil {
		missing = append(missing, "node (apt-get install nodejs)")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium+" (apt-get install --no-install-recommends chromium, or set "+envChromium+")")
	}
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "e2e/node_modules/playwright-core (cd e2e && npm ci)")
	}
	if len(missing) > 0 {
		msg := "the browser test needs " + strings.Join(missing, ", ") + "; .ci/run installs them"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, chromium, e2eDir
}

// artifactDir is where the screenshots go: $HERALD_ARTIFACTS/admin-ui, or
// a temporary directory that outlives the test so they can be looked at.
func artifactDir(t *testing.T) string {
	t.Helper()
	var dir string
	if root := os.Getenv(envArtifacts); root != "" {
		dir = filepath.Join(root, "admin-ui")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		var err error
		if dir, err = os.MkdirTemp("", "herald-admin-ui-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots: %s", dir)
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func startHerald(t *testing.T, cfg app.Config) *app.App {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := app.New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
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
	return a
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// client is a small client of Herald's API for one app.
type client struct {
	t    *testing.T
	base string
	key  string
}

func (c *client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return res.StatusCode, raw
}

func (c *client) must(want int, method, path string, body any) []byte {
	c.t.Helper()
	status, raw := c.do(method, path, body)
	if status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, raw)
	}
	return raw
}

func (c *client) send(userID, category, subject string) string {
	c.t.Helper()
	var acc struct{ ID string }
	decode(c.t, c.must(202, "POST", "/v1/notifications", map[string]any{
		"to": []any{map[string]any{"user_id": userID}}, "channels": []string{"email"}, "category": category,
		"content": map[string]any{"subject": subject, "body": subject + "."}}), &acc)
	return acc.ID
}

type notification struct {
	ID         string
	Deliveries []struct {
		ID       string
		Status   string
		Attempts int
		Timeline []struct{ Status string }
	}
}

func (c *client) notification(id string) notification {
	c.t.Helper()
	var n notification
	decode(c.t, c.must(200, "GET", "/v1/notifications/"+id, nil), &n)
	return n
}

// waitDone polls until the notification's one delivery is sent, failed or dead.
func (c *client) waitDone(id string) notification {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := c.notification(id)
		if len(n.Deliveries) == 1 {
			switch n.Deliveries[0].Status {
			case "sent", "failed", "dead":
				return n
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("notification %s not done after a minute: %+v", id, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// putTemplate saves the template the preview step renders. It reports
// false only when the build has no templates route at all.
func (c *client) putTemplate() bool {
	c.t.Helper()
	parts := func(greeting string) map[string]any {
		return map[string]any{
			"email": map[string]any{
				"subject": greeting + ", {{.name}}: reset your password",
				"html": `<div style="font-family: sans-serif; max-width: 32rem">` +
					`<h2 style="color: #2f5bea">` + greeting + `, {{.name}}</h2>` +
					`<p>Someone asked to reset the password of your account.</p>` +
					`<p><a href="{{.link}}" style="background: #2f5bea; color: #fff; padding: 8px 14px; border-radius: 6px; text-decoration: none">Reset password</a></p>` +
					`<p style="color: #667085; font-size: 13px">Not you? Ignore this email.</p>` +
					`<script>document.body.setAttribute("data-script-ran", "yes")</script></div>`,
				"text": greeting + ", {{.name}}. Reset your password: {{.link}}",
			},
			"sms":  map[string]any{"text": greeting + " {{.name}}, reset your password: {{.link}}"},
			"push": map[string]any{"title": "Password reset", "body": greeting + " {{.name}}, tap to reset your password."},
		}
	}
	body := parts("Hello")
	body["locales"] = map[string]any{"de": parts("Hallo")}
	status, raw := c.do("PUT", "/v1/templates/password-reset", body)
	switch {
	case status == 200 || status == 201:
		return true
	case status == 404 && bytes.Contains(raw, []byte("no route")):
		return false
	}
	c.t.Fatalf("PUT /v1/templates/password-reset: status %d: %s", status, raw)
	return false
}

func decode(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}
