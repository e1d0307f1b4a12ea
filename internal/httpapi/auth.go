package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/apikey"
)

// handler is an authenticated /v1 handler: it gets the caller's key (and
// so its app) and returns an error instead of writing one, so that every
// failure goes through fail.
type handler func(w http.ResponseWriter, r *http.Request, key herald.APIKey) error

// Reasons a request failed authentication, the label of the
// herald_api_auth_failures_total counter.
const (
	authMissing   = "missing"   // no Authorization header, or not a Bearer one
	authMalformed = "malformed" // not the shape of a key, or its checksum does not match
	authUnknown   = "unknown"   // no live key has this hash
	authExpired   = "expired"
)

// usageInterval is how often at most a key's last use is written, per
// process: GET /v1/keys may show a time up to that much behind.
const usageInterval = time.Minute

// v1 authenticates the request with its bearer key and checks that the
// key's scope allows need before calling h.
func (s *server) v1(need herald.Scope, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := s.clientAddr(r)
		if err := s.limitAuthFailures(r, addr); err != nil {
			s.fail(w, r, err)
			return
		}
		key, reason, err := s.authenticate(r)
		if err != nil {
			if reason != "" {
				s.countAuthFailure(r, addr, reason)
			}
			s.fail(w, r, err)
			return
		}
		if err := s.limitKey(r, key); err != nil {
			s.fail(w, r, err)
			return
		}
		if !key.Scope.Allows(need) {
			s.fail(w, r, herald.Errorf(herald.CodeForbidden, "this key has scope %q; the operation needs %q", key.Scope, need))
			return
		}
		if !plainPath(r.URL.Path) {
			// No object has such an id, and the databases refuse to compare with it.
			s.fail(w, r, herald.Errorf(herald.CodeNotFound, "not found"))
			return
		}
		if err := h(w, r, key); err != nil {
			s.fail(w, r, err)
		}
	})
}

// authenticate finds the request's live, unexpired key. On a failure of
// the credentials it also returns why (one of the auth* reasons); an error
// without a reason is Herald's own (the store unreachable).
func (s *server) authenticate(r *http.Request) (herald.APIKey, string, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return herald.APIKey{}, authMissing, herald.Errorf(herald.CodeUnauthorized, "an Authorization: Bearer <api key> header is required")
	}
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return herald.APIKey{}, authMissing, herald.Errorf(herald.CodeUnauthorized, "the Authorization header must use the Bearer scheme")
	}
	token = strings.TrimSpace(token)
	// A string that cannot be a key (a typo breaks the checksum) is
	// refused without a store lookup.
	if !apikey.LooksLike(token) {
		return herald.APIKey{}, authMalformed, herald.Errorf(herald.CodeUnauthorized, "the API key is not valid")
	}
	key, err := s.lookupKey(r.Context(), token)
	if herald.IsNotFound(err) {
		return herald.APIKey{}, authUnknown, herald.Errorf(herald.CodeUnauthorized, "the API key is not valid")
	}
	if err != nil {
		return herald.APIKey{}, "", err
	}
	now := s.now()
	if key.Expired(now) {
		return herald.APIKey{}, authExpired, herald.Errorf(herald.CodeUnauthorized, "the API key has expired")
	}
	if s.usage.due(key.ID, now) {
		s.background(func(ctx context.Context) error { return s.store.MarkKeyUsed(ctx, key.ID, now.UTC()) })
	}
	return key, "", nil
}

