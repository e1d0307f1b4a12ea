// Package client is a Go client of Herald's HTTP API: typed requests and
// answers for notifications, users, devices, preferences, templates,
// topics, dead letters, keys, webhooks, providers and the app.
//
// Calls are context-aware and retried on network errors, 429 and 5xx
// answers with a backoff that honours Retry-After. A send is retried with
// the same Idempotency-Key on every attempt (one is made when the caller
// gives none), so a retry never sends twice. A refusal is a *Error
// carrying the RFC 9457 problem Herald answered.
//
// The package imports the standard library only, so any Go service can
// depend on it without pulling in Herald's server.
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Version is the client's version, sent in the default User-Agent.
const Version = "0.1.0"

// Client calls one Herald as one app's API key. It is safe for
// concurrent use.
type Client struct {
	base        string
	key         string
	http        *http.Client
	userAgent   string
	maxAttempts int
	minBackoff  time.Duration
	maxBackoff  time.Duration
	maxWait     time.Duration
}

// Option changes a Client made by New.
type Option func(*Client)

// WithHTTPClient makes the client send through h (its transport, timeout
// and proxies). The default is a client with a 30 s timeout per attempt.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithRetries sets how many attempts a call makes at most (1 turns
// retries off; the default is 4) and the backoff between them: min after
// the first failure, doubling up to max, with jitter. A Retry-After of the
// server wins over the backoff, up to WithMaxRetryAfter.
func WithRetries(attempts int, minBackoff, maxBackoff time.Duration) Option {
	return func(c *Client) {
		c.maxAttempts = max(attempts, 1)
		if minBackoff > 0 {
			c.minBackoff = minBackoff
		}
		if maxBackoff >= c.minBackoff {
			c.maxBackoff = maxBackoff
		}
	}
}

// WithMaxRetryAfter bounds how long the client waits when Herald answers
// Retry-After (default 60 s); a longer wait is not retried but returned
// as the *Error, so the caller decides.
func WithMaxRetryAfter(d time.Duration) Option { return func(c *Client) { c.maxWait = d } }

// New returns a client of the Herald at baseURL (e.g.
// "http://127.0.0.1:8080") calling with apiKey.
func New(baseURL, apiKey string, opts ...Option) *Client {
	c := &Client{
		base:        strings.TrimRight(baseURL, "/"),
		key:         apiKey,
		http:        &http.Client{Timeout: 30 * time.Second},
		userAgent:   "herald-go/" + Version,
		maxAttempts: 4,
		minBackoff:  200 * time.Millisecond,
		maxBackoff:  5 * time.Second,
		maxWait:     60 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// BaseURL returns the base URL the client calls.
func (c *Client) BaseURL() string { return c.base }

// Problem is an RFC 9457 problem as Herald answers it.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError names one offending input by its JSON path (to[0].email), or
// a query parameter or header by its name.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a call Herald answered with an error status. Match it with
// errors.As; the helpers IsNotFound, IsConflict and IsInvalid read it.
type Error struct {
	Problem
	// StatusCode is the HTTP status (Problem.Status may be absent on an
	// answer that did not come from Herald, e.g. a proxy's).
	StatusCode int
	// RetryAfter is the server's Retry-After, zero when it sent none.
	RetryAfter time.Duration
	// Method and Path name the call.
	Method, Path string
}

// Error says what was called, the status and what Herald said, with each
// offending field as "field: message".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "herald: %s %s: %d", e.Method, e.Path, e.StatusCode)
	if e.Title != "" {
		b.WriteString(" " + e.Title)
	}
	if e.Detail != "" && e.Detail != e.Title {
		b.WriteString(": " + e.Detail)
	}
	for _, f := range e.Errors {
		fmt.Fprintf(&b, "; %s: %s", f.Field, f.Message)
	}
	return b.String()
}

// Field returns the message of the first error naming field, and whether
// there is one.
func (e *Error) Field(field string) (string, bool) {
	for _, f := range e.Errors {
		if f.Field == field {
			return f.Message, true
		}
	}
	return "", false
}

func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// IsNotFound reports whether err is Herald's 404: no such object in the app.
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// IsConflict reports whether err is Herald's 409.
func IsConflict(err error) bool { return statusOf(err) == http.StatusConflict }

// IsInvalid reports whether err is Herald's 422; its Errors name the fields.
func IsInvalid(err error) bool { return statusOf(err) == http.StatusUnprocessableEntity }

// call is one API request: its body is encoded once and sent again as is
// on every attempt.
type call struct {
	method, path string
	query        string
	body         any
	rawBody      io.Reader // instead of body, sent once: never retried
	contentType  string
	header       http.Header
	// idempotent calls are retried on network errors and 5xx too; others
	// only when Herald refused them before doing anything (429).
	idempotent bool
}

// do runs c, retrying as the call allows, and decodes a 2xx answer into
// out (unless out is nil). It returns the last answer's header.
func (c *Client) do(ctx context.Context, cl call, out any) (http.Header, error) {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return nil, fmt.Errorf("herald: %s %s: encode the request: %w", cl.method, cl.path, err)
		}
	}
	attempts := c.maxAttempts
	if cl.rawBody != nil {
		attempts = 1
	}
	for attempt := 1; ; attempt++ {
		header, retryable, err := c.once(ctx, cl, payload, out)
		if err == nil || !retryable || attempt >= attempts || ctx.Err() != nil {
			return header, err
		}
		wait := c.backoff(attempt)
		var herr *Error
		if errors.As(err, &herr) && herr.RetryAfter > 0 {
			if herr.RetryAfter > c.maxWait {
				return header, err
			}
			wait = herr.RetryAfter
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return header, err
		case <-t.C:
		}
	}
}

