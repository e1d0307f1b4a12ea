// Package httpapi is Herald's public HTTP API: authentication by API key,
// request decoding and validation, and the translation of domain errors
// into RFC 9457 problem+json. routes.go lists every route; docs/openapi.yaml
// describes them and is checked against the running server in tests.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/apikey"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults applied by NewServer to zero fields of Deps.
const (
	DefaultMaxBodyBytes  = 1 << 20
	DefaultMaxRecipients = 1000
)

// ProviderConfigurer keeps an app's provider lists. It is declared here,
// where it is consumed; the composition root satisfies it with the part
// that seals credentials before they reach the store.
type ProviderConfigurer interface {
	// Put validates and replaces the ordered provider list of a channel.
	// Called by PUT /v1/providers/{channel}. Errors: CodeInvalid with
	// fields relative to the request body ("[0].settings.from").
	Put(ctx context.Context, appID string, c herald.Channel, entries []herald.ProviderEntry) error
	// Kinds returns the kinds of the channel's provider list, in order,
	// never the settings. Called by GET /v1/providers/{channel}. Errors:
	// CodeNotFound when the app has no list for the channel.
	Kinds(ctx context.Context, appID string, c herald.Channel) ([]string, error)
}

// Deps is what the API needs from the rest of Herald. Zero values of the
// optional fields get defaults.
type Deps struct {
	// Logger receives internal errors and recovered panics; nil discards.
	Logger *slog.Logger
	// Store answers key lookups, contacts and notification reads.
	Store herald.Store
	// Sender accepts POST /v1/notifications and the channel send endpoints.
	Sender herald.Sender
	// Providers stores the provider lists of PUT|GET /v1/providers/{channel}.
	Providers ProviderConfigurer
	// DeadLetters replays dead deliveries (POST /v1/dead-letters/{delivery_id}/replay).
	DeadLetters Replayer
	// Webhooks keeps the endpoints of /v1/webhooks.
	Webhooks WebhookConfigurer
	// Limiter counts each API key's requests against KeyLimit; past it
	// the request is answered 429 with Retry-After. nil, or a KeyLimit
	// with Max 0, means no limit.
	Limiter  herald.RateLimiter
	KeyLimit herald.Limit
	// AuthFailureLimit bounds the failed authentications (a missing,
	// malformed, unknown or expired key) counted per client address on
	// Limiter; past it, requests from the address are answered 429 with
	// Retry-After before their key is looked up. Max 0 means no limit.
	AuthFailureLimit herald.Limit
	// TrustForwardedFor takes the client address from the last
	// X-Forwarded-For entry instead of the TCP peer: only behind a proxy
	// that sets it.
	TrustForwardedFor bool
	// AllowPrivateTargets lets web push subscriptions name loopback,
	// private and link-local addresses (tests and local development);
	// otherwise such an endpoint is refused when the device is registered,
	// not only when a push to it is attempted.
	AllowPrivateTargets bool
	// KeyHasher computes the keyed hash keys are stored and looked up by;
	// nil stores and finds keys by their legacy SHA-256 alone.
	KeyHasher *apikey.Hasher
	// Tracking answers provider callbacks (/hooks/…) and tracking links
	// (/t/c, /t/o, /u); nil leaves those routes out.
	Tracking Tracking
	// PublicURL is where the outside world reaches Herald
	// (HERALD_PUBLIC_URL): the URL Twilio signs its callbacks with.
	PublicURL string
	// Templates saves and previews the templates of /v1/templates.
	Templates TemplateLibrary
	// Monitor reads the queue and the provider circuits for GET /v1/stats;
	// nil answers the stats without them.
	Monitor Monitor
	// Ready reports whether the process can serve (/readyz); nil means always ready.
	Ready func(ctx context.Context) error
	// Registry is served at /metrics; the API's latency histogram is
	// registered on it. nil means a private registry.
	Registry *prometheus.Registry
	// Now is the clock for timestamps the API sets itself (key creation,
	// revocation); nil means time.Now.
	Now func() time.Time
	// MaxBodyBytes bounds request bodies (413 above); default 1 MiB.
	MaxBodyBytes int64
	// MaxRecipients bounds the "to" list of a send request; default 1000.
	MaxRecipients int
	// Pprof serves net/http/pprof under /debug/pprof/, unauthenticated;
	// off unless the operator asks for it (--pprof).
	Pprof bool
	// MaxSendsInFlight bounds the send requests being accepted at once;
	// more are answered 429 with Retry-After. Zero means
	// DefaultMaxSendsInFlight, a negative value no limit.
	MaxSendsInFlight int
	// OnSendShed, when set, is called for each send refused by that bound.
	OnSendShed func()
	// Admit, when set, is asked before a send's key is checked or its
	// body read whether
	// sends are taken now; its error (CodeRateLimited or CodeUnavailable,
	// with RetryAfterSeconds) is the answer. It is not asked for a send
	// with an Idempotency-Key, which may be the replay of an answer that
	// must still be given; the Sender decides for those.
	Admit func() error
}

