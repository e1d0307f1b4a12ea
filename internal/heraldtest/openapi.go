package heraldtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/heraldhq/herald/docs"
)

// OpenAPIClient returns an HTTP client for the Herald server at baseURL
// that checks every response it receives from that server against
// docs/openapi.yaml: the route and status must be documented, and the
// headers, content type and body must match. A mismatch fails the test
// (t.Errorf) and the response is still returned, with its body readable,
// so the test can go on to say more. Requests are not validated: tests send
// bad input on purpose. Responses from other origins pass unchecked.
func OpenAPIClient(t testing.TB, baseURL string) *http.Client {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		t.Fatalf("heraldtest: load openapi.yaml: %v", err)
	}
	// The legacy router needs no servers entry and matches 3.1 paths as
	// plain templates; gorillamux would need the module and a server URL.
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("heraldtest: openapi router: %v", err)
	}
	base, err := url.Parse(baseURL)
	if err != nil || base.Host == "" {
		t.Fatalf("heraldtest: base URL %q is not an absolute URL", baseURL)
	}
	next := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(next.CloseIdleConnections)
	return &http.Client{
		Transport: &openAPITransport{t: t, router: router, base: base, next: next},
		Timeout:   30 * time.Second,
		// Redirects are answers to check too, not to follow silently.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type openAPITransport struct {
	t      testing.TB
	router routers.Router
	base   *url.URL
	next   http.RoundTripper
}

func (tr *openAPITransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := tr.next.RoundTrip(req)
	if err != nil || req.URL.Scheme != tr.base.Scheme || req.URL.Host != tr.base.Host {
		return resp, err
	}
	data, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("heraldtest: read response body: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if problem := tr.check(req, resp, data); problem != "" {
		tr.t.Errorf("openapi: %s %s answered %d: %s\nbody: %s", req.Method, req.URL.RequestURI(), resp.StatusCode, problem, excerpt(data))
	}
	return resp, nil
}

// check returns what is wrong with the response, or "".
func (tr *openAPITransport) check(req *http.Request, resp *http.Response, body []byte) string {
	// Match on the path below the base URL, without the request's body
	// (already sent) or its host (the document has no servers).
	rreq := req.Clone(req.Context())
	rreq.Body, rreq.GetBody = http.NoBody, nil
	rreq.URL.Path = "/" + strings.TrimPrefix(strings.TrimPrefix(req.URL.Path, strings.TrimSuffix(tr.base.Path, "/")), "/")
	rreq.URL.RawPath = ""
	route, params, err := tr.router.FindRoute(rreq)
	if err != nil {
		return "undocumented route: " + err.Error()
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: rreq, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	input.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), input); err != nil {
		return err.Error()
	}
	// ValidateResponse lets a body through where none is documented, and
	// cannot know that a problem's status member must be the HTTP status.
	ref := route.Operation.Responses.Status(resp.StatusCode)
	if ref != nil && ref.Value != nil && len(ref.Value.Content) == 0 && len(body) > 0 && req.Method != http.MethodHead {
		return fmt.Sprintf("a body where status %d documents none", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/problem+json" {
		var p struct {
			Status int `json:"status"`
		}
		if json.Unmarshal(body, &p) == nil && p.Status != resp.StatusCode {
			return fmt.Sprintf("problem status %d differs from the HTTP status", p.Status)
		}
	}
	return ""
}

func excerpt(b []byte) string {
	const max = 2000
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
