package fcm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/fcm"
	"github.com/heraldhq/herald/internal/provider/providertest"
	"github.com/heraldhq/herald/internal/provider/providertest/fcmfake"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

const project = "herald-test"

// deviceToken has the shape of a real registration token (~150 characters).
var deviceToken = "eXaMpLe1Rq0:APA91bH" + strings.Repeat("k9Xz-Qw_7Lm3Pv2B", 8) + "tail"

// fixture is a fake with one service account and a provider factory.
type fixture struct {
	fake *fcmfake.Server
	sa   json.RawMessage
}

func newFixture(t testing.TB, opts ...fcmfake.Option) *fixture {
	t.Helper()
	fake := fcmfake.New(t, opts...)
	return &fixture{fake: fake, sa: fake.ServiceAccountJSON(project)}
}

// settings returns valid settings for the fixture's fake; edit changes them.
func (f *fixture) settings(edit func(map[string]any)) json.RawMessage {
	s := map[string]any{
		"project_id":      project,
		"service_account": f.sa,
		"endpoint":        f.fake.URL(),
		"ca_pem":          f.fake.CAPEM(),
	}
	if edit != nil {
		edit(s)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return raw
}

func env(logger *slog.Logger) herald.ProviderEnv {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return herald.ProviderEnv{Logger: logger, HTTPClient: &http.Client{Timeout: 10 * time.Second}, Now: time.Now}
}

func (f *fixture) provider(t testing.TB, edit func(map[string]any)) *fcm.Provider {
	t.Helper()
	p, err := fcm.New(f.settings(edit), env(nil))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func message(id string) herald.Message {
	return herald.Message{
		AppID: "app_1", NotificationID: "ntf_1", DeliveryID: id,
		Channel: herald.ChannelPush, Platform: herald.PlatformAndroid,
		To: deviceToken, Category: "orders", Priority: herald.PriorityHigh,
		Content: herald.Content{Title: "Your order shipped", Body: "It arrives on Tuesday.",
			Data: map[string]string{"order_id": "42"}},
		Attempt: 1,
	}
}

func sendCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConformance(t *testing.T) {
	f := newFixture(t)
	var sa struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(f.sa, &sa); err != nil || sa.PrivateKey == "" {
		t.Fatalf("the fake's service account has no private_key: %v", err)
	}
	// The key's PEM lines, so a leak is caught even when a log handler
	// escapes the newlines; "ya29." is the prefix of every access token
	// the fake issues (each provider fetches its own, so none is known here).
	secrets := []string{sa.PrivateKey, "ya29."}
	for line := range strings.Lines(sa.PrivateKey) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "-----") {
			secrets = append(secrets, line)
		}
	}
	providertest.Run(t, providertest.Suite{
		Kind:     fcm.Kind,
		New:      func(t *testing.T) herald.Provider { return f.provider(t, nil) },
		Message:  func() herald.Message { return message("") },
		Received: func(*testing.T) int { return f.fake.Received() },
		// PROVIDERS.md §0; each fault answers only the next request.
		Fault: func(_ *testing.T, k herald.OutcomeKind) bool {
			switch k {
			case herald.OutcomeRetry:
				f.fake.FailNext(1, http.StatusServiceUnavailable, "UNAVAILABLE", 0)
			case herald.OutcomePermanent:
				f.fake.FailNext(1, http.StatusBadRequest, "INVALID_ARGUMENT", 0)
			case herald.OutcomeInvalidRecipient:
				f.fake.FailNext(1, http.StatusNotFound, "UNREGISTERED", 0)
			case herald.OutcomeConfigError:
				// Not 401: the adapter refreshes its token and retries once.
				f.fake.FailNext(1, http.StatusForbidden, "PERMISSION_DENIED", 0)
			default: // FCM has no opt-out answer
				return false
			}
			return true
		},
		Hang: func(*testing.T) { f.fake.Hang() },
		NewWithLogger: func(t *testing.T, logger *slog.Logger) herald.Provider {
			p, err := fcm.New(f.settings(nil), env(logger))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			return p
		},
		Secrets: secrets,
	})
}

