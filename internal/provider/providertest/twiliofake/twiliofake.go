// Package twiliofake is a fake of Twilio's Messages API (2010-04-01) that
// speaks the real wire protocol: HTTPS, HTTP Basic auth, form-encoded
// requests validated against Twilio's official OpenAPI description, and
// JSON answers shaped like Twilio's, errors included.
package twiliofake

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// Twilio error codes the fake answers with.
const (
	CodeAuthenticate  = 20003 // 401: bad or missing credentials
	CodeNotFound      = 20404 // 404: no such resource
	CodeTooMany       = 20429 // 429: too many concurrent requests
	CodeInvalidTo     = 21211 // 400: the To number is not valid
	CodeFromRequired  = 21603 // 400: From or MessagingServiceSid is required
	CodeBodyRequired  = 21602 // 400: Body, MediaUrl or ContentSid is required
	CodeToRequired    = 21604 // 400: To is required
	CodeUnsubscribed  = 21610 // 400: the recipient replied STOP
	CodeBodyTooLong   = 21617 // 400: Body is over 1,600 characters
	CodeInvalidParams = 21620 // 400: a parameter does not match the API description
)

// maxBodyChars is Twilio's limit on Body.
const maxBodyChars = 1600

// messagesPath is the CreateMessage route, as the API description writes it.
const messagesPath = "/2010-04-01/Accounts/{AccountSid}/Messages.json"

// Option configures a Server at construction.
type Option func(*Server)

// WithAccount registers an account's credentials, as Account does.
func WithAccount(sid, token string) Option {
	return func(s *Server) { s.accounts[sid] = token }
}

// WithLatency delays every answer by d, as Latency does.
func WithLatency(d time.Duration) Option {
	return func(s *Server) { s.latency = d }
}

// WithMiddleware puts wrap around the fake's handler, so a test can answer
// some requests itself (faults the fake does not script, such as a random
// share of errors) and watch what the fake answers to the rest.
func WithMiddleware(wrap func(http.Handler) http.Handler) Option {
	return func(s *Server) { s.wrap = wrap }
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	srv    *httptest.Server
	router routers.Router
	done   chan struct{} // closed at cleanup, ends hanging requests

	wrap func(http.Handler) http.Handler

	mu       sync.Mutex
	accounts map[string]string // sid → auth token
	requests []url.Values
	arrivals []time.Time // when each of requests arrived
	received int
	failures []failure
	stopped  map[string]bool
	invalid  map[string]bool
	latency  time.Duration
	hang     bool
}

// failure is one scripted error answer.
type failure struct {
	status     int
	code       int
	retryAfter time.Duration
}

// New starts a fake on a TLS listener and stops it when the test ends. The
// API description is loaded once per fake, which takes about a second under
// the race detector; tests that do not script faults can share one.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	router, err := messagesRouter()
	if err != nil {
		t.Fatalf("twiliofake: load the Twilio API description: %v", err)
	}
	s := &Server{
		router:   router,
		done:     make(chan struct{}),
		accounts: map[string]string{},
		stopped:  map[string]bool{},
		invalid:  map[string]bool{},
	}
	for _, o := range opts {
		o(s)
	}
	var h http.Handler = http.HandlerFunc(s.serve)
	if s.wrap != nil {
		h = s.wrap(h)
	}
	s.srv = httptest.NewUnstartedServer(h)
	s.srv.StartTLS()
	t.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// URL is the fake's base URL, to use as the provider's endpoint.
func (s *Server) URL() string { return s.srv.URL }

// CAPEM is the PEM of the certificate the fake serves, to trust as ca_pem.
func (s *Server) CAPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}))
}

// Client returns an HTTP client that trusts the fake.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Account registers an account: requests must authenticate as sid with token,
// and address the account sid in their path.
func (s *Server) Account(sid, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[sid] = token
}

