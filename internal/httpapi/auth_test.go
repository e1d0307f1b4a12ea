package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/apikey"
	"github.com/heraldhq/herald/internal/ratelimit"
)

// TestAuthFailureAddress: failed authentications are counted by the TCP
// peer, unless the server trusts X-Forwarded-For, when the last entry
// (the address the proxy saw) counts.
func TestAuthFailureAddress(t *testing.T) {
	t.Parallel()
	unknown, _, err := apikey.New(herald.ScopeSend)
	if err != nil {
		t.Fatal(err)
	}
	for _, trust := range []bool{false, true} {
		h := NewServer(Deps{
			Store:             keyStore{keys: map[string]herald.APIKey{}},
			Limiter:           ratelimit.NewMemory(ratelimit.MemoryOptions{}),
			AuthFailureLimit:  herald.Limit{Max: 1, Per: time.Hour},
			TrustForwardedFor: trust,
		})
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		get := func(xff string) int {
			t.Helper()
			req, err := http.NewRequest("GET", srv.URL+"/v1/notifications", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+unknown)
			if xff != "" {
				req.Header.Set("X-Forwarded-For", xff)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		// The client's own word (the first entry) changes; the proxy's does not.
		got := []int{get("198.51.100.1, 203.0.113.7"), get("198.51.100.2, 203.0.113.7"), get("203.0.113.8")}
		want := []int{401, 429, 429}
		if trust {
			want = []int{401, 429, 401}
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("trust X-Forwarded-For %v: statuses %v, want %v", trust, got, want)
				break
			}
		}
	}
}
