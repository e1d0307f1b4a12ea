package admin_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/admin"
	"github.com/heraldhq/herald/internal/httpapi"
)

// serve starts the whole API handler, so the UI is tested where it is mounted.
func serve(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, method, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

func TestPagesAndAssetsAreServedWithSecurityHeaders(t *testing.T) {
	base := serve(t)
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/admin/", "text/html; charset=utf-8", `<script type="module" src="app.js"></script>`},
		{"/admin/app.js", "text/javascript; charset=utf-8", "import"},
		{"/admin/notifications.js", "text/javascript; charset=utf-8", "/v1/notifications"},
		{"/admin/overview.js", "text/javascript; charset=utf-8", "/v1/stats"},
		{"/admin/editor.js", "text/javascript; charset=utf-8", "PUT"},
		{"/admin/charts.js", "text/javascript; charset=utf-8", "polyline"},
		{"/admin/style.css", "text/css; charset=utf-8", ":root"},
		{"/admin/favicon.svg", "image/svg+xml", "<svg"},
	} {
		res, body := get(t, "GET", base+tc.path)
		if res.StatusCode != 200 {
			t.Errorf("GET %s = %d", tc.path, res.StatusCode)
			continue
		}
		if got := res.Header.Get("Content-Type"); got != tc.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.contentType)
		}
		if !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": admin.ContentSecurityPolicy,
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"Cache-Control":           "no-cache",
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", tc.path, k, got, want)
			}
		}
	}
}

// TestPolicyAllowsNoScriptButTheUIsOwn: the policy is what keeps an
// injected script from running; it must not loosen over time.
func TestPolicyAllowsNoScriptButTheUIsOwn(t *testing.T) {
	directives := map[string]string{}
	for _, d := range strings.Split(admin.ContentSecurityPolicy, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	for name, want := range map[string]string{
		"default-src": "'self'", "script-src": "'self'", "connect-src": "'self'", "frame-ancestors": "'none'",
		"object-src": "'none'", "base-uri": "'none'", "form-action": "'none'",
	} {
		if got := directives[name]; got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestAdminRedirectsToTheUI(t *testing.T) {
	res, _ := get(t, "GET", serve(t)+"/admin")
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/admin/" {
		t.Fatalf("GET /admin = %d Location %q, want 301 to /admin/", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestUnknownAssetsAndMethods(t *testing.T) {
	base := serve(t)
	for _, p := range []string{"/admin/nope.js", "/admin/static/app.js", "/admin/sub/", "/adminx"} {
		if res, _ := get(t, "GET", base+p); res.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", p, res.StatusCode)
		}
	}
	if res, _ := get(t, "POST", base+"/admin/"); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /admin/ = %d, want 405", res.StatusCode)
	}
	// Straight to the handler, without the API's mux in front.
	rec := httptest.NewRecorder()
	admin.Handler().ServeHTTP(rec, httptest.NewRequest("DELETE", "/admin/app.js", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("DELETE /admin/app.js = %d Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestAssetsRevalidateByETag(t *testing.T) {
	base := serve(t)
	res, _ := get(t, "GET", base+"/admin/app.js")
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if res, body := get(t, "GET", base+"/admin/app.js", "If-None-Match", etag); res.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("revalidation = %d with %d bytes, want 304 and nothing", res.StatusCode, len(body))
	}
	if res, body := get(t, "HEAD", base+"/admin/"); res.StatusCode != 200 || body != "" {
		t.Errorf("HEAD /admin/ = %d with %d bytes", res.StatusCode, len(body))
	}
}

// TestNoMarkupFromData keeps the rule that makes API data harmless: the
// UI's scripts never parse strings as HTML, and the page holds no inline
// script or handler (which the policy would block anyway).
func TestNoMarkupFromData(t *testing.T) {
	dir := filepath.Join("static")
	forbidden := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|\beval\(|new Function|setTimeout\(['"]`)
	inline := regexp.MustCompile(`(?i)<script(?:\s+type="module")?\s*>|\son[a-z]+\s*=|javascript:|style=`)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch filepath.Ext(p) {
		case ".js":
			for _, m := range forbidden.FindAllString(string(b), -1) {
				t.Errorf("%s uses %s: build elements and set text instead", p, m)
			}
		case ".html":
			for _, m := range inline.FindAllString(string(b), -1) {
				t.Errorf("%s has inline %q: scripts and styles come from files", p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
