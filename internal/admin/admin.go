// Package admin is Herald's web UI: static HTML, CSS and JavaScript
// modules embedded in the binary and served under /admin. The pages call
// Herald's own /v1 API from the browser with the API key the operator
// pastes, so the UI holds no privileges of its own and needs no build step.
package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is where the UI is mounted.
const Prefix = "/admin"

//go:embed static
var static embed.FS

// ContentSecurityPolicy is sent with every page and asset of the UI. Only
// the UI's own files may run as script, and it may talk only to its own
// origin. Styles may be inline because the email preview, an about:srcdoc
// frame that inherits this policy, shows templates' inline styles; the
// UI's own markup holds only API data set as text, so no style can be
// injected there. Remote images stay blocked: a preview fires no tracking
// pixel.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; " +
	"base-uri 'none'; form-action 'none'; object-src 'none'"

// contentTypes of the UI's files, fixed here rather than read from the
// machine's MIME tables, which differ (module scripts need a JavaScript type).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the UI: GET /admin redirects to /admin/, which is the
// single page; /admin/<file> are its assets. Anything else under the
// prefix is a 404.
func Handler() http.Handler {
	assets, err := load()
	if err != nil {
		// The files are compiled in: failing here is a build defect.
		panic(err)
	}
	return &handler{assets: assets}
}

func load() (map[string]asset, error) {
	files, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("admin: embedded files: %w", err)
	}
	out := map[string]asset{}
	err = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		ct := contentTypes[path.Ext(p)]
		if ct == "" {
			return fmt.Errorf("admin: no content type for %s", p)
		}
		sum := sha256.Sum256(body)
		out[p] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("admin: embedded files: %w", err)
	}
	if _, ok := out["index.html"]; !ok {
		return nil, fmt.Errorf("admin: index.html is not embedded")
	}
	return out, nil
}

type handler struct {
	assets map[string]asset
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == Prefix {
		http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix+"/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == "" {
		name = "index.html"
	}
	a, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("ETag", a.etag)
	// Revalidate every time: the ETag makes that cheap, and an upgraded
	// binary's UI is never mixed with a cached older script.
	w.Header().Set("Cache-Control", "no-cache")
	// No modification time: the embedded files have none, the ETag serves.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}
