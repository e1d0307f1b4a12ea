package sendgrid_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/providertest"
	"github.com/heraldhq/herald/internal/provider/providertest/sendgridfake"
	"github.com/heraldhq/herald/internal/provider/sendgrid"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

const apiKey = "SG.test-key.s3cr3t-value"

func newFake(t testing.TB, opts ...sendgridfake.Option) *sendgridfake.Server {
	t.Helper()
	return sendgridfake.New(t, append([]sendgridfake.Option{sendgridfake.WithAPIKey(apiKey)}, opts...)...)
}

func settingsFor(srv *sendgridfake.Server) map[string]any {
	return map[string]any{
		"api_key": apiKey, "from": "noreply@mail.example.com", "from_name": "Herald",
		"endpoint": srv.URL(), "ca_pem": srv.CAPEM(),
	}
}

func newProvider(t testing.TB, settings map[string]any, env herald.ProviderEnv) *sendgrid.Provider {
	t.Helper()
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sendgrid.New(raw, env)
	if err != nil {
		t.Fatalf("sendgrid.New(%s): %v", raw, err)
	}
	return p
}

func message(id string) herald.Message {
	return herald.Message{
		AppID: "app_1", NotificationID: "ntf_1", DeliveryID: id, Channel: herald.ChannelEmail,
		To: "ada@example.com", Category: "marketing",
		Content: herald.Content{
			Subject: "Your weekly digest",
			Body:    "Three new posts this week.",
			HTML:    "<p>Three new posts this week. <a href=\"https://example.com/?a=1&b=2\">Read</a></p>",
		},
		UnsubscribeURL: "https://herald.example.com/u/tok_abc",
	}
}

func send(t testing.TB, p herald.Provider, m herald.Message) herald.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Send(ctx, m)
}

func TestConformance(t *testing.T) {
	srv := newFake(t)
	providertest.Run(t, providertest.Suite{
		Kind:     sendgrid.Kind,
		New:      func(t *testing.T) herald.Provider { return newProvider(t, settingsFor(srv), herald.ProviderEnv{}) },
		Message:  func() herald.Message { return message("dlv_x") },
		Received: func(*testing.T) int { return srv.Received() },
		// PROVIDERS.md §0; each fault answers only the next request.
		// SendGrid reports bounces and unsubscribes by webhook, never on
		// send, so it has no invalid-recipient or opted-out answer.
		Fault: func(_ *testing.T, k herald.OutcomeKind) bool {
			switch k {
			case herald.OutcomeRetry:
				srv.FailNext(1, http.StatusServiceUnavailable, "")
			case herald.OutcomePermanent:
				srv.FailNext(1, http.StatusBadRequest, "")
			case herald.OutcomeConfigError:
				srv.FailNext(1, http.StatusUnauthorized, "")
			default:
				return false
			}
			return true
		},
		Hang: func(*testing.T) { srv.Hang() },
		NewWithLogger: func(t *testing.T, logger *slog.Logger) herald.Provider {
			return newProvider(t, settingsFor(srv), herald.ProviderEnv{Logger: logger})
		},
		Secrets: []string{apiKey},
	})
	// Every request the suite made must have been spec-valid; the faults it
	// asked for are answered without a problem in the request.
	for i, r := range srv.Requests() {
		if r.Problem != "" && r.Problem != "injected failure" && r.Status != http.StatusAccepted {
			t.Errorf("request %d answered %d: %s", i, r.Status, r.Problem)
		}
	}
}

