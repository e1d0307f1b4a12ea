package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/heraldhq/herald"
)

// limitKey counts the request against its API key's limit: CodeRateLimited,
// with the whole seconds until the key's window has room, past it.
func (s *server) limitKey(r *http.Request, key herald.APIKey) error {
	if s.limiter == nil || s.keyLimit.Max < 1 {
		return nil
	}
	d, err := s.limiter.Allow(r.Context(), "key:"+key.ID, s.keyLimit, "")
	if err != nil {
		// The limit protects Herald; an outage of the shared counter
		// (Redis) must not take the whole API down with it.
		s.log.WarnContext(r.Context(), "httpapi: request limit not checked", "key", key.ID, "err", err)
		return nil
	}
	if d.Allowed {
		return nil
	}
	secs := int((d.RetryAfter + time.Second - 1) / time.Second)
	return &herald.Error{Code: herald.CodeRateLimited, RetryAfterSeconds: max(secs, 1),
		Message: fmt.Sprintf("this API key made %d requests within %s, its limit; retry after %d s", s.keyLimit.Max, s.keyLimit.Per, max(secs, 1))}
}
