package client_test

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/client"
)

// front is a real HTTP server in front of the test's Herald that can
// refuse or lose answers, the way a load balancer or a flaky network
// does. Every request it sees is recorded.
type front struct {
	*httptest.Server
	mu       sync.Mutex
	seen     []seenRequest
	override func(n int, w http.ResponseWriter, r *http.Request, forward func()) bool
}

type seenRequest struct {
	at             time.Time
	method, path   string
	idempotencyKey string
}

// newFront starts a front; override, when it returns true, has answered
// the n-th request (from 1) itself, maybe after forwarding it.
func newFront(t *testing.T, override func(n int, w http.ResponseWriter, r *http.Request, forward func()) bool) *front {
	t.Helper()
	target, err := url.Parse(heraldURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	f := &front{override: override}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, seenRequest{time.Now(), r.Method, r.URL.Path, r.Header.Get("Idempotency-Key")})
		n := len(f.seen)
		f.mu.Unlock()
		forward := func() {
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
		}
		if f.override != nil && f.override(n, w, r, forward) {
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *front) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func fastRetries(attempts int) client.Option {
	return client.WithRetries(attempts, time.Millisecond, 5*time.Millisecond)
}

// notificationsOf counts the notifications with a delivery to user.
func notificationsOf(t *testing.T, user string) int {
	t.Helper()
	list, err := client.New(heraldURL, apiKey).ListNotifications(t.Context(), client.ListNotificationsParams{UserID: user})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Data)
}

// TestSendRetryNeverSendsTwice: Herald accepts the send but the answer is
// lost (a 502 from the front, or a connection cut); the client sends again
// with the same Idempotency-Key and gets the first answer back, and Herald
// holds one notification.
func TestSendRetryNeverSendsTwice(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		lose func(w http.ResponseWriter)
	}{
		{"502", func(w http.ResponseWriter) { http.Error(w, "bad gateway", http.StatusBadGateway) }},
		{"connection cut", func(w http.ResponseWriter) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := "retry-" + strings.ReplaceAll(tt.name, " ", "-")
			if _, err := client.New(heraldURL, apiKey).PutUser(t.Context(), user, client.PutUserRequest{Email: user + "@example.com"}); err != nil {
				t.Fatal(err)
			}
			f := newFront(t, func(n int, w http.ResponseWriter, r *http.Request, forward func()) bool {
				if n == 1 {
					forward()  // Herald accepts it...
					tt.lose(w) // ...and the answer never arrives
					return true
				}
				return false
			})
			acc, err := client.New(f.URL, apiKey, fastRetries(3)).Send(t.Context(), client.SendRequest{
				To: []client.Recipient{{UserID: user}}, Channels: []string{"email"}, Content: &client.Content{Subject: "s", Body: "b"}})
			if err != nil {
				t.Fatal(err)
			}
			seen := f.requests()
			if len(seen) != 2 {
				t.Fatalf("the front saw %d requests, want 2", len(seen))
			}
			if seen[0].idempotencyKey == "" || seen[0].idempotencyKey != seen[1].idempotencyKey || seen[0].idempotencyKey != acc.IdempotencyKey {
				t.Errorf("Idempotency-Keys %q and %q, answer's %q: want one key on every attempt", seen[0].idempotencyKey, seen[1].idempotencyKey, acc.IdempotencyKey)
			}
			if !acc.Replayed {
				t.Error("the second attempt's answer is not the replayed first one")
			}
			if got := notificationsOf(t, user); got != 1 {
				t.Errorf("Herald holds %d notifications for %s, want 1", got, user)
			}
		})
	}
}

