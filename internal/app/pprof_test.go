package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// get fetches path from a without the API's OpenAPI checks: the profiler
// is not part of the API.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// TestPprofOnlyWithTheFlag: without --pprof nothing answers under
// /debug/pprof/; with it, the profile index and a named profile answer,
// also on a process without the api role.
func TestPprofOnlyWithTheFlag(t *testing.T) {
	t.Parallel()
	off := start(t, testConfig(t))
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		if code, body := get(t, off.Addr(), p); code != http.StatusNotFound {
			t.Errorf("without --pprof: GET %s = %d, want 404: %.200s", p, code, body)
		}
	}

	for _, roles := range []string{"api,worker,tracker,scheduler", "worker"} {
		cfg := testConfig(t)
		cfg.Pprof, cfg.Roles = true, roles
		on := start(t, cfg)
		code, body := get(t, on.Addr(), "/debug/pprof/")
		if code != http.StatusOK || !strings.Contains(body, "goroutine") || !strings.Contains(body, "allocs") {
			t.Errorf("roles %s, --pprof: GET /debug/pprof/ = %d, want the profile index: %.300s", roles, code, body)
		}
		if code, body := get(t, on.Addr(), "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
			t.Errorf("roles %s, --pprof: GET /debug/pprof/goroutine?debug=1 = %d: %.200s", roles, code, body)
		}
	}
}
