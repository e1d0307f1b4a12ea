// Package apnsfake is a fake APNs provider API: an HTTP/2 TLS server that
// checks each request as Apple does (path, provider token, topic, headers,
// payload) and answers with Apple's statuses and JSON error bodies, with
// faults a test can inject.
package apnsfake

import (
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// DefaultTopic is the topic (bundle id) the server accepts unless WithTopic
// says otherwise.
const DefaultTopic = "com.example.herald"

// Payload limits, in bytes.
const (
	MaxPayload     = 4096 // regular notifications
	MaxPayloadVoIP = 5120 // apns-push-type voip
)

// tokenMaxAge is how old a provider token's iat may be (Apple: one hour).
const tokenMaxAge = time.Hour

// Request is one request the server answered.
type Request struct {
	DeviceToken string
	Header      http.Header
	// Payload is the decoded JSON body; nil when the body was not a JSON object.
	Payload map[string]any
	Body    []byte
	// Token is the provider token (the JWT) from the authorization header.
	Token string
	// RemoteAddr is the client's address: equal for requests on one connection.
	RemoteAddr string
	ProtoMajor int
	// Status and Reason are what the server answered; Reason is "" on 200.
	Status int
	Reason string
	// ID is the apns-id of a 200 answer.
	ID string
}

// Option configures New.
type Option func(*config)

type config struct {
	keys  map[string]key // by key id
	topic string
	now   func() time.Time
	wrap  func(http.Handler) http.Handler
}

type key struct {
	teamID string
	pub    *ecdsa.PublicKey
}

// WithKey registers a signing key: provider tokens with kid keyID must be
// signed by pub's private key and carry iss teamID. Without any key, every
// token is rejected with 403 InvalidProviderToken.
func WithKey(teamID, keyID string, pub *ecdsa.PublicKey) Option {
	return func(c *config) { c.keys[keyID] = key{teamID: teamID, pub: pub} }
}

// WithTopic sets the one topic (bundle id) the server accepts; the default
// is DefaultTopic.
func WithTopic(topic string) Option {
	return func(c *config) { c.topic = topic }
}

// WithClock sets the clock that judges a provider token's age; the default
// is time.Now. Share the adapter's fake clock to move both at once.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithMiddleware puts wrap around the fake's handler, so a test can answer
// some requests itself (faults the fake does not script, such as a random
// share of errors) and watch what the fake answers to the rest.
func WithMiddleware(wrap func(http.Handler) http.Handler) Option {
	return func(c *config) { c.wrap = wrap }
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	srv  *httptest.Server
	cfg  config
	done chan struct{}

	mu           sync.Mutex
	requests     []Request
	received     int
	tokens       map[string]bool
	unregistered map[string]time.Time
	failN        int
	fail         failure
	latency      time.Duration
	hang         bool
	conns        int
}

type failure struct {
	status     int
	reason     string
	retryAfter string
}

// New starts a fake APNs server that speaks HTTP/2 over TLS with a
// certificate for 127.0.0.1 (see CAPEM), and stops it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		cfg:          config{keys: map[string]key{}, topic: DefaultTopic, now: time.Now},
		done:         make(chan struct{}),
		tokens:       map[string]bool{},
		unregistered: map[string]time.Time{},
	}
	for _, o := range opts {
		o(&s.cfg)
	}
	var h http.Handler = http.HandlerFunc(s.serve)
	if s.cfg.wrap != nil {
		h = s.cfg.wrap(h)
	}
	s.srv = httptest.NewUnstartedServer(h)
	s.srv.EnableHTTP2 = true
	s.srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	// Cleanups run last-in first-out: hanging handlers are released before Close waits for them.
	t.Cleanup(func() { close(s.done) })
	return s
}

// URL is the server's base URL, for the adapter's endpoint setting.
func (s *Server) URL() string { return s.srv.URL }

// CAPEM is the server's certificate in PEM, for the adapter's ca_pem setting.
func (s *Server) CAPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}))
}

// Requests returns a copy of every request the server has answered, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Received reports how many notifications the server accepted (answered 200).
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

// Connections reports how many connections clients have opened.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// DistinctTokens reports how many different provider tokens clients have
// presented, valid or not: 1 after many sends means the token is cached.
func (s *Server) DistinctTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}

// FailNext makes the next n requests that pass every check fail with status
// and {"reason": reason}, and with a Retry-After header when retryAfter is
// not empty.
func (s *Server) FailNext(n, status int, reason, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.fail = n, failure{status: status, reason: reason, retryAfter: retryAfter}
}

// Unregister makes the server answer 410 Unregistered, with the current
// time as the timestamp, to every later push to deviceToken.
func (s *Server) Unregister(deviceToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unregistered[strings.ToLower(deviceToken)] = s.cfg.now()
}