func TestSendPayload(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	p := newProvider(t, settingsFor(srv), herald.ProviderEnv{})
	out := send(t, p, message("dlv_01HZX"))
	if out.Kind != herald.OutcomeSent {
		t.Fatalf("Send = %v (%s), want sent", out.Kind, out.Detail)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the fake saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Status != http.StatusAccepted || r.Problem != "" {
		t.Fatalf("the fake answered %d: %s", r.Status, r.Problem)
	}
	if out.ProviderMessageID != r.MessageID {
		t.Errorf("ProviderMessageID = %q, want the X-Message-Id %q", out.ProviderMessageID, r.MessageID)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+apiKey {
		t.Errorf("Authorization = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if r.Method != http.MethodPost || r.Path != "/v3/mail/send" {
		t.Errorf("request = %s %s", r.Method, r.Path)
	}

	want := sendgridfake.Mail{
		Personalizations: []sendgridfake.Personalization{{
			To: []sendgridfake.Address{{Email: "ada@example.com"}},
			CustomArgs: map[string]string{
				"herald_delivery_id": "dlv_01HZX", "herald_notification_id": "ntf_1", "herald_app_id": "app_1",
			},
		}},
		From:    sendgridfake.Address{Email: "noreply@mail.example.com", Name: "Herald"},
		Subject: "Your weekly digest",
		Content: []sendgridfake.Content{
			{Type: "text/plain", Value: "Three new posts this week."},
			{Type: "text/html", Value: message("").Content.HTML},
		},
		Categories: []string{"marketing"},
		Headers: map[string]string{
			"Message-ID":            "<dlv_01HZX@mail.example.com>",
			"List-Unsubscribe":      "<https://herald.example.com/u/tok_abc>",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		},
	}
	if diff := cmp.Diff(want, r.Mail); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	golden(t, "mail_send.json", r.Raw)
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatalf("golden %s: %v", name, err)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run with -update to create it)", name, err)
	}
	if diff := cmp.Diff(string(want), pretty.String()); diff != "" {
		t.Errorf("payload differs from %s (-want +got):\n%s", path, diff)
	}
}

func TestSendVariants(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	p := newProvider(t, settingsFor(srv), herald.ProviderEnv{})

	tests := []struct {
		name   string
		edit   func(*herald.Message)
		check  func(t *testing.T, m sendgridfake.Mail)
		wantID string
	}{
		{
			name: "text only, no category, no unsubscribe",
			edit: func(m *herald.Message) { m.Content.HTML, m.Category, m.UnsubscribeURL = "", "", "" },
			check: func(t *testing.T, m sendgridfake.Mail) {
				if len(m.Content) != 1 || m.Content[0].Type != "text/plain" {
					t.Errorf("content = %+v", m.Content)
				}
				if m.Categories != nil {
					t.Errorf("categories = %v, want none", m.Categories)
				}
				if _, ok := m.Headers["List-Unsubscribe"]; ok {
					t.Error("List-Unsubscribe set without an unsubscribe URL")
				}
			},
		},
		{
			name: "HTML only",
			edit: func(m *herald.Message) { m.Content.Body = "" },
			check: func(t *testing.T, m sendgridfake.Mail) {
				if len(m.Content) != 1 || m.Content[0].Type != "text/html" {
					t.Errorf("content = %+v", m.Content)
				}
			},
		},
		{
			name: "plain-HTTP unsubscribe keeps the link, not one-click",
			edit: func(m *herald.Message) { m.UnsubscribeURL = "http://localhost:8080/u/tok" },
			check: func(t *testing.T, m sendgridfake.Mail) {
				if got := m.Headers["List-Unsubscribe"]; got != "<http://localhost:8080/u/tok>" {
					t.Errorf("List-Unsubscribe = %q", got)
				}
				if got, ok := m.Headers["List-Unsubscribe-Post"]; ok {
					t.Errorf("List-Unsubscribe-Post = %q on a non-HTTPS URL (RFC 8058 needs HTTPS)", got)
				}
			},
		},
		{
			name: "delivery id unfit for a Message-ID is hashed",
			edit: func(m *herald.Message) { m.DeliveryID = "dlv with spaces/and@at" },
			check: func(t *testing.T, m sendgridfake.Mail) {
				id := m.Headers["Message-ID"]
				if !strings.HasSuffix(id, "@mail.example.com>") || strings.Contains(id, " ") {
					t.Errorf("Message-ID = %q", id)
				}
				if got := m.Personalizations[0].CustomArgs["herald_delivery_id"]; got != "dlv with spaces/and@at" {
					t.Errorf("custom arg = %q, want the delivery id unchanged", got)
				}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := message(fmt.Sprintf("dlv_variant_%d", i))
			tt.edit(&m)
			out := send(t, p, m)
			if out.Kind != herald.OutcomeSent {
				t.Fatalf("Send = %v (%s), want sent", out.Kind, out.Detail)
			}
			for _, r := range srv.Requests() {
				if r.MessageID == out.ProviderMessageID {
					tt.check(t, r.Mail)
					return
				}
			}
			t.Fatal("the fake has no request for this send")
		})
	}
}

func TestRejectsBeforeSending(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	p := newProvider(t, settingsFor(srv), herald.ProviderEnv{})
	tests := []struct {
		name string
		edit func(*herald.Message)
		want herald.OutcomeKind
	}{
		{"CR in subject", func(m *herald.Message) { m.Content.Subject = "Hi\r\nBcc: eve@example.com" }, herald.OutcomePermanent},
		{"LF in unsubscribe URL", func(m *herald.Message) { m.UnsubscribeURL = "https://h.example/u\nX-Evil: 1" }, herald.OutcomePermanent},
		{"LF in recipient", func(m *herald.Message) { m.To = "ada@example.com\nBcc: eve@example.com" }, herald.OutcomePermanent},
		{"relative unsubscribe URL", func(m *herald.Message) { m.UnsubscribeURL = "/u/tok" }, herald.OutcomePermanent},
		{"angle bracket in unsubscribe URL", func(m *herald.Message) { m.UnsubscribeURL = "https://h.example/u>, <mailto:x@y>" }, herald.OutcomePermanent},
		{"no content", func(m *herald.Message) { m.Content.Body, m.Content.HTML = "", "" }, herald.OutcomePermanent},
		{"no delivery id", func(m *herald.Message) { m.DeliveryID = "" }, herald.OutcomePermanent},
		{"not an address", func(m *herald.Message) { m.To = "ada" }, herald.OutcomeInvalidRecipient},
		{"no domain", func(m *herald.Message) { m.To = "ada@" }, herald.OutcomeInvalidRecipient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := message("dlv_reject")
			tt.edit(&m)
			if out := send(t, p, m); out.Kind != tt.want {
				t.Fatalf("Send = %v (%s), want %v", out.Kind, out.Detail, tt.want)
			}
		})
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("the fake saw %d requests, want none", n)
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	env := herald.ProviderEnv{Now: func() time.Time { return now }}
	tests := []struct {
		name      string
		status    int
		body      string
		opts      []sendgridfake.FailOption
		want      herald.OutcomeKind
		retry     time.Duration
		detailHas string
	}{
		{"400 lists the errors", 400, `{"errors":[{"message":"The from email does not contain a valid address.","field":"from.email","help":"http://sendgrid.com/docs"},{"message":"second","field":null}],"id":"abc"}`,
			nil, herald.OutcomePermanent, 0, "The from email does not contain a valid address. (field from.email); second"},
		{"413", 413, "", nil, herald.OutcomePermanent, 0, "content too large"},
		{"401", 401, "", nil, herald.OutcomeConfigError, 0, "authorization required"},
		{"403", 403, `{"errors":[{"field":null,"message":"The from address does not match a verified Sender Identity."}]}`,
			nil, herald.OutcomeConfigError, 0, "verified Sender Identity"},
		{"404", 404, "", nil, herald.OutcomeConfigError, 0, "not found"},
		{"429 waits for X-RateLimit-Reset", 429, "", []sendgridfake.FailOption{sendgridfake.RateLimitReset(now.Add(42 * time.Second))},
			herald.OutcomeRetry, 42 * time.Second, "too many requests"},
		{"429 prefers X-RateLimit-Reset over Retry-After", 429, "", []sendgridfake.FailOption{
			sendgridfake.RateLimitReset(now.Add(42 * time.Second)), sendgridfake.RetryAfter(5 * time.Second)},
			herald.OutcomeRetry, 42 * time.Second, "too many requests"},
		{"429 with Retry-After", 429, "", []sendgridfake.FailOption{sendgridfake.RetryAfter(9 * time.Second)},
			herald.OutcomeRetry, 9 * time.Second, "too many requests"},
		{"429 with a past reset", 429, "", []sendgridfake.FailOption{sendgridfake.RateLimitReset(now.Add(-time.Minute))},
			herald.OutcomeRetry, 0, "too many requests"},
		{"429 bare", 429, "", nil, herald.OutcomeRetry, 0, "429"},
		{"500", 500, "", nil, herald.OutcomeRetry, 0, "internal server error"},
		{"503 with Retry-After", 503, "upstream unavailable", []sendgridfake.FailOption{sendgridfake.RetryAfter(3 * time.Second)},
			herald.OutcomeRetry, 3 * time.Second, "upstream unavailable"},
		{"an echoed key is redacted", 400, `{"errors":[{"message":"bad key ` + apiKey + `","field":null}]}`,
			nil, herald.OutcomePermanent, 0, "bad key [redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFake(t)
			var logs bytes.Buffer
			env := env
			env.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			p := newProvider(t, settingsFor(srv), env)
			srv.FailNext(1, tt.status, tt.body, tt.opts...)
			out := send(t, p, message("dlv_outcome"))
			if out.Kind != tt.want || out.RetryAfter != tt.retry {
				t.Fatalf("Send = %v after %v (%s), want %v after %v", out.Kind, out.RetryAfter, out.Detail, tt.want, tt.retry)
			}
			if !strings.Contains(out.Detail, tt.detailHas) {
				t.Errorf("Detail = %q, want it to contain %q", out.Detail, tt.detailHas)
			}
			if strings.Contains(out.Detail, apiKey) || strings.Contains(logs.String(), apiKey) {
				t.Errorf("the API key leaked: detail %q, logs %q", out.Detail, logs.String())
			}
			if out.ProviderMessageID != "" {
				t.Errorf("ProviderMessageID = %q on a failure", out.ProviderMessageID)
			}
			if srv.Received() != 0 {
				t.Errorf("the fake received %d messages", srv.Received())
			}
			// The next send goes through: failures were only injected once.
			if out := send(t, p, message("dlv_outcome")); out.Kind != herald.OutcomeSent {
				t.Errorf("the send after the failure = %v (%s)", out.Kind, out.Detail)
			}
		})
	}
}