// lookupKey finds the live key by its keyed hash, then by the legacy
// SHA-256 of keys stored by older versions, which it moves to the keyed
// hash. Nothing is cached: a revocation or an expiry holds on every
// process at once.
func (s *server) lookupKey(ctx context.Context, token string) (herald.APIKey, error) {
	keyed := func() (herald.APIKey, error) {
		sum := s.hasher.Sum(token)
		key, err := s.store.KeyByHash(ctx, sum)
		if err == nil && !apikey.Equal(key.Hash, sum) {
			err = herald.ErrNotFound
		}
		return key, err
	}
	if s.hasher != nil {
		if key, err := keyed(); !herald.IsNotFound(err) {
			return key, err
		}
	}
	legacy := apikey.LegacyHash(token)
	key, err := s.store.KeyByHash(ctx, legacy)
	if herald.IsNotFound(err) && s.hasher != nil {
		// Another request (on any process) may have moved the key to its
		// keyed hash between the two reads above: look there once more.
		return keyed()
	}
	if err != nil {
		return herald.APIKey{}, err
	}
	if !apikey.Equal(key.Hash, legacy) {
		return herald.APIKey{}, herald.ErrNotFound
	}
	if s.hasher == nil {
		return key, nil
	}
	// One rehash per key and process: the requests that find the legacy
	// hash before it lands need not each write it.
	if _, busy := s.rehashing.LoadOrStore(key.ID, true); !busy {
		id, sum := key.ID, s.hasher.Sum(token)
		s.background(func(ctx context.Context) error {
			defer s.rehashing.Delete(id)
			if err := s.store.RehashKey(ctx, id, legacy, sum); err != nil && !herald.IsNotFound(err) {
				return err
			}
			return nil
		})
	}
	return key, nil
}

// background runs a store write of the authentication path without
// holding up the request: its failure is only logged.
func (s *server) background(f func(ctx context.Context) error) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f(ctx); err != nil {
			s.log.Warn("httpapi: key bookkeeping not written", "err", err)
		}
	}()
}

// limitAuthFailures refuses, before any key lookup, an address that
// failed authentication AuthFailureLimit.Max times within its period.
func (s *server) limitAuthFailures(r *http.Request, addr string) error {
	if s.limiter == nil || s.authLimit.Max < 1 {
		return nil
	}
	d, err := s.limiter.Peek(r.Context(), "authfail:"+addr, s.authLimit)
	if err != nil {
		s.log.WarnContext(r.Context(), "httpapi: failed authentications not checked", "addr", addr, "err", err)
		return nil
	}
	if d.Allowed {
		return nil
	}
	secs := max(int((d.RetryAfter+time.Second-1)/time.Second), 1)
	return &herald.Error{Code: herald.CodeRateLimited, RetryAfterSeconds: secs,
		Message: fmt.Sprintf("too many failed authentications from this address; retry after %d s", secs)}
}

// countAuthFailure counts a failed authentication of addr.
func (s *server) countAuthFailure(r *http.Request, addr, reason string) {
	s.authFailures.WithLabelValues(reason).Inc()
	if s.limiter == nil || s.authLimit.Max < 1 {
		return
	}
	if _, err := s.limiter.Allow(r.Context(), "authfail:"+addr, s.authLimit, ""); err != nil {
		s.log.WarnContext(r.Context(), "httpapi: failed authentication not counted", "addr", addr, "err", err)
	}
}

// clientAddr is the address failed authentications are counted by: the
// TCP peer, or, behind a trusted proxy, the last X-Forwarded-For entry
// (the address the proxy itself saw; earlier entries are the client's
// word and could be forged).
func (s *server) clientAddr(r *http.Request) string {
	if s.trustForwardedFor {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip := net.ParseIP(strings.TrimSpace(last)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// keyUsage remembers when this process last wrote each key's last use,
// so that it writes at most once per usageInterval per key.
type keyUsage struct {
	mu      sync.Mutex
	written map[string]time.Time
}

// due reports whether the key's use at now should be written, and if so
// notes it as written.
func (u *keyUsage) due(id string, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.written == nil {
		u.written = map[string]time.Time{}
	}
	if t, ok := u.written[id]; ok && now.Sub(t) < usageInterval && !now.Before(t) {
		return false
	}
	if len(u.written) >= 1<<16 {
		// Keys unused for an interval need no entry: their next use is due anyway.
		for k, t := range u.written {
			if now.Sub(t) >= usageInterval {
				delete(u.written, k)
			}
		}
	}
	u.written[id] = now
	return true
}

func registerAuthFailures(reg *prometheus.Registry) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_api_auth_failures_total",
		Help: "Requests refused for their API key, by reason: missing, malformed, unknown or expired.",
	}, []string{"reason"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("httpapi: register auth failure counter: %v", err))
	}
	return c
}

// plainPath reports whether a decoded request path is valid UTF-8 without
// control characters, as every id Herald stores is.
func plainPath(p string) bool {
	if !utf8.ValidString(p) {
		return false
	}
	for _, r := range p {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