// Latency delays every later answer by d (zero for none).
func (s *Server) Latency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Hang makes every later request wait, unanswered, until its client gives
// up or the test ends.
func (s *Server) Hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	latency, hang := s.latency, s.hang
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
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			panic(http.ErrAbortHandler)
		case <-s.done:
			panic(http.ErrAbortHandler)
		}
	}

	rec := Request{Header: r.Header.Clone(), RemoteAddr: r.RemoteAddr, ProtoMajor: r.ProtoMajor}
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		rec.Token = auth[7:]
	}
	status, reason, extra := s.check(r, &rec)

	s.mu.Lock()
	if rec.Token != "" {
		s.tokens[rec.Token] = true
	}
	var retryAfter string
	if status == http.StatusOK && s.failN > 0 {
		s.failN--
		status, reason, retryAfter = s.fail.status, s.fail.reason, s.fail.retryAfter
	}
	if status == http.StatusOK {
		s.received++
		rec.ID = r.Header.Get("apns-id")
		if rec.ID == "" {
			rec.ID = uuid.NewString()
		}
	}
	rec.Status, rec.Reason = status, reason
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	if status == http.StatusOK {
		w.Header().Set("apns-id", rec.ID)
		w.WriteHeader(http.StatusOK)
		return
	}
	if id := r.Header.Get("apns-id"); id != "" {
		w.Header().Set("apns-id", id)
	}
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	body := map[string]any{"reason": reason}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// check validates r in about the order APNs does and returns the answer:
// 200, or an error status with Apple's reason and any extra body fields.
func (s *Server) check(r *http.Request, rec *Request) (int, string, map[string]any) {
	if r.ProtoMajor != 2 {
		// APNs does not speak HTTP/1.x at all; this is not one of Apple's reasons.
		return http.StatusHTTPVersionNotSupported, "HTTP2Required", nil
	}
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, "MethodNotAllowed", nil
	}
	for name, vs := range r.Header {
		if len(vs) > 1 && (strings.HasPrefix(strings.ToLower(name), "apns-") || name == "Authorization") {
			return http.StatusBadRequest, "DuplicateHeaders", nil
		}
	}
	device, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok {
		return http.StatusNotFound, "BadPath", nil
	}
	if device == "" {
		return http.StatusBadRequest, "MissingDeviceToken", nil
	}
	rec.DeviceToken = device
	if strings.Contains(device, "/") {
		return http.StatusNotFound, "BadPath", nil
	}
	if _, err := hex.DecodeString(device); err != nil {
		return http.StatusBadRequest, "BadDeviceToken", nil
	}

	if status, reason := s.checkToken(r.Header.Get("Authorization")); status != http.StatusOK {
		return status, reason, nil
	}

	topic := r.Header.Get("apns-topic")
	switch {
	case topic == "":
		return http.StatusBadRequest, "MissingTopic", nil
	case topic != s.cfg.topic:
		return http.StatusBadRequest, "TopicDisallowed", nil
	}
	pushType := r.Header.Get("apns-push-type")
	switch pushType {
	case "", "alert", "background", "location", "voip", "complication", "fileprovider",
		"mdm", "liveactivity", "pushtotalk", "widgets":
	default:
		return http.StatusBadRequest, "InvalidPushType", nil
	}
	switch p := r.Header.Get("apns-priority"); {
	case p != "" && p != "10" && p != "5" && p != "1":
		return http.StatusBadRequest, "BadPriority", nil
	case pushType == "background" && p != "5":
		return http.StatusBadRequest, "BadPriority", nil
	}
	if id := r.Header.Get("apns-id"); id != "" {
		if u, err := uuid.Parse(id); err != nil || u.String() != id {
			return http.StatusBadRequest, "BadMessageId", nil
		}
	}
	if exp := r.Header.Get("apns-expiration"); exp != "" {
		if n, err := strconv.ParseInt(exp, 10, 64); err != nil || n < 0 {
			return http.StatusBadRequest, "BadExpirationDate", nil
		}
	}
	if len(r.Header.Get("apns-collapse-id")) > 64 {
		return http.StatusBadRequest, "BadCollapseId", nil
	}

	limit := MaxPayload
	if pushType == "voip" {
		limit = MaxPayloadVoIP
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		return http.StatusBadRequest, "PayloadEmpty", nil
	}
	rec.Body = body
	switch {
	case len(body) == 0:
		return http.StatusBadRequest, "PayloadEmpty", nil
	case len(body) > limit:
		return http.StatusRequestEntityTooLarge, "PayloadTooLarge", nil
	}
	if err := json.Unmarshal(body, &rec.Payload); err != nil {
		rec.Payload = nil
		// Apple documents no reason for a malformed payload; this one is the fake's.
		return http.StatusBadRequest, "BadPayload", nil
	}
	if _, ok := rec.Payload["aps"].(map[string]any); !ok {
		return http.StatusBadRequest, "BadPayload", nil
	}

	s.mu.Lock()
	since, gone := s.unregistered[strings.ToLower(device)]
	s.mu.Unlock()
	if gone {
		return http.StatusGone, "Unregistered", map[string]any{"timestamp": since.UnixMilli()}
	}
	return http.StatusOK, "", nil
}

// checkToken verifies the provider token as APNs does: ES256 signed by a
// registered key named by kid, iss the key's team, iat within the last hour.
func (s *Server) checkToken(auth string) (int, string) {
	if auth == "" {
		return http.StatusForbidden, "MissingProviderToken"
	}
	raw, ok := strings.CutPrefix(auth, "bearer ")
	if !ok {
		raw, ok = strings.CutPrefix(auth, "Bearer ")
	}
	if !ok || raw == "" {
		return http.StatusForbidden, "InvalidProviderToken"
	}
	var k key
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		var found bool
		if k, found = s.cfg.keys[kid]; !found {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return k.pub, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		return http.StatusForbidden, "InvalidProviderToken"
	}
	if iss, _ := claims["iss"].(string); iss != k.teamID {
		return http.StatusForbidden, "InvalidProviderToken"
	}
	iatF, ok := claims["iat"].(float64)
	if !ok {
		return http.StatusForbidden, "InvalidProviderToken"
	}
	iat := time.Unix(int64(iatF), 0)
	now := s.cfg.now()
	switch {
	case now.Sub(iat) > tokenMaxAge:
		return http.StatusForbidden, "ExpiredProviderToken"
	case iat.Sub(now) > time.Minute:
		// A token from the future is as unverifiable as a forged one.
		return http.StatusForbidden, "InvalidProviderToken"
	}
	return http.StatusOK, ""
}
