package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/client"
	"github.com/heraldhq/herald/internal/app"
)

// liveServer runs Herald in process with the log provider on email and
// SMS, and returns the environment of the remote verbs and a client.
func liveServer(t *testing.T) (map[string]string, *client.Client) {
	t.Helper()
	base, key := startHerald(t, func(*app.Config) {})
	c := client.New(base, key)
	for _, ch := range []string{"email", "sms"} {
		if _, err := c.PutProviders(t.Context(), ch, []client.ProviderEntry{{Kind: "log"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutUser(t.Context(), "ada", client.PutUserRequest{Email: "ada@example.com", Phone: "+14155550100"}); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"HERALD_URL": base, "HERALD_API_KEY": key}, c
}

// startHerald runs Herald in process on a temporary data dir, with small
// timeouts and configure's changes, until the test ends, and returns its
// base URL and an admin key of an app "shop".
func startHerald(t *testing.T, configure func(*app.Config)) (base, key string) {
	t.Helper()
	cfg := app.Defaults()
	cfg.DataDir, cfg.HTTPAddr, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.Workers, cfg.SendTimeout, cfg.RetryBackoff = 2, 2*time.Second, 10*time.Millisecond
	cfg.AllowPrivateTargets = true
	configure(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := app.New(cfg, slog.New(slog.DiscardHandler))
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	_, key, err := app.CreateApp(t.Context(), a.Store(), "shop", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + a.Addr(), key
}

func wantOut(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestSendAndStatus: send to a user and wait for the outcome, then read
// the timeline back, as text and as JSON.
func TestSendAndStatus(t *testing.T) {
	t.Parallel()
	env, c := liveServer(t)

	r := run(t, env, "send", "--to", "ada", "--channel", "email,sms", "--subject", "Hi", "--body", "Hello Ada", "--wait")
	wantCode(t, r, 0)
	wantOut(t, r.stdout, "accepted, 2 deliveries", "TIME", "CHANNEL", "STATUS", "PROVIDER", "DETAIL",
		"email", "sms", "queued", "sent", "log", "2 deliveries: 2 sent")

	r = run(t, env, "send", "--to", "ada", "--channel", "sms", "--body", "code 1234", "--json")
	wantCode(t, r, 0)
	var acc client.Accepted
	if err := json.Unmarshal([]byte(r.stdout), &acc); err != nil || acc.ID == "" || len(acc.Deliveries) != 1 {
		t.Fatalf("send --json = %s (%v)", r.stdout, err)
	}
	if _, err := c.WaitNotification(t.Context(), acc.ID, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	r = run(t, env, "status", acc.ID)
	wantCode(t, r, 0)
	wantOut(t, r.stdout, "Notification "+acc.ID+": completed", "sms", "ada +141******00", "sent", "log", "1 delivery: 1 sent")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	steps := 0
	for _, l := range lines {
		if strings.Contains(l, "  sms  ") {
			steps++
		}
	}
	n, _ := c.GetNotification(t.Context(), acc.ID)
	if want := len(n.Deliveries[0].Timeline); steps != want {
		t.Errorf("status printed %d step lines, the timeline has %d:\n%s", steps, want, r.stdout)
	}

	r = run(t, env, "status", acc.ID, "--json")
	wantCode(t, r, 0)
	var got client.Notification
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.ID != acc.ID || got.Deliveries[0].Status != "sent" {
		t.Fatalf("status --json = %s (%v)", r.stdout, err)
	}

	r = run(t, env, "status", "--watch", "--interval", "20ms", acc.ID)
	wantCode(t, r, 0)
	wantOut(t, r.stdout, "completed", "sent", "1 delivery: 1 sent")

	r = run(t, env, "status", "ntf_nope")
	wantCode(t, r, 1)
	wantOut(t, r.stderr, "404", "no notification ntf_nope in this app")
}

// TestSendTemplateAndIdempotency: --template with --data, and a repeat
// with the same --idempotency-key that sends nothing again.
func TestSendTemplateAndIdempotency(t *testing.T) {
	t.Parallel()
	env, c := liveServer(t)
	if _, err := c.PutTemplate(t.Context(), "code", client.PutTemplateRequest{SMS: &client.SMSParts{Text: "{{.name}}: {{.code}}"}}); err != nil {
		t.Fatal(err)
	}
	args := []string{"send", "--phone", "+14155550199", "--template", "code", "--data", "name=Ada", "--data", "code=1234",
		"--idempotency-key", "order-7", "--json"}
	r := run(t, env, args...)
	wantCode(t, r, 0)
	var first client.Accepted
	if err := json.Unmarshal([]byte(r.stdout), &first); err != nil {
		t.Fatal(err)
	}
	r = run(t, env, args[:len(args)-1]...)
	wantCode(t, r, 0)
	wantOut(t, r.stdout, "Notification "+first.ID, "replayed: nothing was sent again")

	// A template with a key the data lacks: the 422 names the field.
	r = run(t, env, "send", "--phone", "+14155550199", "--template", "code", "--data", "name=Ada")
	wantCode(t, r, 1)
	wantOut(t, r.stderr, "422", "data.code: ")
}

// TestSendErrorsSayWhatToDo: each mistake says what to do next.
func TestSendErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	env, _ := liveServer(t)
	for _, tt := range []struct {
		env  map[string]string
		args []string
		code int
		want string
	}{
		{nil, []string{"send", "--to", "ada", "--body", "x"}, 2, "no API key: pass --api-key or set HERALD_API_KEY"},
		{map[string]string{"HERALD_API_KEY": "k", "HERALD_URL": "http://127.0.0.1:1"}, []string{"send", "--to", "ada", "--body", "x"}, 1,
			"cannot reach Herald at http://127.0.0.1:1: is `herald serve` running there?"},
		{env, []string{"send", "--body", "x"}, 2, "no recipient: give --to"},
		{env, []string{"send", "--to", "ada"}, 2, "nothing to send: give --body"},
		{env, []string{"send", "--to", "ada", "--body", "x", "--data", "a=b"}, 2, "--data is the data of a --template"},
		{env, []string{"send", "--to", "ada", "--template", "t", "--data", "novalue"}, 2, "want key=value"},
		{env, []string{"send", "--email", "not-an-address", "--body", "x"}, 1, "to[0].email: "},
		{map[string]string{"HERALD_URL": env["HERALD_URL"], "HERALD_API_KEY": "hrd_a_00000000000000000000000000000000"},
			[]string{"status", "x"}, 1, "check --api-key or HERALD_API_KEY"},
		{env, []string{"status"}, 2, "herald status NOTIFICATION_ID"},
	} {
		r := run(t, tt.env, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("herald %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), r.code, r.stderr, tt.code, tt.want)
		}
	}
}

// TestKeysCommands: create, list, rotate and revoke.
func TestKeysCommands(t *testing.T) {
	t.Parallel()
	env, _ := liveServer(t)
	r := run(t, env, "keys", "create", "ci", "--scope", "send", "--json")
	wantCode(t, r, 0)
	var k client.NewKey
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || !strings.HasPrefix(k.Key, "hrd_s_") || k.Name != "ci" {
		t.Fatalf("keys create --json = %s (%v)", r.stdout, err)
	}
	r = run(t, env, "keys", "create", "ops", "--scope", "admin")
	wantCode(t, r, 0)
	wantOut(t, r.stdout, `Created admin key "ops"`, "shown once", "hrd_a_")

	r = run(t, env, "keys", "create", "bad", "--scope", "root")
	wantCode(t, r, 1)
	wantOut(t, r.stderr, "422", "scope: ")

	r = run(t, env, "keys", "revoke", k.ID)
	wantCode(t, r, 0)
	wantOut(t, r.stdout, "Revoked key "+k.ID)
	r = run(t, env, "keys", "revoke", "key_nope")
	wantCode(t, r, 1)
	wantOut(t, r.stderr, "herald keys list")
	wantCode(t, run(t, env, "keys", "frobnicate"), 2)

	r = run(t, env, "keys", "list")
	wantCode(t, r, 0)
	wantOut(t, r.stdout, "ID", "SCOPE", "PREFIX", "ops", "admin")
	r = run(t, env, "keys", "list", "--json")
	wantCode(t, r, 0)
	var list []client.Key
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) < 2 {
		t.Fatalf("keys list --json = %s (%v)", r.stdout, err)
	}
	var ops string
	for _, x := range list {
		if x.Name == "ops" {
			ops = x.ID
		}
	}
	r = run(t, env, "keys", "rotate", ops, "--grace", "1m", "--json")
	wantCode(t, r, 0)
	var rotated client.NewKey
	if err := json.Unmarshal([]byte(r.stdout), &rotated); err != nil || rotated.RotatedFrom != ops || rotated.Key == "" {
		t.Fatalf("keys rotate --json = %s (%v)", r.stdout, err)
	}
}

// TestAppsShowAndSet: the app of the key, over the API.
func TestAppsShowAndSet(t *testing.T) {
	t.Parallel()
	env, _ := liveServer(t)
	r := run(t, env, "apps", "show")
	wantCode(t, r, 0)
	wantOut(t, r.stdout, "App", "shop", "(none: base parts)")
	r = run(t, env, "apps", "set", "--default-locale", "de", "--json")
	wantCode(t, r, 0)
	var a client.App
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil || a.DefaultLocale != "de" || a.Name != "shop" {
		t.Fatalf("apps set --json = %s (%v)", r.stdout, err)
	}
	r = run(t, env, "apps", "set", "--default-locale", "not a locale!")
	wantCode(t, r, 1)
	wantOut(t, r.stderr, "422", "default_locale: ")
	wantCode(t, run(t, env, "apps", "set"), 2)
}

// TestCompletion: each shell's script offers every verb, subcommand and
// flag of the command table, and bash parses it.
func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := run(t, nil, "completion", shell)
		wantCode(t, r, 0)
		for _, c := range commands {
			wantOut(t, r.stdout, c.name)
			for _, s := range c.subs {
				wantOut(t, r.stdout, s.name)
			}
		}
		// Flags come from each verb's own FlagSet.
		wantOut(t, r.stdout, "idempotency-key", "watch", "grace", "expires-in", "default-locale", "data-dir", "channel")
		if bin, err := exec.LookPath(shell); err == nil && shell != "fish" {
			cmd := exec.Command(bin, "-n")
			cmd.Stdin = strings.NewReader(r.stdout)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s -n rejects the script: %v\n%s", shell, err, out)
			}
		} else if shell == "bash" {
			t.Errorf("bash not found: cannot check the bash script")
		}
	}
	r := run(t, nil, "completion", "tcsh")
	wantCode(t, r, 2)
	wantOut(t, r.stderr, "bash|zsh|fish")
}

// TestCompletionOffersEveryFlag: every flag a verb's -h prints is offered.
func TestCompletionOffersEveryFlag(t *testing.T) {
	t.Parallel()
	script := bashCompletion()
	for _, args := range [][]string{{"send"}, {"status"}, {"keys", "create"}, {"keys", "rotate"}, {"dlq", "list"}, {"users", "import"}, {"apps", "create"}} {
		fs := flagsOf(args...)
		if len(fs) == 0 {
			t.Errorf("herald %s -h lists no flags", strings.Join(args, " "))
		}
		for _, f := range fs {
			if !strings.Contains(script, "--"+f.name) {
				t.Errorf("the bash completion lacks --%s of herald %s", f.name, strings.Join(args, " "))
			}
		}
	}
}

// TestProgressLine: the import's bar, with and without a known size.
func TestProgressLine(t *testing.T) {
	t.Parallel()
	p := &progress{label: "importing", total: 4 << 20}
	if got, want := p.line(1<<20, time.Second), "importing [=======>                      ]  25% 1.0 MiB/4.0 MiB 1.0 MiB/s"; got != want {
		t.Errorf("line = %q\nwant   %q", got, want)
	}
	if got := p.line(5<<20, time.Second); !strings.Contains(got, "100%") || strings.Contains(got, ">") {
		t.Errorf("past the total: %q", got)
	}
	p = &progress{label: "importing"}
	if got, want := p.line(2048, 2*time.Second), "importing 2.0 KiB 1.0 KiB/s"; got != want {
		t.Errorf("unknown size: %q, want %q", got, want)
	}
}
