package httpapi

import (
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/apikey"
)

// handler is an authenticated /v1 handler: it gets the caller's key (and
// so its app) and returns an error instead of writing one, so that every
// failure goes through fail.
type handler func(w http.ResponseWriter, r *http.Request, key herald.APIKey) error

// v1 authenticates the request with its bearer key and checks that the
// key's scope allows need before calling h.
func (s *server) v1(need herald.Scope, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := s.authenticate(r)
		if err != nil {
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

func (s *server) authenticate(r *http.Request) (herald.APIKey, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return herald.APIKey{}, herald.Errorf(herald.CodeUnauthorized, "an Authorization: Bearer <api key> header is required")
	}
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return herald.APIKey{}, herald.Errorf(herald.CodeUnauthorized, "the Authorization header must use the Bearer scheme")
	}
	token = strings.TrimSpace(token)
	// A string that cannot be a key is refused without a store lookup.
	if !apikey.LooksLike(token) {
		return herald.APIKey{}, herald.Errorf(herald.CodeUnauthorized, "the API key is not valid")
	}
	key, err := s.store.KeyByHash(r.Context(), apikey.Hash(token))
	if herald.IsNotFound(err) {
		return herald.APIKey{}, herald.Errorf(herald.CodeUnauthorized, "the API key is not valid")
	}
	if err != nil {
		return herald.APIKey{}, err
	}
	return key, nil
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
