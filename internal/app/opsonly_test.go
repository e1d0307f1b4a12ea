package app

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestOpsOnlyLetsATrackerTakeCallbacks: a process without the api role
// serves health and metrics, and provider callbacks and tracking links
// only when it runs the tracker; never the /v1 API.
func TestOpsOnlyLetsATrackerTakeCallbacks(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, c := range []struct {
		path     string
		tracking bool
		served   bool
	}{
		{"/healthz", false, true},
		{"/metrics", true, true},
		{"/hooks/twilio/status", true, true},
		{"/hooks/sendgrid/events", true, true},
		{"/t/c/abc", true, true},
		{"/t/o/abc", true, true},
		{"/u/abc", true, true},
		{"/hooks/twilio/status", false, false},
		{"/t/c/abc", false, false},
		{"/u/abc", false, false},
		{"/v1/notifications", true, false},
	} {
		rec := httptest.NewRecorder()
		opsOnly(inner, c.tracking).ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		if served := rec.Code == http.StatusTeapot; served != c.served {
			t.Errorf("%s with tracking %v: served %v, want %v", c.path, c.tracking, served, c.served)
		}
	}
}
