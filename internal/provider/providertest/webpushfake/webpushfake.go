// Package webpushfake is a fake Web Push service for tests: a TLS (HTTP/2)
// server that hands out subscriptions, decrypts what it receives per RFC
// 8291 with each subscription's private key, checks the RFC 8030 headers
// and, when asked, the RFC 8292 VAPID authorization, and can be told to
// fail. Its decryption is written independently of the adapter's
// encryption, so a mistake in one is not mirrored in the other.
package webpushfake

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
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

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/webpushua"
)

// maxBody is the largest body the fake accepts; RFC 8030 §7.2 says push
// services must take at least 4096 bytes, and this one takes no more.
const maxBody = 4096

// Request is one push message the fake accepted (answered 201).
type Request struct {
	// Endpoint is the subscription endpoint the message was posted to.
	Endpoint string
	// Header holds the request's headers as received.
	Header http.Header
	// Payload is the decrypted plaintext, padding removed.
	Payload []byte
	// TTL is the TTL header in seconds.
	TTL int
	// Urgency is the Urgency header, "normal" when absent.
	Urgency string
	// Topic is the Topic header, "" when absent.
	Topic string
	// VAPID holds the verified token's claims; zero unless RequireVAPID is set.
	VAPID VAPIDClaims
	// Location is the push message resource the fake answered with.
	Location string
}

// VAPIDClaims are the claims of a verified VAPID JWT.
type VAPIDClaims struct {
	Audience string
	Subject  string
	Expiry   time.Time
}

// Option configures New.
type Option func(*config)

type config struct {
	vapidKey string // base64url public key that must sign every request; "" skips the check
	now      func() time.Time
}

// RequireVAPID makes the fake demand an "Authorization: vapid t=…, k=…"
// header whose k is pubKeyB64 (base64url of the uncompressed point) and
// whose ES256 JWT verifies with it, with aud equal to the fake's origin,
// exp in the future and at most 24 hours ahead, and sub present. A missing
// header is answered 401, any other failure 403 (RFC 8292 §4.2).
func RequireVAPID(pubKeyB64 string) Option {
	return func(c *config) { c.vapidKey = strings.TrimRight(pubKeyB64, "=") }
}

// WithClock sets the clock the fake checks VAPID expiry against; the
// default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// Server is the fake push service. It is safe for concurrent use.
type Server struct {
	cfg   config
	srv   *httptest.Server
	caPEM string
	done  chan struct{} // closed when the test ends, to release hung requests

	mu       sync.Mutex
	subs     map[string]*receiver // by path
	gone     map[string]bool      // by path
	failures []failure
	latency  time.Duration
	hang     bool
	accepted []Request
	attempts int
	seq      int
}

// receiver is a subscription's private side: what a browser keeps.
type receiver struct {
	key  *ecdh.PrivateKey
	auth []byte
}

// failure is a scripted answer for the next request.
type failure struct {
	status     int
	retryAfter time.Duration
}

// New starts a fake push service on 127.0.0.1 over TLS with HTTP/2 and
// stops it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		cfg:  config{now: time.Now},
		done: make(chan struct{}),
		subs: map[string]*receiver{},
		gone: map[string]bool{},
	}
	for _, o := range opts {
		o(&s.cfg)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.EnableHTTP2 = true
	s.srv.StartTLS()
	s.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}))
	t.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// URL returns the fake's origin, "https://127.0.0.1:<port>".
func (s *Server) URL() string { return s.srv.URL }

// CAPEM returns the PEM of the fake's self-signed certificate, valid for
// 127.0.0.1, ::1 and example.com: the ca_pem setting that trusts it.
func (s *Server) CAPEM() string { return s.caPEM }

// NewSubscription registers a new subscription, as a browser would after
// subscribing: a fresh receiver key pair and auth secret, and an endpoint
// under the fake.
func (s *Server) NewSubscription() herald.WebPushSubscription {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic("webpushfake: " + err.Error()) // crypto/rand does not fail
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	s.mu.Lock()
	s.seq++
	path := fmt.Sprintf("/push/sub%d", s.seq)
	s.subs[path] = &receiver{key: key, auth: auth}
	s.mu.Unlock()

	var sub herald.WebPushSubscription
	sub.Endpoint = s.srv.URL + path
	sub.Keys.P256dh = base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes())
	sub.Keys.Auth = base64.RawURLEncoding.EncodeToString(auth)
	return sub
}

// FailNext makes the next n requests, whatever their subscription, be
// answered with status and, when retryAfter is positive, a Retry-After
// header in whole seconds. They are not decrypted or recorded.
func (s *Server) FailNext(n, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{status: status, retryAfter: retryAfter})
	}
}

// Gone makes every later request to endpoint be answered 410 Gone, as for
// an unsubscribed browser.
func (s *Server) Gone(endpoint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone[strings.TrimPrefix(endpoint, s.srv.URL)] = true
}

// Latency makes the fake wait d before answering each request (or until
// the client gives up).
func (s *Server) Latency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Hang makes the fake never answer: each request is held until the client
// gives up or the test ends.
func (s *Server) Hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = true
}