func TestOutcomeWrongKey(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	s := settingsFor(srv)
	s["api_key"] = "SG.revoked"
	out := send(t, newProvider(t, s, herald.ProviderEnv{}), message("dlv_key"))
	if out.Kind != herald.OutcomeConfigError {
		t.Fatalf("Send = %v (%s), want config_error", out.Kind, out.Detail)
	}
	if strings.Contains(out.Detail, "SG.revoked") {
		t.Errorf("Detail %q holds the key", out.Detail)
	}
}

func TestOutcomeWrongEndpointPath(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	s := settingsFor(srv)
	s["endpoint"] = srv.URL() + "/v2"
	if out := send(t, newProvider(t, s, herald.ProviderEnv{}), message("dlv_path")); out.Kind != herald.OutcomeConfigError {
		t.Fatalf("Send = %v (%s), want config_error", out.Kind, out.Detail)
	}
}

func TestOutcomeNetwork(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: take one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	p := newProvider(t, map[string]any{"api_key": apiKey, "from": "noreply@example.com", "endpoint": "https://" + addr}, herald.ProviderEnv{})
	out := send(t, p, message("dlv_net"))
	if out.Kind != herald.OutcomeRetry {
		t.Fatalf("Send = %v (%s), want retry", out.Kind, out.Detail)
	}
	if strings.Contains(out.Detail, apiKey) {
		t.Errorf("Detail %q holds the key", out.Detail)
	}
}