// backoff is the pause after the attempt-th failure: full jitter over an
// exponentially growing bound, so that many clients do not retry in step.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.minBackoff << (attempt - 1)
	if d > c.maxBackoff || d <= 0 {
		d = c.maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// once makes one attempt and says whether another may follow.
func (c *Client) once(ctx context.Context, cl call, payload []byte, out any) (http.Header, bool, error) {
	var body io.Reader = cl.rawBody
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	u := c.base + cl.path
	if cl.query != "" {
		u += "?" + cl.query
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return nil, false, fmt.Errorf("herald: %s %s: %w", cl.method, cl.path, err)
	}
	for k, v := range cl.header {
		req.Header[k] = v
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	} else if cl.contentType != "" {
		req.Header.Set("Content-Type", cl.contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	res, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("herald: %s %s: %w", cl.method, cl.path, ctx.Err())
		}
		// A request that never reached Herald can always be sent again.
		var op *net.OpError
		dial := errors.As(err, &op) && op.Op == "dial"
		return nil, cl.idempotent || dial, &NetworkError{Method: cl.method, URL: c.base, Err: err}
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return res.Header, cl.idempotent, &NetworkError{Method: cl.method, URL: c.base, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	if res.StatusCode/100 == 2 {
		if out != nil && res.StatusCode != http.StatusNoContent {
			if err := json.Unmarshal(answer, out); err != nil {
				return res.Header, false, fmt.Errorf("herald: %s %s: unexpected answer: %w", cl.method, cl.path, err)
			}
		}
		return res.Header, false, nil
	}
	e := &Error{StatusCode: res.StatusCode, Method: cl.method, Path: cl.path}
	if json.Unmarshal(answer, &e.Problem) != nil || e.Title == "" {
		e.Title = http.StatusText(res.StatusCode)
		if s := strings.TrimSpace(string(answer)); s != "" && len(s) < 512 {
			e.Detail = s
		}
	}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	var retry bool
	switch res.StatusCode {
	case http.StatusTooManyRequests:
		retry = true // refused before anything was written
	case http.StatusConflict:
		// The first request with this Idempotency-Key is still in flight.
		retry = e.RetryAfter > 0 && cl.header.Get("Idempotency-Key") != ""
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		retry = cl.idempotent
	}
	return res.Header, retry, e
}

// NetworkError is a call that got no answer from Herald: it could not
// connect, or the connection broke.
type NetworkError struct {
	Method, URL string
	Err         error
}

// Error says which Herald could not be reached.
func (e *NetworkError) Error() string {
	return fmt.Sprintf("herald: cannot reach Herald at %s: %v", e.URL, e.Err)
}

// Unwrap returns the transport's error.
func (e *NetworkError) Unwrap() error { return e.Err }

// NewIdempotencyKey returns a random key for the Idempotency-Key header.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails: crypto/rand panics rather than return an error
	return "hgo_" + hex.EncodeToString(b[:])
}