// Requests returns the accepted push messages in the order they arrived.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.accepted...)
}

// Attempts returns how many requests reached the fake, accepted or not.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.attempts++
	latency, hang := s.latency, s.hang
	var fail *failure
	if len(s.failures) > 0 {
		fail = &s.failures[0]
		s.failures = s.failures[1:]
	}
	rcv, gone := s.subs[r.URL.Path], s.gone[r.URL.Path]
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
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			panic(http.ErrAbortHandler)
		case <-s.done:
			t.Stop()
			panic(http.ErrAbortHandler)
		}
	}
	if fail != nil {
		if fail.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(fail.retryAfter.Round(time.Second)/time.Second)))
		}
		http.Error(w, "scripted failure", fail.status)
		return
	}

	switch {
	case r.Method != http.MethodPost:
		http.Error(w, "push messages are POSTed", http.StatusMethodNotAllowed)
		return
	case rcv == nil:
		http.Error(w, "no such subscription", http.StatusNotFound)
		return
	case gone:
		http.Error(w, "subscription expired", http.StatusGone)
		return
	}

	var claims VAPIDClaims
	if s.cfg.vapidKey != "" {
		c, status, err := s.checkVAPID(r.Header.Get("Authorization"))
		if err != nil {
			http.Error(w, "vapid: "+err.Error(), status)
			return
		}
		claims = c
	}

	ttl, err := strconv.Atoi(r.Header.Get("TTL"))
	if err != nil || ttl < 0 {
		http.Error(w, "the TTL header is required: a number of seconds (RFC 8030 §5.2)", http.StatusBadRequest)
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		http.Error(w, fmt.Sprintf("Content-Encoding %q: only aes128gcm is accepted (RFC 8291 §4)", ce), http.StatusBadRequest)
		return
	}
	urgency := r.Header.Get("Urgency")
	switch urgency {
	case "":
		urgency = "normal"
	case "very-low", "low", "normal", "high":
	default:
		http.Error(w, fmt.Sprintf("Urgency %q is not very-low, low, normal or high (RFC 8030 §5.3)", urgency), http.StatusBadRequest)
		return
	}
	topic := r.Header.Get("Topic")
	if topic != "" && !webpushua.ValidTopic(topic) {
		http.Error(w, "Topic must be at most 32 URL-safe base64 characters (RFC 8030 §5.4)", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxBody {
		http.Error(w, "payload over 4096 bytes", http.StatusRequestEntityTooLarge)
		return
	}
	plain, err := webpushua.Decrypt(body, rcv.key, rcv.auth)
	if err != nil {
		http.Error(w, "the body does not decrypt: "+err.Error(), http.StatusBadRequest)
		return
	}

	s.mu.Lock()
	s.seq++
	loc := fmt.Sprintf("%s/message/m%d", s.srv.URL, s.seq)
	s.accepted = append(s.accepted, Request{
		Endpoint: s.srv.URL + r.URL.Path, Header: r.Header.Clone(), Payload: plain,
		TTL: ttl, Urgency: urgency, Topic: topic, VAPID: claims, Location: loc,
	})
	s.mu.Unlock()
	w.Header().Set("Location", loc)
	w.Header().Set("TTL", strconv.Itoa(ttl))
	w.WriteHeader(http.StatusCreated)
}

// checkVAPID verifies an "Authorization: vapid t=…, k=…" header (RFC 8292
// §3) and returns its claims, or the status to answer and why.
func (s *Server) checkVAPID(h string) (VAPIDClaims, int, error) {
	var c VAPIDClaims
	scheme, params, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "vapid") {
		return c, http.StatusUnauthorized, errors.New("an Authorization header with the vapid scheme is required")
	}
	var t, k string
	for p := range strings.SplitSeq(params, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(name) {
		case "t":
			t = value
		case "k":
			k = value
		}
	}
	if t == "" || k == "" {
		return c, http.StatusUnauthorized, errors.New("the vapid authorization needs t and k")
	}
	if k != s.cfg.vapidKey {
		return c, http.StatusForbidden, errors.New("k is not the subscription's application server key")
	}
	raw, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil {
		return c, http.StatusForbidden, errors.New("k is not base64url")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return c, http.StatusForbidden, fmt.Errorf("k: %w", err)
	}
	now := s.cfg.now()
	var claims jwt.RegisteredClaims
	_, err = jwt.ParseWithClaims(t, &claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithExpirationRequired(),
		jwt.WithAudience(s.srv.URL))
	if err != nil {
		return c, http.StatusForbidden, err
	}
	exp := claims.ExpiresAt.Time
	if exp.After(now.Add(24 * time.Hour)) {
		return c, http.StatusForbidden, errors.New("exp is more than 24 hours ahead (RFC 8292 §2)")
	}
	if claims.Subject == "" {
		return c, http.StatusForbidden, errors.New("sub is required")
	}
	if len(claims.Audience) != 1 {
		return c, http.StatusForbidden, errors.New("aud must be one origin")
	}
	return VAPIDClaims{Audience: claims.Audience[0], Subject: claims.Subject, Expiry: exp}, 0, nil
}