func TestOutcomeUntrustedCertificate(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	s := settingsFor(srv)
	delete(s, "ca_pem")
	out := send(t, newProvider(t, s, herald.ProviderEnv{}), message("dlv_tls"))
	if out.Kind != herald.OutcomeConfigError {
		t.Fatalf("Send = %v (%s), want config_error", out.Kind, out.Detail)
	}
	if len(srv.Requests()) != 0 {
		t.Error("the request got through an untrusted TLS connection")
	}
}

func TestContextCancel(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	srv.Hang()
	p := newProvider(t, settingsFor(srv), herald.ProviderEnv{})

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		out := p.Send(ctx, message("dlv_deadline"))
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Send took %v past a 200ms deadline", took)
		}
		if out.Kind != herald.OutcomeRetry {
			t.Fatalf("Send = %v (%s), want retry", out.Kind, out.Detail)
		}
		if !strings.Contains(out.Detail, context.DeadlineExceeded.Error()) {
			t.Errorf("Detail = %q, want it to name the deadline", out.Detail)
		}
	})

	t.Run("cancel in flight", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan herald.Outcome, 1)
		go func() { done <- p.Send(ctx, message("dlv_cancel")) }()
		// Cancel once the request is in flight or, at worst, before it starts:
		// both must end the send promptly and not as sent.
		time.AfterFunc(50*time.Millisecond, cancel)
		select {
		case out := <-done:
			if out.Kind != herald.OutcomeRetry {
				t.Fatalf("Send = %v (%s), want retry", out.Kind, out.Detail)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Send did not return after its context was canceled")
		}
	})
	if srv.Received() != 0 {
		t.Errorf("the fake received %d messages", srv.Received())
	}
}