func TestPayload(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t, nil)
	for _, tc := range []struct {
		name string
		m    func() herald.Message
	}{
		{"android_high", func() herald.Message { return message("dlv_golden_1") }},
		{"normal_with_url", func() herald.Message {
			m := message("dlv_golden_2")
			m.Priority = herald.PriorityNormal
			m.Content.URL = "https://example.com/orders/42"
			return m
		}},
		{"data_only_ios", func() herald.Message {
			m := message("dlv_golden_3")
			m.Platform = herald.PlatformIOS
			m.Content.Title, m.Content.Body = "", ""
			return m
		}},
		{"long_delivery_id", func() herald.Message { return message("dlv_" + strings.Repeat("x", 80)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.fake.Requests())
			out := p.Send(sendCtx(t), tc.m())
			if out.Kind != herald.OutcomeSent {
				t.Fatalf("Send = %v (%s)", out.Kind, out.Detail)
			}
			reqs := f.fake.Requests()
			if len(reqs) != before+1 {
				t.Fatalf("the fake got %d requests, want 1", len(reqs)-before)
			}
			r := reqs[len(reqs)-1]
			if out.ProviderMessageID != r.Name {
				t.Fatalf("ProviderMessageID = %q, want the fake's name %q", out.ProviderMessageID, r.Name)
			}
			if r.Proto != "HTTP/2.0" {
				t.Errorf("Proto = %q, want HTTP/2.0", r.Proto)
			}
			if got := r.Header.Get("Authorization"); !strings.HasPrefix(got, "Bearer ya29.") {
				t.Errorf("Authorization = %q", got)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, r.Body, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden(t, filepath.Join("testdata", tc.name+".json"), pretty.Bytes())
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t, nil)
	gone := deviceToken + "gone"
	f.fake.Unregister(gone)
	for _, tc := range []struct {
		name       string
		fail       func()
		edit       func(*herald.Message)
		want       herald.OutcomeKind
		retryAfter time.Duration
		detail     string
	}{
		{name: "sent", want: herald.OutcomeSent},
		{name: "unregistered", edit: func(m *herald.Message) { m.To = gone }, want: herald.OutcomeInvalidRecipient, detail: "UNREGISTERED"},
		{name: "malformed token", edit: func(m *herald.Message) { m.To = "not a token" }, want: herald.OutcomeInvalidRecipient, detail: "registration token"},
		{name: "empty token", edit: func(m *herald.Message) { m.To = "" }, want: herald.OutcomeInvalidRecipient},
		{name: "sender id mismatch", fail: func() { f.fake.FailNext(1, 403, "SENDER_ID_MISMATCH", 0) }, want: herald.OutcomeInvalidRecipient, detail: "SENDER_ID_MISMATCH"},
		{name: "quota", fail: func() { f.fake.FailNext(1, 429, "QUOTA_EXCEEDED", 7*time.Second) }, want: herald.OutcomeRetry, retryAfter: 7 * time.Second, detail: "QUOTA_EXCEEDED"},
		{name: "unavailable", fail: func() { f.fake.FailNext(1, 503, "UNAVAILABLE", 3*time.Second) }, want: herald.OutcomeRetry, retryAfter: 3 * time.Second, detail: "UNAVAILABLE"},
		{name: "internal", fail: func() { f.fake.FailNext(1, 500, "INTERNAL", 0) }, want: herald.OutcomeRetry, detail: "INTERNAL"},
		{name: "third party auth", fail: func() { f.fake.FailNext(1, 401, "THIRD_PARTY_AUTH_ERROR", 0) }, want: herald.OutcomeConfigError, detail: "THIRD_PARTY_AUTH_ERROR"},
		{name: "permission denied", fail: func() { f.fake.FailNext(1, 403, "PERMISSION_DENIED", 0) }, want: herald.OutcomeConfigError, detail: "PERMISSION_DENIED"},
		{name: "invalid argument", fail: func() { f.fake.FailNext(1, 400, "INVALID_ARGUMENT", 0) }, want: herald.OutcomePermanent, detail: "INVALID_ARGUMENT"},
		{name: "too big", edit: func(m *herald.Message) { m.Content.Body = strings.Repeat("x", 5000) }, want: herald.OutcomePermanent, detail: "too big"},
		{name: "reserved data key", edit: func(m *herald.Message) { m.Content.Data = map[string]string{"google.x": "1"} }, want: herald.OutcomePermanent, detail: "reserved"},
		{name: "no delivery id", edit: func(m *herald.Message) { m.DeliveryID = "" }, want: herald.OutcomePermanent},
		{name: "unauthenticated twice", fail: func() { f.fake.FailNext(2, 401, "UNAUTHENTICATED", 0) }, want: herald.OutcomeConfigError, detail: "UNAUTHENTICATED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fail != nil {
				tc.fail()
			}
			m := message(fmt.Sprintf("dlv_outcome_%s", strings.ReplaceAll(tc.name, " ", "_")))
			if tc.edit != nil {
				tc.edit(&m)
			}
			out := p.Send(sendCtx(t), m)
			if out.Kind != tc.want {
				t.Fatalf("Send = %v (%s), want %v", out.Kind, out.Detail, tc.want)
			}
			if out.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", out.RetryAfter, tc.retryAfter)
			}
			if !strings.Contains(out.Detail, tc.detail) {
				t.Errorf("Detail = %q, want it to mention %q", out.Detail, tc.detail)
			}
			if strings.Contains(out.Detail, "ya29.") || strings.Contains(out.Detail, "PRIVATE KEY") {
				t.Errorf("Detail leaks a credential: %q", out.Detail)
			}
		})
	}
}