// Requests returns the form of every authenticated request to the Messages
// resource, accepted or not, in arrival order.
func (s *Server) Requests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]url.Values, len(s.requests))
	for i, r := range s.requests {
		out[i] = cloneValues(r)
	}
	return out
}

// Arrivals returns when each request of Requests arrived, in the same order.
func (s *Server) Arrivals() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.arrivals...)
}

// Received reports how many messages the fake has accepted (answered 201).
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

// FailNext makes the next n valid requests fail with httpStatus and the
// Twilio error code twilioCode, with a Retry-After header (whole seconds,
// rounded up) when retryAfter is positive. A zero twilioCode answers an
// HTML page instead of Twilio's error JSON, as a proxy in front of the API
// might.
func (s *Server) FailNext(n, httpStatus, twilioCode int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{status: httpStatus, code: twilioCode, retryAfter: retryAfter})
	}
}

// StopNumber makes sends to the E.164 number to fail with 21610, as when
// its owner has replied STOP.
func (s *Server) StopNumber(to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped[to] = true
}

// InvalidNumber makes sends to the number to fail with 21211.
func (s *Server) InvalidNumber(to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalid[to] = true
}

// Latency delays every later answer by d, or until the client gives up.
func (s *Server) Latency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Hang makes every later request wait without an answer until the client
// gives up or the test ends.
func (s *Server) Hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	s.mu.Lock()
	hang, latency := s.hang, s.latency
	s.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
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
		case <-s.done:
			panic(http.ErrAbortHandler)
		}
	}

	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	route, params, err := s.findRoute(r)
	if err != nil || route.Path != messagesPath || r.Method != http.MethodPost {
		writeError(w, http.StatusNotFound, CodeNotFound, "The requested resource "+r.URL.Path+" was not found", 0)
		return
	}
	sid := params["AccountSid"]
	if !s.authenticated(r, sid) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeError(w, http.StatusUnauthorized, CodeAuthenticate, "Authenticate", 0)
		return
	}
	form, code, msg := s.validate(r, route, params, body)
	if form != nil {
		s.mu.Lock()
		s.requests = append(s.requests, form)
		s.arrivals = append(s.arrivals, arrived)
		s.mu.Unlock()
	}
	if code != 0 {
		writeError(w, http.StatusBadRequest, code, msg, 0)
		return
	}

	to := form.Get("To")
	s.mu.Lock()
	var fail *failure
	if len(s.failures) > 0 {
		fail = &s.failures[0]
		s.failures = s.failures[1:]
	}
	stopped, invalid := s.stopped[to], s.invalid[to]
	s.mu.Unlock()
	switch {
	case fail != nil && fail.code == 0:
		if fail.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(fail.retryAfter)))
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(fail.status)
		fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>\n", fail.status, http.StatusText(fail.status))
		return
	case fail != nil:
		writeError(w, fail.status, fail.code, "Scripted failure", fail.retryAfter)
		return
	case stopped:
		writeError(w, http.StatusBadRequest, CodeUnsubscribed, "Attempt to send to unsubscribed recipient", 0)
		return
	case invalid:
		writeError(w, http.StatusBadRequest, CodeInvalidTo, fmt.Sprintf("Invalid 'To' Phone Number: %s", to), 0)
		return
	}
	s.created(w, sid, form)
}

// findRoute matches the request's path and method against the description.
func (s *Server) findRoute(r *http.Request) (*routers.Route, map[string]string, error) {
	rr := r.Clone(r.Context())
	rr.Body, rr.GetBody = http.NoBody, nil
	return s.router.FindRoute(rr)
}

// authenticated checks Basic auth exactly: a registered account sid, its
// token, and the same sid in the path.
func (s *Server) authenticated(r *http.Request, pathSID string) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || user != pathSID {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	token, ok := s.accounts[user]
	return ok && token == pass
}