func TestConcurrentWithFailures(t *testing.T) {
	t.Parallel()
	srv := newFake(t, sendgridfake.WithLatency(2*time.Millisecond))
	p := newProvider(t, settingsFor(srv), herald.ProviderEnv{})
	const n, failures = 40, 5
	srv.FailNext(failures, 503, "")
	outs := make([]herald.Outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { outs[i] = send(t, p, message(fmt.Sprintf("dlv_c%02d", i))) })
	}
	wg.Wait()
	var sent, retried int
	ids := map[string]bool{}
	for i, out := range outs {
		switch out.Kind {
		case herald.OutcomeSent:
			sent++
			if ids[out.ProviderMessageID] {
				t.Errorf("send %d: ProviderMessageID %q repeats", i, out.ProviderMessageID)
			}
			ids[out.ProviderMessageID] = true
		case herald.OutcomeRetry:
			retried++
		default:
			t.Errorf("send %d = %v (%s)", i, out.Kind, out.Detail)
		}
	}
	if sent != n-failures || retried != failures || srv.Received() != sent {
		t.Fatalf("sent %d, retried %d, fake received %d; want %d, %d, %d", sent, retried, srv.Received(), n-failures, failures, n-failures)
	}
	// Each accepted request carries its own delivery id.
	seen := map[string]bool{}
	for _, r := range srv.Requests() {
		if r.Status == http.StatusAccepted {
			seen[r.Mail.Personalizations[0].CustomArgs["herald_delivery_id"]] = true
		}
	}
	if len(seen) != sent {
		t.Errorf("%d distinct delivery ids among %d accepted requests", len(seen), sent)
	}
}

// Event Webhook test vector from sendgrid-go's tests (PROVIDERS.md §5.3).
const (
	vectorKey       = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
	vectorTimestamp = "1588788367"
	vectorPayload   = `{"category":"example_payload","event":"test_event","message_id":"message_id"}`
	vectorSignature = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0="
)