func TestConfigOutcomes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other := fcmfake.New(t)
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
		want herald.OutcomeKind
	}{
		// The account belongs to another project: FCM answers PERMISSION_DENIED.
		{"wrong project", func(s map[string]any) { s["project_id"] = "someone-else" }, herald.OutcomeConfigError},
		// The token endpoint does not know the account (deleted key).
		{"unknown account", func(s map[string]any) {
			var sa map[string]any
			_ = json.Unmarshal(other.ServiceAccountJSON(project), &sa)
			sa["token_uri"] = f.fake.URL() + "/token"
			s["service_account"] = sa
		}, herald.OutcomeConfigError},
		// Without ca_pem the fake's certificate is not trusted.
		{"untrusted certificate", func(s map[string]any) { delete(s, "ca_pem") }, herald.OutcomeConfigError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := f.provider(t, tc.edit).Send(sendCtx(t), message("dlv_cfg"))
			if out.Kind != tc.want {
				t.Fatalf("Send = %v (%s), want %v", out.Kind, out.Detail, tc.want)
			}
		})
	}
}

func TestNetworkErrorRetries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Nothing listens on the endpoint; the token endpoint still works.
	p := f.provider(t, func(s map[string]any) { s["endpoint"] = "https://127.0.0.1:1" })
	out := p.Send(sendCtx(t), message("dlv_net"))
	if out.Kind != herald.OutcomeRetry {
		t.Fatalf("Send = %v (%s), want retry", out.Kind, out.Detail)
	}
}

func TestTokenReused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t, nil)
	for i := range 50 {
		if out := p.Send(sendCtx(t), message(fmt.Sprintf("dlv_reuse_%d", i))); out.Kind != herald.OutcomeSent {
			t.Fatalf("send %d = %v (%s)", i, out.Kind, out.Detail)
		}
	}
	if got := f.fake.TokensIssued(); got != 1 {
		t.Fatalf("TokensIssued = %d after 50 sends, want 1", got)
	}
}

func TestExpiredTokenRefreshed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t, nil)
	if out := p.Send(sendCtx(t), message("dlv_exp_0")); out.Kind != herald.OutcomeSent {
		t.Fatalf("first send = %v (%s)", out.Kind, out.Detail)
	}
	f.fake.ExpireTokens()
	before := len(f.fake.Requests())
	out := p.Send(sendCtx(t), message("dlv_exp_1"))
	if out.Kind != herald.OutcomeSent {
		t.Fatalf("send after ExpireTokens = %v (%s), want sent", out.Kind, out.Detail)
	}
	reqs := f.fake.Requests()[before:]
	if len(reqs) != 2 || reqs[0].Status != http.StatusUnauthorized || reqs[1].Status != http.StatusOK {
		t.Fatalf("the fake saw %d requests after expiry, want a 401 then a 200", len(reqs))
	}
	if got := f.fake.TokensIssued(); got != 2 {
		t.Fatalf("TokensIssued = %d, want 2", got)
	}
}