type server struct {
	log               *slog.Logger
	store             herald.Store
	sender            herald.Sender
	providers         ProviderConfigurer
	replayer          Replayer
	webhooks          WebhookConfigurer
	limiter           herald.RateLimiter
	keyLimit          herald.Limit
	authLimit         herald.Limit
	trustForwardedFor bool
	allowPrivate      bool
	hasher            *apikey.Hasher
	authFailures      *prometheus.CounterVec
	usage             keyUsage
	rehashing         sync.Map // key id → true while its legacy hash is being replaced
	tracking          Tracking
	publicURL         string
	templates         TemplateLibrary
	monitor           Monitor
	ready             func(ctx context.Context) error
	registry          *prometheus.Registry
	now               func() time.Time
	maxBody           int64
	maxRecipients     int
	pprof             bool
	latency           *prometheus.HistogramVec
	sendGate          *sendGate
	mux               *http.ServeMux
	buffers           sync.Pool // *bytes.Buffer, see getBuffer
}

// NewServer returns the HTTP handler of the whole API. It panics only when
// the registry holds an incompatible collector under the API's metric name,
// which is a wiring bug.
func NewServer(d Deps) http.Handler {
	s := &server{
		log:               d.Logger,
		store:             d.Store,
		sender:            d.Sender,
		providers:         d.Providers,
		replayer:          d.DeadLetters,
		webhooks:          d.Webhooks,
		limiter:           d.Limiter,
		keyLimit:          d.KeyLimit,
		authLimit:         d.AuthFailureLimit,
		trustForwardedFor: d.TrustForwardedFor,
		allowPrivate:      d.AllowPrivateTargets,
		hasher:            d.KeyHasher,
		tracking:          d.Tracking,
		publicURL:         strings.TrimSuffix(d.PublicURL, "/"),
		templates:         d.Templates,
		monitor:           d.Monitor,
		ready:             d.Ready,
		registry:          d.Registry,
		now:               d.Now,
		maxBody:           d.MaxBodyBytes,
		maxRecipients:     d.MaxRecipients,
		pprof:             d.Pprof,
		mux:               http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.maxRecipients <= 0 {
		s.maxRecipients = DefaultMaxRecipients
	}
	s.latency = registerLatency(s.registry)
	s.authFailures = registerAuthFailures(s.registry)
	maxSends := d.MaxSendsInFlight
	if maxSends == 0 {
		maxSends = DefaultMaxSendsInFlight
	}
	s.sendGate = newSendGate(maxSends, s.registry, d.OnSendShed, d.Admit)
	s.routes()
	return s
}

func registerLatency(reg *prometheus.Registry) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "herald_http_request_duration_seconds",
		Help:    "Latency of HTTP API requests by route pattern, method and status code.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method", "code"})
	if err := reg.Register(h); err != nil {
		// A second server on the same registry (tests, a restart in
		// process) shares the first one's histogram.
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.HistogramVec); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("httpapi: register latency histogram: %v", err))
	}
	return h
}

// ServeHTTP routes the request, answers unknown routes and methods with
// problems, recovers panics into a 500 problem and records latency.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now() // a duration, so the wall clock, never the injected one
	rec := &statusWriter{ResponseWriter: w}
	_, pattern := s.mux.Handler(r)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "httpapi: handler panicked",
				"method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !rec.wroteHeader {
				writeProblemBody(rec, http.StatusInternalServerError, problemFor(herald.CodeInternal, "", nil))
			}
		}
		route := pattern
		if route == "" {
			route = "unmatched"
		}
		s.latency.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(rec.status())).
			Observe(time.Since(start).Seconds())
	}()
	if pattern == "" {
		s.unmatched(rec, r)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// methodLabel keeps the metric's cardinality bounded whatever methods
// clients invent.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// unmatched lets the mux decide between 404, 405 (with its Allow header)
// and a path-cleaning redirect, then answers the first two as problems.
func (s *server) unmatched(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	c := &captureWriter{header: http.Header{}}
	h.ServeHTTP(c, r)
	switch c.code {
	case http.StatusNotFound, 0:
		s.fail(w, r, herald.Errorf(herald.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
	case http.StatusMethodNotAllowed:
		if allow := c.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		writeProblemBody(w, http.StatusMethodNotAllowed, problem{
			Type:   problemBase + "method-not-allowed",
			Title:  "Method not allowed",
			Status: http.StatusMethodNotAllowed,
			Detail: fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path),
		})
	default:
		for k, v := range c.header {
			w.Header()[k] = v
		}
		w.WriteHeader(c.code)
		_, _ = w.Write(c.body)
	}
}

// statusWriter remembers the status for metrics and whether the header
// went out, so a recovered panic knows if it can still answer.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through for streaming handlers such as promhttp.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) status() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.code
}

// captureWriter buffers what the mux's own fallback handlers write.
type captureWriter struct {
	header http.Header
	code   int
	body   []byte
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	c.body = append(c.body, b...)
	return len(b), nil
}
