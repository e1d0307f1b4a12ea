package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/heraldhq/herald"
)

// problemBase prefixes every problem type URI; the last segment is the
// error code with hyphens ("not-found"), documented in openapi.yaml.
const problemBase = "https://herald.dev/problems/"

// problem is an RFC 9457 problem details object.
type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []fieldError `json:"errors,omitempty"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

type codeInfo struct {
	status int
	slug   string
	title  string
}

// infoFor is the one table from domain error codes to HTTP; ok is false
// for a code it does not know.
func infoFor(code herald.Code) (info codeInfo, ok bool) {
	switch code {
	case herald.CodeInvalid:
		return codeInfo{http.StatusUnprocessableEntity, "invalid", "Invalid request"}, true
	case herald.CodeMalformed:
		return codeInfo{http.StatusBadRequest, "malformed", "Malformed request"}, true
	case herald.CodeUnauthorized:
		return codeInfo{http.StatusUnauthorized, "unauthorized", "Unauthorized"}, true
	case herald.CodeForbidden:
		return codeInfo{http.StatusForbidden, "forbidden", "Forbidden"}, true
	case herald.CodeNotFound:
		return codeInfo{http.StatusNotFound, "not-found", "Not found"}, true
	case herald.CodeConflict:
		return codeInfo{http.StatusConflict, "conflict", "Conflict"}, true
	case herald.CodeTooLarge:
		return codeInfo{http.StatusRequestEntityTooLarge, "too-large", "Request too large"}, true
	case herald.CodeRateLimited:
		return codeInfo{http.StatusTooManyRequests, "rate-limited", "Too many requests"}, true
	case herald.CodeUnavailable:
		return codeInfo{http.StatusServiceUnavailable, "unavailable", "Service unavailable"}, true
	case herald.CodeInternal:
		return codeInfo{http.StatusInternalServerError, "internal", "Internal server error"}, true
	}
	return codeInfo{}, false
}

// Details for the codes whose own message may carry internals (driver
// errors, hostnames): those go to the log, never to the client.
const (
	detailInternal    = "An unexpected error occurred; it has been logged."
	detailUnavailable = "A dependency of Herald is unavailable; try again later."
)

// problemFor builds the problem for a code; unknown codes are internal.
func problemFor(code herald.Code, detail string, fields []herald.FieldError) problem {
	info, ok := infoFor(code)
	if !ok {
		code = herald.CodeInternal
		info, _ = infoFor(code)
	}
	switch code {
	case herald.CodeInternal:
		detail = detailInternal
	case herald.CodeUnavailable:
		detail = detailUnavailable
	}
	p := problem{Type: problemBase + info.slug, Title: info.title, Status: info.status, Detail: detail}
	for _, f := range fields {
		p.Errors = append(p.Errors, fieldError(f))
	}
	return p
}

// fail is the one place an error becomes a response: herald.Error codes
// map to statuses, anything else is a logged 500 whose message stays
// inside.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *herald.Error
	if !errors.As(err, &he) {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			// The client went away; there is nobody to answer.
			s.log.DebugContext(r.Context(), "httpapi: request canceled", "method", r.Method, "path", r.URL.Path)
		} else {
			s.log.ErrorContext(r.Context(), "httpapi: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeProblemBody(w, http.StatusInternalServerError, problemFor(herald.CodeInternal, "", nil))
		return
	}
	p := problemFor(he.Code, he.Message, he.Fields)
	switch p.Status {
	case http.StatusInternalServerError:
		s.log.ErrorContext(r.Context(), "httpapi: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	case http.StatusServiceUnavailable:
		s.log.WarnContext(r.Context(), "httpapi: dependency unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		if he.RetryAfterSeconds <= 0 {
			w.Header().Set("Retry-After", "5") // a database or queue blip usually passes within seconds
		}
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
	}
	if he.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(he.RetryAfterSeconds))
	}
	writeProblemBody(w, p.Status, p)
}

func writeProblemBody(w http.ResponseWriter, status int, p problem) {
	b, err := json.Marshal(p)
	if err != nil {
		// Only strings and ints: cannot happen, but never answer nothing.
		b = []byte(`{"type":"` + problemBase + `internal","title":"Internal server error","status":500}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeJSON answers v, an explicit response struct, as application/json.
func (s *server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	buf := s.getBuffer()
	defer s.putBuffer(buf)
	// Encode writes what json.Marshal would (HTML escaped too) and the newline.
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// maxPooledBuffer bounds the buffers kept for reuse, so that one large
// body does not stay allocated.
const maxPooledBuffer = 64 << 10

// getBuffer returns an empty buffer from the server's pool, for request
// bodies and JSON answers; putBuffer gives it back.
func (s *server) getBuffer() *bytes.Buffer {
	if b, ok := s.buffers.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

func (s *server) putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	s.buffers.Put(b)
}