func TestConcurrentRefresh(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t, nil)
	if out := p.Send(sendCtx(t), message("dlv_cc_warm")); out.Kind != herald.OutcomeSent {
		t.Fatalf("warm-up = %v (%s)", out.Kind, out.Detail)
	}
	f.fake.ExpireTokens()
	const n = 50
	outs := make([]herald.Outcome, n)
	var wg sync.WaitGroup
	ctx := sendCtx(t)
	for i := range n {
		wg.Go(func() { outs[i] = p.Send(ctx, message(fmt.Sprintf("dlv_cc_%d", i))) })
	}
	wg.Wait()
	for i, out := range outs {
		if out.Kind != herald.OutcomeSent {
			t.Errorf("send %d = %v (%s)", i, out.Kind, out.Detail)
		}
	}
	// One token before the expiry, one after: concurrent 401s refresh once.
	if got := f.fake.TokensIssued(); got != 2 {
		t.Fatalf("TokensIssued = %d, want 2", got)
	}
	if got := f.fake.Received(); got != n+1 {
		t.Fatalf("Received = %d, want %d", got, n+1)
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	t.Run("deadline while the server hangs", func(t *testing.T) {
		f := newFixture(t)
		p := f.provider(t, nil)
		if out := p.Send(sendCtx(t), message("dlv_ctx_warm")); out.Kind != herald.OutcomeSent {
			t.Fatalf("warm-up = %v (%s)", out.Kind, out.Detail)
		}
		f.fake.Hang()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		out := p.Send(ctx, message("dlv_ctx_hang"))
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("Send took %v after its 200ms deadline", took)
		}
		if out.Kind != herald.OutcomeRetry {
			t.Fatalf("Send = %v (%s), want retry", out.Kind, out.Detail)
		}
	})
	t.Run("canceled during latency", func(t *testing.T) {
		f := newFixture(t, fcmfake.WithLatency(time.Minute))
		p := f.provider(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		out := p.Send(ctx, message("dlv_ctx_cancel"))
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("Send took %v after cancel", took)
		}
		if out.Kind == herald.OutcomeSent {
			t.Fatal("a canceled send reported sent")
		}
		if f.fake.Received() != 0 {
			t.Fatal("the fake accepted a canceled send")
		}
	})
}

