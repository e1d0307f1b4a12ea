// Package sendgridfake is a fake of SendGrid's v3 Mail Send API for tests:
// a TLS server that checks the bearer key, validates every request against
// SendGrid's official OpenAPI description (specs.SendGridMail), answers as
// SendGrid does, and records what it received.
package sendgridfake

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/heraldhq/herald/internal/provider/providertest/specs"
)

// Mail is the part of a Mail Send body Herald uses, decoded.
type Mail struct {
	Personalizations []Personalization `json:"personalizations"`
	From             Address           `json:"from"`
	Subject          string            `json:"subject"`
	Content          []Content         `json:"content"`
	Categories       []string          `json:"categories"`
	Headers          map[string]string `json:"headers"`
}

// Personalization is one envelope of a Mail Send body.
type Personalization struct {
	To         []Address         `json:"to"`
	CustomArgs map[string]string `json:"custom_args"`
}

// Address is an email address with an optional display name.
type Address struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

// Content is one body part.
type Content struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Request is one request the fake answered.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Raw    []byte // the body as received
	// Mail is Raw decoded; zero when it does not decode.
	Mail Mail
	// Status is what the fake answered; Problem says why when it was not 202.
	Status    int
	Problem   string
	MessageID string // the X-Message-Id answered with a 202
}

// Option configures New.
type Option func(*Server)

// WithAPIKey registers key as accepted from the start; see Server.APIKey.
func WithAPIKey(key string) Option {
	return func(s *Server) { s.keys[key] = true }
}

// WithLatency makes every answer wait d; see Server.Latency.
func WithLatency(d time.Duration) Option {
	return func(s *Server) { s.latency = d }
}

// FailOption adds rate-limit information to an injected failure.
type FailOption func(*failure)

// RetryAfter makes an injected failure carry Retry-After: d in whole seconds.
func RetryAfter(d time.Duration) FailOption {
	return func(f *failure) { f.header.Set("Retry-After", strconv.Itoa(int(d/time.Second))) }
}

// RateLimitReset makes an injected failure carry SendGrid's rate-limit
// headers, with X-RateLimit-Reset at t (epoch seconds) and nothing remaining.
func RateLimitReset(t time.Time) FailOption {
	return func(f *failure) {
		f.header.Set("X-RateLimit-Limit", "600")
		f.header.Set("X-RateLimit-Remaining", "0")
		f.header.Set("X-RateLimit-Reset", strconv.FormatInt(t.Unix(), 10))
	}
}

type failure struct {
	status int
	body   string
	header http.Header
}

// WithMiddleware puts wrap around the fake's handler, so a test can answer
// some requests itself (faults the fake does not script, such as a random
// share of errors) and watch what the fake answers to the rest.
func WithMiddleware(wrap func(http.Handler) http.Handler) Option {
	return func(s *Server) { s.wrap = wrap }
}

// Server is the fake. It is safe for concurrent use.
type Server struct {
	srv     *httptest.Server
	router  routers.Router
	bodies  map[*openapi3.Operation]*bodySchema
	closing chan struct{}

	wrap func(http.Handler) http.Handler

	mu       sync.Mutex
	keys     map[string]bool
	latency  time.Duration
	hang     bool
	failures []failure
	requests []Request
	received int
}

// New starts a fake on a loopback TLS port and stops it when the test ends.
// No key is accepted until one is registered with WithAPIKey or APIKey.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(specs.SendGridMail)
	if err != nil {
		t.Fatalf("sendgridfake: load the SendGrid spec: %v", err)
	}
	// Match by path: the spec's servers name api.sendgrid.com, and the
	// legacy router needs no servers entry.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("sendgridfake: openapi router: %v", err)
	}
	bodies, err := compileBodies(doc)
	if err != nil {
		t.Fatalf("sendgridfake: %v", err)
	}
	s := &Server{
		router:  router,
		bodies:  bodies,
		closing: make(chan struct{}),
		keys:    map[string]bool{},
	}
	for _, o := range opts {
		o(s)
	}
	var h http.Handler = http.HandlerFunc(s.serve)
	if s.wrap != nil {
		h = s.wrap(h)
	}
	s.srv = httptest.NewTLSServer(h)
	t.Cleanup(func() {
		close(s.closing) // releases hung handlers, so Close does not wait on them
		s.srv.Close()
	})
	return s
}