func TestWebhookPublicKey(t *testing.T) {
	t.Parallel()
	p := newProvider(t, map[string]any{"api_key": apiKey, "from": "a@example.com", "webhook_public_key": vectorKey}, herald.ProviderEnv{})
	key := p.WebhookPublicKey()
	if key == nil {
		t.Fatal("WebhookPublicKey() = nil")
	}
	// The parsed key verifies SendGrid's published signature.
	sig, _ := base64.StdEncoding.DecodeString(vectorSignature)
	sum := sha256.Sum256([]byte(vectorTimestamp + vectorPayload))
	if !ecdsa.VerifyASN1(key, sum[:], sig) {
		t.Error("the parsed key does not verify the test vector")
	}
	if p := newProvider(t, map[string]any{"api_key": apiKey, "from": "a@example.com"}, herald.ProviderEnv{}); p.WebhookPublicKey() != nil {
		t.Error("WebhookPublicKey() is set without the setting")
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	valid := func() map[string]any { return map[string]any{"api_key": apiKey, "from": "noreply@example.com"} }

	tests := []struct {
		name  string
		edit  func(map[string]any)
		field string // "" when valid
	}{
		{"minimal", func(map[string]any) {}, ""},
		{"every setting", func(s map[string]any) {
			s["from_name"], s["webhook_public_key"], s["endpoint"] = "Herald", vectorKey, "https://api.eu.sendgrid.com/"
		}, ""},
		{"from with a name", func(s map[string]any) { s["from"] = "Herald <noreply@example.com>" }, ""},
		{"missing api_key", func(s map[string]any) { delete(s, "api_key") }, "settings.api_key"},
		{"api_key with a line break", func(s map[string]any) { s["api_key"] = "SG.x\r\nX-Evil: 1" }, "settings.api_key"},
		{"missing from", func(s map[string]any) { delete(s, "from") }, "settings.from"},
		{"bad from", func(s map[string]any) { s["from"] = "not an address" }, "settings.from"},
		{"from without a domain", func(s map[string]any) { s["from"] = "noreply@" }, "settings.from"},
		{"from_name with a line break", func(s map[string]any) { s["from_name"] = "A\nB" }, "settings.from_name"},
		{"webhook key not base64", func(s map[string]any) { s["webhook_public_key"] = "not base64!" }, "settings.webhook_public_key"},
		{"webhook key not DER", func(s map[string]any) {
			s["webhook_public_key"] = base64.StdEncoding.EncodeToString([]byte("junk"))
		}, "settings.webhook_public_key"},
		{"webhook key P-384", func(s map[string]any) {
			s["webhook_public_key"] = base64.StdEncoding.EncodeToString(p384DER)
		}, "settings.webhook_public_key"},
		{"webhook key RSA", func(s map[string]any) {
			s["webhook_public_key"] = base64.StdEncoding.EncodeToString(rsaDER)
		}, "settings.webhook_public_key"},
		{"endpoint not a URL", func(s map[string]any) { s["endpoint"] = "api.sendgrid.com" }, "settings.endpoint"},
		{"endpoint with a query", func(s map[string]any) { s["endpoint"] = "https://api.sendgrid.com/?x=1" }, "settings.endpoint"},
		{"bad ca_pem", func(s map[string]any) { s["ca_pem"] = "no pem here" }, "settings.ca_pem"},
		{"unknown field", func(s map[string]any) { s["apikey"] = "x" }, "settings.apikey"},
		{"mistyped field", func(s map[string]any) { s["from"] = 42 }, "settings.from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := valid()
			tt.edit(s)
			raw, _ := json.Marshal(s)
			p, err := sendgrid.New(raw, herald.ProviderEnv{})
			if tt.field == "" {
				if err != nil {
					t.Fatalf("New(%s) = %v, want no error", raw, err)
				}
				if p.Kind() != "sendgrid" {
					t.Errorf("Kind() = %q", p.Kind())
				}
				return
			}
			var herr *herald.Error
			if !errors.As(err, &herr) || herr.Code != herald.CodeInvalid {
				t.Fatalf("New(%s) = %v, want a CodeInvalid *herald.Error", raw, err)
			}
			var fields []string
			for _, f := range herr.Fields {
				fields = append(fields, f.Field)
				if strings.Contains(f.Message, apiKey) {
					t.Errorf("the message %q holds the key", f.Message)
				}
			}
			if len(fields) != 1 || fields[0] != tt.field {
				t.Errorf("fields = %v, want [%s]", fields, tt.field)
			}
		})
	}
}

func TestEmptySettings(t *testing.T) {
	t.Parallel()
	_, err := sendgrid.New(nil, herald.ProviderEnv{})
	var herr *herald.Error
	if !errors.As(err, &herr) || len(herr.Fields) != 2 {
		t.Fatalf("New(nil) = %v, want api_key and from required", err)
	}
}

// BenchmarkSend measures sends against the spec-validating fake and, to
// show the adapter's own cost, against a bare TLS server that answers 202
// at once: the fake compiles SendGrid's schema for every request, which
// dominates the first figure.
func BenchmarkSend(b *testing.B) {
	b.Run("fake", func(b *testing.B) {
		srv := newFake(b)
		benchSend(b, newProvider(b, settingsFor(srv), herald.ProviderEnv{}))
	})
	b.Run("bare", func(b *testing.B) {
		var n atomic.Int64
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("X-Message-Id", strconv.FormatInt(n.Add(1), 10))
			w.WriteHeader(http.StatusAccepted)
		}))
		b.Cleanup(srv.Close)
		caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		benchSend(b, newProvider(b, map[string]any{
			"api_key": apiKey, "from": "noreply@mail.example.com", "endpoint": srv.URL, "ca_pem": string(caPEM),
		}, herald.ProviderEnv{}))
	})
}

func benchSend(b *testing.B, p herald.Provider) {
	m := message("dlv_bench")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if out := p.Send(ctx, m); out.Kind != herald.OutcomeSent {
				b.Errorf("Send = %v (%s)", out.Kind, out.Detail)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sends/s")
}
