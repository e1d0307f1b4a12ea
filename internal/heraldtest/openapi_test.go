package heraldtest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// recorder is a testing.TB that keeps the errors it is given instead of
// failing, so a test can check that OpenAPIClient reports a mismatch.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Helper() {}

func (r *recorder) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

func TestOpenAPIClient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status":"ok"}`)
		case "/readyz": // an undocumented status for this route
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTeapot)
			_, _ = io.WriteString(w, `{"status":"ok"}`)
		case "/v1/users/u1": // a body that does not match the User schema
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":"u1","extra":true}`)
		case "/v1/keys/k1": // a problem whose status is not the HTTP status
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"type":"https://herald.dev/problems/not-found","title":"Not found","status":400}`)
		case "/v1/notifications": // 401 without its required header
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"type":"https://herald.dev/problems/unauthorized","title":"Unauthorized","status":401}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		method, path string
		wantErr      string // "" when the response matches the document
	}{
		{http.MethodGet, "/healthz", ""},
		{http.MethodGet, "/readyz", "status is not supported"},
		{http.MethodGet, "/nowhere", "undocumented route"},
		{http.MethodPost, "/healthz", "undocumented route"},
		{http.MethodGet, "/v1/users/u1", "doesn't match"},
		{http.MethodDelete, "/v1/keys/k1", "problem status 400"},
		{http.MethodGet, "/v1/notifications", "WWW-Authenticate"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			c := heraldtest.OpenAPIClient(rec, srv.URL)
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || len(body) == 0 {
				t.Errorf("body not readable after validation: %q, %v", body, err)
			}
			errs := rec.errors()
			switch {
			case tt.wantErr == "" && len(errs) > 0:
				t.Errorf("unexpected errors: %q", errs)
			case tt.wantErr != "" && (len(errs) != 1 || !strings.Contains(errs[0], tt.wantErr)):
				t.Errorf("errors = %q, want one containing %q", errs, tt.wantErr)
			}
		})
	}
}