// TestRetryAfterIsHonoured: a 429 with Retry-After: 1 is retried no sooner
// than a second later.
func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	f := newFront(t, func(n int, w http.ResponseWriter, r *http.Request, _ func()) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"type":"https://herald.dev/problems/rate-limited","title":"Too many requests","status":429}`))
			return true
		}
		return false
	})
	if _, err := client.New(f.URL, apiKey, fastRetries(2)).GetApp(t.Context()); err != nil {
		t.Fatal(err)
	}
	seen := f.requests()
	if len(seen) != 2 {
		t.Fatalf("%d requests, want 2", len(seen))
	}
	if gap := seen[1].at.Sub(seen[0].at); gap < 900*time.Millisecond {
		t.Errorf("retried after %s, before the Retry-After of 1s", gap)
	}
}

// TestRetriesAreBounded: a Herald that keeps answering 503 gets the
// configured number of attempts, then the caller gets the problem.
func TestRetriesAreBounded(t *testing.T) {
	t.Parallel()
	f := newFront(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ func()) bool {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"type":"https://herald.dev/problems/unavailable","title":"Unavailable","status":503,"detail":"store down"}`))
		return true
	})
	_, err := client.New(f.URL, apiKey, fastRetries(3)).GetUser(t.Context(), "ada")
	var herr *client.Error
	if !errors.As(err, &herr) || herr.StatusCode != 503 || herr.Detail != "store down" {
		t.Fatalf("err = %v, want the 503 problem", err)
	}
	if got := len(f.requests()); got != 3 {
		t.Errorf("%d attempts, want 3", got)
	}

	// A create that is not idempotent is not sent again after a 503: it may
	// have been written.
	_, err = client.New(f.URL, apiKey, fastRetries(3)).CreateWebhook(t.Context(), client.CreateWebhookRequest{URL: "http://127.0.0.1:9/h", Events: []string{"delivery.dead"}})
	if statusOf(err) != 503 {
		t.Fatalf("CreateWebhook err = %v", err)
	}
	if got := len(f.requests()); got != 4 {
		t.Errorf("CreateWebhook made %d attempts, want 1", got-3)
	}
}

// TestRetryWaitIsBounded: a Retry-After beyond the client's patience, or
// a context that ends first, returns at once instead of sleeping.
func TestRetryWaitIsBounded(t *testing.T) {
	t.Parallel()
	f := newFront(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ func()) bool {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	_, err := client.New(f.URL, apiKey, client.WithMaxRetryAfter(10*time.Second)).GetApp(t.Context())
	var herr *client.Error
	if !errors.As(err, &herr) || herr.RetryAfter != 30*time.Second {
		t.Fatalf("err = %v, want the 503 with its Retry-After", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := client.New(f.URL, apiKey).GetApp(ctx); statusOf(err) != 503 {
		t.Fatalf("err = %v, want the 503", err)
	}
	if got := len(f.requests()); got != 2 {
		t.Errorf("%d attempts, want 1 per call", got)
	}
}

// TestUnreachable: no Herald listening is a *client.NetworkError naming the
// URL, after the attempts.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	_, err := client.New("http://127.0.0.1:1", apiKey, fastRetries(2)).GetApp(t.Context())
	var nerr *client.NetworkError
	if !errors.As(err, &nerr) || !strings.Contains(err.Error(), "cannot reach Herald at http://127.0.0.1:1") {
		t.Fatalf("err = %v, want a NetworkError", err)
	}
}

func statusOf(err error) int {
	var e *client.Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// TestImportsStandardLibraryOnly: other Go services import this package,
// so it must not pull in Herald's server or any third-party module.
func TestImportsStandardLibraryOnly(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
				t.Errorf("%s imports %s: the client imports the standard library only", name, p)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no source files found")
	}
}

// TestSendWaitsForTheFirstAttempt: a 409 with Retry-After means the first
// request with this Idempotency-Key is still in flight; the send asks
// again, with the same key, once it may be done.
func TestSendWaitsForTheFirstAttempt(t *testing.T) {
	t.Parallel()
	f := newFront(t, func(n int, w http.ResponseWriter, _ *http.Request, _ func()) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"type":"https://herald.dev/problems/conflict","title":"Conflict","status":409,"detail":"in flight"}`))
			return true
		}
		return false
	})
	acc, err := client.New(f.URL, apiKey, fastRetries(3)).Send(t.Context(), client.SendRequest{
		To: []client.Recipient{{Email: "inflight@example.com"}}, Channels: []string{"email"}, Content: &client.Content{Subject: "s", Body: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := f.requests()
	if len(seen) != 2 || seen[0].idempotencyKey != seen[1].idempotencyKey || seen[1].idempotencyKey != acc.IdempotencyKey {
		t.Fatalf("requests %+v, want two with the answer's key %q", seen, acc.IdempotencyKey)
	}

	// Without Retry-After a 409 is a conflict of bodies: it is the caller's.
	f = newFront(t, func(_ int, w http.ResponseWriter, _ *http.Request, _ func()) bool {
		w.WriteHeader(http.StatusConflict)
		return true
	})
	_, err = client.New(f.URL, apiKey, fastRetries(3)).Send(t.Context(), client.SendRequest{To: []client.Recipient{{Email: "x@example.com"}}})
	if !client.IsConflict(err) || len(f.requests()) != 1 {
		t.Fatalf("err %v after %d requests, want the 409 after one", err, len(f.requests()))
	}
}