func TestNoCredentialsInLogs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := fcm.New(f.settings(nil), env(logger))
	if err != nil {
		t.Fatal(err)
	}
	f.fake.FailNext(1, 403, "PERMISSION_DENIED", 0)
	p.Send(sendCtx(t), message("dlv_log"))
	log := buf.String()
	if !strings.Contains(log, "dlv_log") {
		t.Fatalf("the failure was not logged: %q", log)
	}
	for _, secret := range []string{"ya29.", "PRIVATE KEY", "Bearer"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log contains %q: %s", secret, log)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSettings(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	asString, err := json.Marshal(string(f.sa))
	if err != nil {
		t.Fatal(err)
	}
	var saObj map[string]any
	if err := json.Unmarshal(f.sa, &saObj); err != nil {
		t.Fatal(err)
	}
	saWith := func(k string, v any) map[string]any {
		m := map[string]any{}
		for key, val := range saObj {
			m[key] = val
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		edit  func(map[string]any)
		field string // "" when valid
	}{
		{"service account as object", nil, ""},
		{"service account as string", func(s map[string]any) { s["service_account"] = json.RawMessage(asString) }, ""},
		{"ttl", func(s map[string]any) { s["ttl"] = "90m" }, ""},
		{"ios too", func(s map[string]any) { s["platforms"] = []string{"android", "ios"} }, ""},
		{"missing project_id", func(s map[string]any) { delete(s, "project_id") }, "settings.project_id"},
		{"missing service_account", func(s map[string]any) { delete(s, "service_account") }, "settings.service_account"},
		{"service_account bad JSON string", func(s map[string]any) { s["service_account"] = `{"type": "service_account",` }, "settings.service_account"},
		{"service_account a number", func(s map[string]any) { s["service_account"] = 42 }, "settings.service_account"},
		{"service_account without client_email", func(s map[string]any) { s["service_account"] = saWith("client_email", nil) }, "settings.service_account"},
		{"service_account bad key", func(s map[string]any) {
			s["service_account"] = saWith("private_key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
		}, "settings.service_account"},
		{"service_account wrong type", func(s map[string]any) { s["service_account"] = saWith("type", "authorized_user") }, "settings.service_account"},
		{"service_account http token_uri", func(s map[string]any) { s["service_account"] = saWith("token_uri", "http://example.com/token") }, "settings.service_account"},
		{"unknown field", func(s map[string]any) { s["api_key"] = "x" }, "settings.api_key"},
		{"mistyped field", func(s map[string]any) { s["project_id"] = 7 }, "settings.project_id"},
		{"web platform", func(s map[string]any) { s["platforms"] = []string{"web"} }, "settings.platforms[0]"},
		{"empty platforms", func(s map[string]any) { s["platforms"] = []string{} }, "settings.platforms"},
		{"http endpoint", func(s map[string]any) { s["endpoint"] = "http://fcm.example.com" }, "settings.endpoint"},
		{"bad ca_pem", func(s map[string]any) { s["ca_pem"] = "nope" }, "settings.ca_pem"},
		{"bad ttl", func(s map[string]any) { s["ttl"] = "40000h" }, "settings.ttl"},
		{"project with slash", func(s map[string]any) { s["project_id"] = "a/b" }, "settings.project_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := fcm.New(f.settings(tc.edit), env(nil))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if out := p.Send(sendCtx(t), message("dlv_settings")); out.Kind != herald.OutcomeSent {
					t.Fatalf("Send = %v (%s)", out.Kind, out.Detail)
				}
				return
			}
			var he *herald.Error
			if !errors.As(err, &he) || he.Code != herald.CodeInvalid {
				t.Fatalf("New = %v, want a CodeInvalid *herald.Error", err)
			}
			var fields []string
			for _, fe := range he.Fields {
				fields = append(fields, fe.Field)
				if strings.Contains(fe.Message, "PRIVATE KEY") || strings.Contains(fe.Message, "AAAA") {
					t.Errorf("the message quotes the key: %q", fe.Message)
				}
			}
			if len(fields) != 1 || fields[0] != tc.field {
				t.Fatalf("fields = %v, want [%s]", fields, tc.field)
			}
		})
	}
}

func TestPlatforms(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if got, want := f.provider(t, nil).Platforms(), []herald.Platform{herald.PlatformAndroid}; !cmp.Equal(got, want) {
		t.Errorf("default Platforms() = %v, want %v", got, want)
	}
	p := f.provider(t, func(s map[string]any) { s["platforms"] = []string{"ios", "android"} })
	if got, want := p.Platforms(), []herald.Platform{herald.PlatformIOS, herald.PlatformAndroid}; !cmp.Equal(got, want) {
		t.Errorf("Platforms() = %v, want %v", got, want)
	}
	if p.Kind() != "fcm" {
		t.Errorf("Kind() = %q", p.Kind())
	}
}

func BenchmarkSend(b *testing.B) {
	f := newFixture(b)
	p := f.provider(b, nil)
	ctx := context.Background()
	m := message("dlv_bench")
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		if out := p.Send(ctx, m); out.Kind != herald.OutcomeSent {
			b.Fatalf("Send = %v (%s)", out.Kind, out.Detail)
		}
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "sends/s")
}

func BenchmarkSendParallel(b *testing.B) {
	f := newFixture(b)
	p := f.provider(b, nil)
	m := message("dlv_bench")
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if out := p.Send(context.Background(), m); out.Kind != herald.OutcomeSent {
				b.Errorf("Send = %v (%s)", out.Kind, out.Detail)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sends/s")
}
