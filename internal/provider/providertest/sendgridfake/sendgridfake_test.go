package sendgridfake_test

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/provider/providertest/sendgridfake"
)

const key = "SG.fake-key.secret"

const validBody = `{"personalizations":[{"to":[{"email":"ada@example.com"}],"custom_args":{"herald_delivery_id":"dlv_1"}}],
"from":{"email":"noreply@example.com","name":"Herald"},"subject":"Hi",
"content":[{"type":"text/plain","value":"Hi"},{"type":"text/html","value":"<p>Hi</p>"}],
"categories":["marketing"],
"headers":{"List-Unsubscribe":"<https://h.example/u/t>","List-Unsubscribe-Post":"List-Unsubscribe=One-Click"}}`

// post sends body to the fake's path with auth and returns the status and body.
func post(t *testing.T, srv *sendgridfake.Server, path, auth, body string) (int, http.Header, string) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(srv.CAPEM())) {
		t.Fatal("CAPEM holds no certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = roots
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

func TestAcceptsValid(t *testing.T) {
	t.Parallel()
	srv := sendgridfake.New(t, sendgridfake.WithAPIKey(key))
	status, h, body := post(t, srv, "/v3/mail/send", "Bearer "+key, validBody)
	if status != http.StatusAccepted || body != "" {
		t.Fatalf("answer = %d %q, want 202 with an empty body (problem: %s)", status, body, srv.Requests()[0].Problem)
	}
	if id := h.Get("X-Message-Id"); len(id) != 22 {
		t.Errorf("X-Message-Id = %q, want 22 characters", id)
	}
	if got := srv.Received(); got != 1 {
		t.Fatalf("Received = %d, want 1", got)
	}
	r := srv.Requests()[0]
	if got := r.Mail.Personalizations[0].CustomArgs["herald_delivery_id"]; got != "dlv_1" {
		t.Errorf("decoded custom arg = %q", got)
	}
	if r.MessageID != h.Get("X-Message-Id") {
		t.Errorf("recorded MessageID %q differs from the header %q", r.MessageID, h.Get("X-Message-Id"))
	}
}

func TestRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, auth, body string
		want                   int
		problem                string // part of the recorded problem
	}{
		{"no key", "/v3/mail/send", "", validBody, 401, "API key"},
		{"wrong key", "/v3/mail/send", "Bearer SG.other", validBody, 401, "API key"},
		{"key not exact", "/v3/mail/send", "bearer " + key, validBody, 401, "API key"},
		{"unknown path", "/v3/mail/sendx", "Bearer " + key, validBody, 404, ""},
		{"no from", "/v3/mail/send", "Bearer " + key,
			`{"personalizations":[{"to":[{"email":"ada@example.com"}]}],"subject":"x","content":[{"type":"text/plain","value":"x"}]}`, 400, "from"},
		{"bad email", "/v3/mail/send", "Bearer " + key,
			`{"personalizations":[{"to":[{"email":"not an address"}]}],"from":{"email":"a@example.com"},"subject":"x","content":[{"type":"text/plain","value":"x"}]}`, 400, "email"},
		{"empty content value", "/v3/mail/send", "Bearer " + key,
			`{"personalizations":[{"to":[{"email":"ada@example.com"}]}],"from":{"email":"a@example.com"},"subject":"x","content":[{"type":"text/plain","value":""}]}`, 400, "value"},
		{"forbidden header", "/v3/mail/send", "Bearer " + key,
			`{"personalizations":[{"to":[{"email":"ada@example.com"}]}],"from":{"email":"a@example.com"},"subject":"x","content":[{"type":"text/plain","value":"x"}],"headers":{"Reply-To":"x@example.com"}}`, 400, "may not be overridden"},
		{"html first", "/v3/mail/send", "Bearer " + key,
			`{"personalizations":[{"to":[{"email":"ada@example.com"}]}],"from":{"email":"a@example.com"},"subject":"x","content":[{"type":"text/html","value":"x"},{"type":"text/plain","value":"x"}]}`, 400, "text/plain must come first"},
		{"custom arg not a string", "/v3/mail/send", "Bearer " + key,
			`{"personalizations":[{"to":[{"email":"ada@example.com"}],"custom_args":{"n":1}}],"from":{"email":"a@example.com"},"subject":"x","content":[{"type":"text/plain","value":"x"}]}`, 400, "must be strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := sendgridfake.New(t, sendgridfake.WithAPIKey(key))
			status, _, body := post(t, srv, tt.path, tt.auth, tt.body)
			if status != tt.want {
				t.Fatalf("status = %d (%s), want %d", status, body, tt.want)
			}
			if !strings.Contains(body, `"errors"`) {
				t.Errorf("body %s is not SendGrid's error shape", body)
			}
			if srv.Received() != 0 {
				t.Error("a rejected request counted as received")
			}
			if p := srv.Requests()[0].Problem; !strings.Contains(p, tt.problem) {
				t.Errorf("problem = %q, want it to mention %q", p, tt.problem)
			}
		})
	}
}

func TestFailNext(t *testing.T) {
	t.Parallel()
	srv := sendgridfake.New(t)
	srv.APIKey(key)
	reset := time.Unix(1_900_000_000, 0)
	srv.FailNext(2, http.StatusTooManyRequests, "", sendgridfake.RateLimitReset(reset), sendgridfake.RetryAfter(7*time.Second))
	for range 2 {
		status, h, body := post(t, srv, "/v3/mail/send", "Bearer "+key, validBody)
		if status != 429 || !strings.Contains(body, "too many requests") {
			t.Fatalf("answer = %d %s, want 429 too many requests", status, body)
		}
		if h.Get("X-RateLimit-Reset") != "1900000000" || h.Get("Retry-After") != "7" {
			t.Errorf("headers = %v", h)
		}
	}
	if status, _, _ := post(t, srv, "/v3/mail/send", "Bearer "+key, validBody); status != 202 {
		t.Fatalf("third answer = %d, want 202", status)
	}
	if srv.Received() != 1 || len(srv.Requests()) != 3 {
		t.Fatalf("Received = %d, Requests = %d; want 1 and 3", srv.Received(), len(srv.Requests()))
	}
}

func TestHangReleasedByClient(t *testing.T) {
	t.Parallel()
	srv := sendgridfake.New(t, sendgridfake.WithAPIKey(key))
	srv.Hang()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(srv.CAPEM()))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = roots
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/v3/mail/send", strings.NewReader(validBody))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	if resp, err := (&http.Client{Transport: tr}).Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatal("a hung fake answered")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the client waited %v", took)
	}
	if srv.Received() != 0 {
		t.Error("a hung request counted as received")
	}
}

// BenchmarkMailSend measures the fake's cost per valid request (routing,
// authorisation and validation against the spec), over one connection.
func BenchmarkMailSend(b *testing.B) {
	srv := sendgridfake.New(b, sendgridfake.WithAPIKey(key))
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(srv.CAPEM())) {
		b.Fatal("CAPEM holds no certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = roots
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	for b.Loop() {
		req, err := http.NewRequest(http.MethodPost, srv.URL()+"/v3/mail/send", strings.NewReader(validBody))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