// URL is the fake's base URL, the provider's endpoint setting.
func (s *Server) URL() string { return s.srv.URL }

// CAPEM is the PEM of the fake's self-signed certificate, the provider's
// ca_pem setting.
func (s *Server) CAPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}))
}

// APIKey registers key as accepted: a request must carry exactly
// "Authorization: Bearer <key>" for one registered key.
func (s *Server) APIKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = true
}

// Latency makes every later answer wait d (a request whose client gives up
// meanwhile is not received).
func (s *Server) Latency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Hang makes every later request go unanswered until its client gives up
// or the test ends.
func (s *Server) Hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = true
}

// FailNext makes the next n authorised, spec-valid requests fail with
// status and body; an empty body means SendGrid's own for that status.
func (s *Server) FailNext(n, status int, body string, opts ...FailOption) {
	if body == "" {
		body = standardBody(status)
	}
	f := failure{status: status, body: body, header: http.Header{}}
	for _, o := range opts {
		o(&f)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, f)
	}
}

// Requests returns every request answered so far, in order of answer.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Received reports how many messages the fake accepted (answered 202).
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 31<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	rec := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw}
	_ = json.Unmarshal(raw, &rec.Mail)

	s.mu.Lock()
	latency, hang := s.latency, s.hang
	s.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		// Abort rather than return: a handler that returns answers 200.
		panic(http.ErrAbortHandler)
	}
	if latency > 0 {
		timer := time.NewTimer(latency)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			panic(http.ErrAbortHandler)
		case <-s.closing:
			panic(http.ErrAbortHandler)
		}
	}

	status, body, header, problem := s.answer(r, raw)
	rec.Status, rec.Problem = status, problem
	if status == http.StatusAccepted {
		rec.MessageID = newMessageID()
		header.Set("X-Message-Id", rec.MessageID)
	}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	if status == http.StatusAccepted {
		s.received++
	}
	s.mu.Unlock()

	for k, v := range header {
		w.Header()[k] = v
	}
	if body == "" {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// answer decides the status, body and headers for one request, in
// SendGrid's order: route, authorisation, body, then injected failures.
func (s *Server) answer(r *http.Request, raw []byte) (int, string, http.Header, string) {
	header := http.Header{}
	route, params, err := s.router.FindRoute(r)
	switch {
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return http.StatusMethodNotAllowed, standardBody(http.StatusMethodNotAllowed), header, err.Error()
	case err != nil:
		return http.StatusNotFound, standardBody(http.StatusNotFound), header, err.Error()
	}
	if !s.authorised(r.Header.Get("Authorization")) {
		return http.StatusUnauthorized, standardBody(http.StatusUnauthorized), header, "bad or missing API key"
	}

	if problems := s.validate(r, raw, route, params); len(problems) > 0 {
		return http.StatusBadRequest, errorBody(problems...), header, strings.Join(problems, "; ")
	}

	s.mu.Lock()
	var f *failure
	if len(s.failures) > 0 {
		f = &s.failures[0]
		s.failures = s.failures[1:]
	}
	s.mu.Unlock()
	if f != nil {
		for k, v := range f.header {
			header[k] = v
		}
		return f.status, f.body, header, "injected failure"
	}
	// SendGrid sends its rate-limit headers on every v3 response.
	header.Set("X-RateLimit-Limit", "600")
	header.Set("X-RateLimit-Remaining", "599")
	header.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
	return http.StatusAccepted, "", header, ""
}

func (s *Server) authorised(h string) bool {
	key, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[key]
}

// forbiddenHeader reports whether name may not be overridden through
// headers (the spec's description of the headers property).
func forbiddenHeader(name string) bool {
	switch strings.ToLower(name) {
	case "x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
		"content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc":
		return true
	}
	return false
}

// validate checks the request against the spec, then the rules the spec
// states only in prose, and returns what is wrong.
func (s *Server) validate(r *http.Request, raw []byte, route *routers.Route, params map[string]string) []string {
	vreq := r.Clone(r.Context())
	vreq.Body = io.NopCloser(bytes.NewReader(raw))
	// Path, query and headers through kin-openapi; the body through the
	// schema compiled once in New (compiling it per request cost ≈ 2.6 ms).
	opts := &openapi3filter.Options{
		MultiError:         true,
		ExcludeRequestBody: true,
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, // checked exactly above
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	var problems []string
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		var me openapi3.MultiError
		if errors.As(err, &me) {
			for _, e := range me {
				problems = append(problems, e.Error())
			}
		} else {
			problems = append(problems, err.Error())
		}
	}
	if b := s.bodies[route.Operation]; b != nil {
		problems = append(problems, b.check(r.Header.Get("Content-Type"), raw)...)
	}
	if len(problems) > 0 {
		return problems
	}
	if route.Path != "/v3/mail/send" {
		return nil
	}
	// Prose rules of Mail Send that the schema cannot say.
	var body struct {
		Headers          map[string]any `json:"headers"`
		Personalizations []struct {
			CustomArgs map[string]any `json:"custom_args"`
			Headers    map[string]any `json:"headers"`
		} `json:"personalizations"`
		Content []Content `json:"content"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return []string{"body: " + err.Error()}
	}
	checkHeaders := func(where string, h map[string]any) {
		for name, v := range h {
			if forbiddenHeader(name) {
				problems = append(problems, fmt.Sprintf("%s: the header %s may not be overridden", where, name))
			}
			sv, ok := v.(string)
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s.%s: header values must be strings", where, name))
			case strings.ContainsAny(sv, "\r\n"):
				problems = append(problems, fmt.Sprintf("%s.%s: header values must not contain line breaks", where, name))
			}
		}
	}
	checkHeaders("headers", body.Headers)
	for i, p := range body.Personalizations {
		checkHeaders(fmt.Sprintf("personalizations.%d.headers", i), p.Headers)
		for k, v := range p.CustomArgs {
			if _, ok := v.(string); !ok {
				problems = append(problems, fmt.Sprintf("personalizations.%d.custom_args.%s: values must be strings", i, k))
			}
		}
	}
	// "text/plain" must come first, then "text/html", then any other type.
	rank := func(t string) int {
		switch strings.ToLower(t) {
		case "text/plain":
			return 0
		case "text/html":
			return 1
		}
		return 2
	}
	for i := 1; i < len(body.Content); i++ {
		if rank(body.Content[i].Type) < rank(body.Content[i-1].Type) {
			problems = append(problems, "content: text/plain must come first, then text/html")
			break
		}
	}
	return problems
}

// bodySchema is an operation's request body with its JSON schema compiled.
type bodySchema struct {
	body   *openapi3.RequestBody
	schema *jsonschema.Schema
}

// compileBodies compiles the JSON schema of every operation's JSON request
// body once, as kin-openapi does per request for an OpenAPI 3.1 document
// (JSON Schema 2020-12, "email" checked by kin-openapi's own pattern, every
// other format left unchecked): the spec itself is the schema resource, so
// its "#/components/schemas/…" references resolve as written.
func compileBodies(doc *openapi3.T) (map[*openapi3.Operation]*bodySchema, error) {
	var whole any
	if err := json.Unmarshal(specs.SendGridMail, &whole); err != nil {
		return nil, fmt.Errorf("decode the SendGrid spec: %w", err)
	}
	const base = "https://sendgrid.spec/mail.json"
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(base, whole); err != nil {
		return nil, err
	}
	email := openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail)
	c.RegisterFormat(&jsonschema.Format{Name: "email", Validate: func(v any) error {
		if s, ok := v.(string); ok {
			return email.Validate(s)
		}
		return nil
	}})
	c.AssertFormat()
	out := map[*openapi3.Operation]*bodySchema{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			ptr := "#/paths/" + escapePointer(path) + "/" + strings.ToLower(method) + "/requestBody"
			if ref := op.RequestBody.Ref; ref != "" {
				ptr = ref
			}
			b := &bodySchema{body: op.RequestBody.Value}
			if mt := b.body.Content.Get("application/json"); mt != nil && mt.Schema != nil {
				var err error
				if b.schema, err = c.Compile(base + ptr + "/content/application~1json/schema"); err != nil {
					return nil, fmt.Errorf("compile the body schema of %s %s: %w", method, path, err)
				}
			}
			out[op] = b
		}
	}
	return out, nil
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// check validates a request body as kin-openapi's ValidateRequestBody does:
// required, a content type the operation takes, JSON, and the schema.
func (b *bodySchema) check(contentType string, raw []byte) []string {
	if len(raw) == 0 {
		if b.body.Required {
			return []string{"request body has an error: value is required but missing"}
		}
		return nil
	}
	mt := b.body.Content.Get(contentType)
	if mt == nil {
		return []string{fmt.Sprintf("request body has an error: header Content-Type has unexpected value: %q", contentType)}
	}
	if b.schema == nil {
		return nil
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return []string{"request body has an error: failed to decode request body: " + err.Error()}
	}
	err = b.schema.Validate(v)
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		if err != nil {
			return []string{"request body has an error: " + err.Error()}
		}
		return nil
	}
	// The schema is long; the failing place and the reason say enough.
	var problems []string
	var leaves func(e *jsonschema.ValidationError)
	leaves = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			problems = append(problems, "/"+strings.Join(e.InstanceLocation, "/")+": "+e.Error())
		}
		for _, c := range e.Causes {
			leaves(c)
		}
	}
	leaves(verr)
	return problems
}

// standardBody is SendGrid's answer body for status.
func standardBody(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return `{"errors":[{"field":null,"message":"authorization required"}]}`
	case http.StatusForbidden:
		return `{"errors":[{"field":null,"message":"access forbidden"}]}`
	case http.StatusNotFound:
		return `{"errors":[{"field":null,"message":"not found"}]}`
	case http.StatusMethodNotAllowed:
		return `{"errors":[{"field":null,"message":"method not allowed"}]}`
	case http.StatusRequestEntityTooLarge:
		return `{"errors":[{"field":null,"message":"content too large"}]}`
	case http.StatusTooManyRequests:
		return `{"errors":[{"field":null,"message":"too many requests"}]}`
	case http.StatusBadRequest:
		return `{"errors":[{"field":null,"message":"invalid request"}]}`
	}
	if status >= 500 {
		return `{"errors":[{"field":null,"message":"internal server error"}]}`
	}
	return ""
}

// errorBody is a 400 body listing messages.
func errorBody(messages ...string) string {
	type item struct {
		Field   *string `json:"field"`
		Message string  `json:"message"`
	}
	var e struct {
		Errors []item `json:"errors"`
	}
	for _, m := range messages {
		e.Errors = append(e.Errors, item{Message: m})
	}
	b, _ := json.Marshal(e)
	return string(b)
}

// newMessageID returns an id shaped like SendGrid's X-Message-Id (22
// base64url characters).
func newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Wait blocks until the fake has received n messages or ctx ends, and
// reports whether it got there. It polls, for tests that send in the
// background.
func (s *Server) Wait(ctx context.Context, n int) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.Received() < n {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}