// validate checks the request against the CreateMessage operation and the
// rules the description states only in prose. It returns the parsed form
// (nil when the body is not a form) and, when the request is refused, a
// Twilio error code and message.
func (s *Server) validate(r *http.Request, route *routers.Route, params map[string]string, body []byte) (url.Values, int, string) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil, CodeInvalidParams, fmt.Sprintf("Content-Type %q is not application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, CodeInvalidParams, "The body is not form-encoded: " + err.Error()
	}
	vreq := r.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(body))
	input := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			// Credentials were checked exactly above.
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			MultiError:         true,
		},
	}
	if err := openapi3filter.ValidateRequest(r.Context(), input); err != nil {
		if form.Get("To") == "" {
			return form, CodeToRequired, "A 'To' phone number is required."
		}
		return form, CodeInvalidParams, "The request does not match the API description: " + err.Error()
	}
	switch {
	case form.Get("To") == "":
		return form, CodeToRequired, "A 'To' phone number is required."
	case form.Get("From") == "" && form.Get("MessagingServiceSid") == "":
		return form, CodeFromRequired, "A 'From' phone number is required."
	case form.Get("Body") == "" && len(form["MediaUrl"]) == 0 && form.Get("ContentSid") == "":
		return form, CodeBodyRequired, "Message body is required."
	case len([]rune(form.Get("Body"))) > maxBodyChars:
		return form, CodeBodyTooLong, "The concatenated message body exceeds the 1600 character limit."
	}
	return form, 0, ""
}

// created answers 201 with a Message resource, as Twilio does for a
// message it has queued.
func (s *Server) created(w http.ResponseWriter, account string, form url.Values) {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	sid := "SM" + hex.EncodeToString(raw[:])
	now := time.Now().UTC().Format(time.RFC1123Z)
	uri := "/2010-04-01/Accounts/" + account + "/Messages/" + sid
	segments := "0" // a Messaging Service decides the sender, and counts later
	if form.Get("MessagingServiceSid") == "" {
		segments = strconv.Itoa(segmentCount(form.Get("Body")))
	}
	msg := map[string]any{
		"account_sid":           account,
		"api_version":           "2010-04-01",
		"body":                  form.Get("Body"),
		"date_created":          now,
		"date_sent":             nil,
		"date_updated":          now,
		"direction":             "outbound-api",
		"error_code":            nil,
		"error_message":         nil,
		"from":                  nullable(form.Get("From")),
		"messaging_service_sid": nullable(form.Get("MessagingServiceSid")),
		"num_media":             strconv.Itoa(len(form["MediaUrl"])),
		"num_segments":          segments,
		"price":                 nil,
		"price_unit":            "USD",
		"sid":                   sid,
		"status":                "queued",
		"subresource_uris":      map[string]string{"media": uri + "/Media.json"},
		"to":                    form.Get("To"),
		"uri":                   uri + ".json",
	}
	s.mu.Lock()
	s.received++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(msg)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// writeError answers Twilio's error JSON.
func writeError(w http.ResponseWriter, status, code int, message string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(retryAfter)))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code":      code,
		"message":   message,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
		"status":    status,
	})
}

func ceilSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// gsm7 is the GSM 03.38 basic character set; gsm7ext the characters of its
// extension table, which take an escape septet each.
const (
	gsm7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7ext = "\f^{}\\[~]|€"
)

// segmentCount is the fake's own, deliberately plain count of SMS segments
// (not the adapter's): septets or UTF-16 units divided into parts. It
// ignores that a part may not split an escape or a surrogate pair, which
// the fake's tests do not depend on.
func segmentCount(body string) int {
	units, single, multi := 0, 160, 153
	for _, r := range body {
		switch {
		case strings.ContainsRune(gsm7, r):
			units++
		case strings.ContainsRune(gsm7ext, r):
			units += 2
		default:
			units, single, multi = len(utf16.Encode([]rune(body))), 70, 67
		}
		if single == 70 {
			break
		}
	}
	if units <= single {
		return 1
	}
	return (units + multi - 1) / multi
}
