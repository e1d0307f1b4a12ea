package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/apikey"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/prometheus/client_golang/prometheus"
)

// keyStore answers key lookups from a map; every other Store method is
// the nil embedded interface and panics, which the tests below rely on
// only to exercise panic recovery. End-to-end tests against the real
// stores belong to the integration suite.
type keyStore struct {
	herald.Store
	keys map[string]herald.APIKey // by hex of hash
}

func (s keyStore) KeyByHash(_ context.Context, hash []byte) (herald.APIKey, error) {
	if k, ok := s.keys[string(hash)]; ok {
		return k, nil
	}
	return herald.APIKey{}, herald.ErrNotFound
}

// MarkKeyUsed is written in the background after each authentication; the
// map's keys are not changed.
func (s keyStore) MarkKeyUsed(context.Context, string, time.Time) error { return nil }

// senderFunc lets a test see the SendRequest the API built.
type senderFunc func(ctx context.Context, appID string, req herald.SendRequest) (herald.Accepted, bool, error)

func (f senderFunc) Send(ctx context.Context, appID string, req herald.SendRequest) (herald.Accepted, bool, error) {
	return f(ctx, appID, req)
}

// Cancel is not exercised here: the end-to-end tests cancel against the real pipeline.
func (f senderFunc) Cancel(context.Context, string, string) (int, error) { return 0, nil }

type fixture struct {
	url        string
	client     *http.Client
	adminKey   string
	sendKey    string
	registry   *prometheus.Registry
	logs       *bytes.Buffer
	mu         sync.Mutex
	lastSend   herald.SendRequest
	sendErr    error
	replayed   bool
	readyError error
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{registry: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	keys := map[string]herald.APIKey{}
	for _, scope := range []herald.Scope{herald.ScopeAdmin, herald.ScopeSend} {
		key, prefix, hash, err := apikey.Generate(scope)
		if err != nil {
			t.Fatal(err)
		}
		keys[string(hash)] = herald.APIKey{ID: "key-" + string(scope), AppID: "app1", Scope: scope, Prefix: prefix, Hash: hash}
		if scope == herald.ScopeAdmin {
			f.adminKey = key
		} else {
			f.sendKey = key
		}
	}
	var logMu sync.Mutex
	h := NewServer(Deps{
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, f.logs}, nil)),
		Store:  keyStore{keys: keys},
		Sender: senderFunc(func(_ context.Context, appID string, req herald.SendRequest) (herald.Accepted, bool, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.lastSend = req
			if f.sendErr != nil {
				return herald.Accepted{}, false, f.sendErr
			}
			a := herald.Accepted{ID: "n1", Status: "accepted"}
			for i, rc := range req.To {
				a.Deliveries = append(a.Deliveries, herald.AcceptedDelivery{
					ID: "d" + string(rune('0'+i)), UserID: rc.UserID, Channel: herald.ChannelEmail, Status: herald.StatusAccepted,
				})
			}
			return a, f.replayed, nil
		}),
		Ready: func(context.Context) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.readyError
		},
		Registry:      f.registry,
		Now:           func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
		MaxBodyBytes:  4096,
		MaxRecipients: 3,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	f.client = heraldtest.OpenAPIClient(t, srv.URL)
	return f
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t *testing.T) problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, r.body)
	}
	var p problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	return p
}

func (f *fixture) do(t *testing.T, client *http.Client, method, path, key, body string, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func fieldsOf(p problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

func TestOperationalEndpoints(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if r := f.do(t, f.client, "GET", "/healthz", "", ""); r.status != 200 || !strings.Contains(string(r.body), `"ok"`) {
		t.Errorf("healthz = %d %s", r.status, r.body)
	}
	if r := f.do(t, f.client, "GET", "/readyz", "", ""); r.status != 200 {
		t.Errorf("readyz = %d %s", r.status, r.body)
	}
	f.mu.Lock()
	f.readyError = errors.New("store: dial tcp 10.0.0.7:5432: connection refused")
	f.mu.Unlock()
	r := f.do(t, f.client, "GET", "/readyz", "", "")
	if p := r.problem(t); r.status != 503 || strings.Contains(string(r.body), "10.0.0.7") || p.Type != problemBase+"unavailable" {
		t.Errorf("readyz when not ready = %d %s", r.status, r.body)
	}
	if r := f.do(t, f.client, "GET", "/openapi.yaml", "", ""); r.status != 200 || !bytes.HasPrefix(r.body, []byte("openapi: 3.1")) {
		t.Errorf("openapi.yaml = %d %.40s", r.status, r.body)
	}
	r = f.do(t, f.client, "GET", "/metrics", "", "")
	if r.status != 200 || !strings.Contains(string(r.body), `herald_http_request_duration_seconds_count{code="200",method="GET",route="GET /healthz"} 1`) {
		t.Errorf("metrics = %d, no healthz latency sample in:\n%s", r.status, r.body)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	plain := &http.Client{}
	r := f.do(t, plain, "GET", "/v1/nothing", f.adminKey, "")
	if p := r.problem(t); r.status != 404 || p.Status != 404 || p.Type != problemBase+"not-found" {
		t.Errorf("unknown route = %d %s", r.status, r.body)
	}
	r = f.do(t, plain, "PATCH", "/v1/keys", f.adminKey, "")
	if p := r.problem(t); r.status != 405 || p.Status != 405 || r.header.Get("Allow") == "" {
		t.Errorf("wrong method = %d %v %s", r.status, r.header, r.body)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	unknown, _, _, _ := apikey.Generate(herald.ScopeAdmin)
	for _, tt := range []struct {
		name, header string
	}{
		{"missing", ""},
		{"not bearer", "Basic " + f.adminKey},
		{"not a key", "Bearer hunter2"},
		{"unknown key", "Bearer " + unknown},
	} {
		req, _ := http.NewRequest("GET", f.url+"/v1/notifications", nil)
		if tt.header != "" {
			req.Header.Set("Authorization", tt.header)
		}
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: status %d, WWW-Authenticate %q; want 401 Bearer", tt.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// A send key may not manage keys or contacts.
	r := f.do(t, f.client, "POST", "/v1/keys", f.sendKey, `{"name":"x","scope":"send"}`)
	if p := r.problem(t); r.status != 403 || p.Type != problemBase+"forbidden" {
		t.Errorf("send key on POST /v1/keys = %d %s", r.status, r.body)
	}
	r = f.do(t, f.client, "PUT", "/v1/users/u1", f.sendKey, `{}`)
	if r.status != 403 {
		t.Errorf("send key on PUT /v1/users = %d %s", r.status, r.body)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"unknown top-level field", "/v1/keys", `{"name":"x","scope":"send","owner":"me"}`, 422, "owner"},
		{"unknown nested field", "/v1/notifications", `{"to":[{"user_id":"a"},{"user_id":"b","nick":"c"}],"content":{"body":"x"}}`, 422, "to[1].nick"},
		{"unknown content field", "/v1/notifications", `{"to":[{"user_id":"a"}],"content":{"body":"x","colour":"red"}}`, 422, "content.colour"},
		{"wrong type", "/v1/notifications", `{"to":[{"email":"a@example.com"},{"email":5}],"content":{"body":"x"}}`, 422, "to[1].email"},
		{"wrong type in map", "/v1/notifications", `{"to":[{"user_id":"a"}],"content":{"body":"x","data":{"n":1,"k":{"x":1}}}}`, 422, "content.data.k"},
		{"not an object", "/v1/keys", `[1,2]`, 422, "body"},
		{"NUL in text", "/v1/notifications", `{"to":[{"user_id":"a"}],"content":{"body":"a\u0000b"}}`, 422, "content.body"},
		{"null body", "/v1/keys", `null`, 400, "body"},
		{"syntax", "/v1/keys", `{"name":}`, 400, ""},
		{"truncated", "/v1/keys", `{"name":"x"`, 400, ""},
		{"trailing data", "/v1/keys", `{"name":"x","scope":"send"} {}`, 400, ""},
		{"too large", "/v1/keys", `{"name":"` + strings.Repeat("x", 5000) + `","scope":"send"}`, 413, ""},
	} {
		key := f.adminKey
		r := f.do(t, f.client, "POST", tt.path, key, tt.body)
		p := r.problem(t)
		if r.status != tt.status || p.Status != tt.status {
			t.Errorf("%s: status %d, want %d; body %s", tt.name, r.status, tt.status, r.body)
			continue
		}
		if tt.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tt.field) {
			t.Errorf("%s: fields %q, want [%s]", tt.name, fieldsOf(p), tt.field)
		}
	}
}

func TestUserValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.do(t, f.client, "PUT", "/v1/users/u1", f.adminKey,
		`{"email":"Ada <ada@example.com>","phone":"4155550100","locale":"not a locale","timezone":"Mars/Base","attributes":{"plan":"pro"}}`)
	p := r.problem(t)
	if r.status != 422 || p.Type != problemBase+"invalid" {
		t.Fatalf("status %d, body %s", r.status, r.body)
	}
	if got, want := strings.Join(fieldsOf(p), ","), "email,phone,locale,timezone"; got != want {
		t.Errorf("fields = %s, want %s", got, want)
	}
}

func TestDeviceValidation(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		body   string
		fields string
	}{
		{`{"platform":"blackberry","token":"x"}`, "platform"},
		{`{"platform":"ios","token":"zz"}`, "token"},
		{`{"platform":"ios"}`, "token"},
		{`{"platform":"android","token":"` + strings.Repeat("a", 120) + `","subscription":{"endpoint":"https://x"}}`, "subscription"},
		{`{"platform":"web"}`, "subscription"},
		{`{"platform":"web","subscription":{"endpoint":"http://push.example.com/1","keys":{"p256dh":"AAAA","auth":"AAAA"}}}`,
			"subscription.endpoint,subscription.keys.p256dh,subscription.keys.auth"},
	} {
		var req addDeviceRequest
		if err := decodeJSON([]byte(tt.body), &req); err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		_, err := deviceFromRequest(req)
		var he *herald.Error
		if !errors.As(err, &he) || he.Code != herald.CodeInvalid {
			t.Errorf("%s: error %v, want invalid", tt.body, err)
			continue
		}
		var got []string
		for _, fe := range he.Fields {
			got = append(got, fe.Field)
		}
		if strings.Join(got, ",") != tt.fields {
			t.Errorf("%s: fields %v, want %s", tt.body, got, tt.fields)
		}
	}
}

func TestPreferencesValidation(t *testing.T) {
	t.Parallel()
	var body preferencesBody
	if err := decodeJSON([]byte(`{"channels":{"email":false,"fax":true},"categories":{"marketing":{"sms":false,"pigeon":false}},"quiet_hours":{"start":"24:00","end":"07:00"}}`), &body); err != nil {
		t.Fatal(err)
	}
	_, err := preferencesFromBody(body)
	var he *herald.Error
	if !errors.As(err, &he) {
		t.Fatalf("error %v, want invalid", err)
	}
	var got []string
	for _, fe := range he.Fields {
		got = append(got, fe.Field)
	}
	if want := "channels.fax,categories.marketing.pigeon,quiet_hours.start"; strings.Join(got, ",") != want {
		t.Errorf("fields %v, want %s", got, want)
	}
	var valid preferencesBody
	if err := decodeJSON([]byte(`{"channels":{"email":false},"quiet_hours":{"start":"22:00","end":"07:00"}}`), &valid); err != nil {
		t.Fatal(err)
	}
	if _, err := preferencesFromBody(valid); err != nil {
		t.Errorf("valid preferences refused: %v", err)
	}
}

func TestSendShapeChecks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		name, body, fields string
		header             []string
	}{
		{"no recipients", `{"to":[],"content":{"body":"x"}}`, "to", nil},
		{"too many recipients", `{"to":[{"user_id":"a"},{"user_id":"b"},{"user_id":"c"},{"user_id":"d"}],"content":{"body":"x"}}`, "to", nil},
		{"two addresses", `{"to":[{"user_id":"a","email":"a@example.com"}],"content":{"body":"x"}}`, "to[0]", nil},
		{"no address", `{"to":[{}],"content":{"body":"x"}}`, "to[0]", nil},
		{"topic name", `{"to":[{"topic":"news/today"}],"content":{"body":"x"}}`, "to[0].topic", nil},
		{"topic and user", `{"to":[{"topic":"news","user_id":"a"}],"content":{"body":"x"}}`, "to[0]", nil},
		{"send_at not a time", `{"to":[{"user_id":"a"}],"content":{"body":"x"},"send_at":"tomorrow","send_at_local":9}`, "send_at,send_at_local", nil},
		{"no content", `{"to":[{"user_id":"a"}]}`, "content", nil},
		{"bad enums", `{"to":[{"user_id":"a"}],"channels":["push","fax"],"priority":"urgent","content":{"body":"x"}}`, "channels[1],priority", nil},
		{"long idempotency key", `{"to":[{"user_id":"a"}],"content":{"body":"x"}}`, "Idempotency-Key", []string{"Idempotency-Key", strings.Repeat("k", 256)}},
	} {
		r := f.do(t, f.client, "POST", "/v1/notifications", f.sendKey, tt.body, tt.header...)
		p := r.problem(t)
		if r.status != 422 || strings.Join(fieldsOf(p), ",") != tt.fields {
			t.Errorf("%s: %d fields %v, want 422 %s; body %s", tt.name, r.status, fieldsOf(p), tt.fields, r.body)
		}
	}
}

func TestSendPassesThrough(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.replayed = true
	r := f.do(t, f.client, "POST", "/v1/notifications", f.sendKey,
		`{"to":[{"user_id":"u1"},{"email":"a@example.com"}],"channels":["email"],"category":"transactional","priority":"high","content":{"subject":"Hi","body":"Hello","data":{"k":"v"}}}`,
		"Idempotency-Key", "abc-123")
	if r.status != 202 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("status %d, replayed %q; body %s", r.status, r.header.Get("Idempotent-Replayed"), r.body)
	}
	f.mu.Lock()
	got := f.lastSend
	f.mu.Unlock()
	if got.IdempotencyKey != "abc-123" || len(got.To) != 2 || got.To[1].Email != "a@example.com" ||
		got.Priority != herald.PriorityHigh || got.Content.Data["k"] != "v" || got.Content.Subject != "Hi" {
		t.Errorf("SendRequest = %+v", got)
	}

	// The Sender's field errors reach the client as they are.
	f.mu.Lock()
	f.sendErr = fmt.Errorf("accept: %w", herald.Invalid("to[0].email", "is not an email address"))
	f.mu.Unlock()
	r = f.do(t, f.client, "POST", "/v1/notifications", f.sendKey, `{"to":[{"email":"nope"}],"content":{"body":"x"}}`)
	if p := r.problem(t); r.status != 422 || len(p.Errors) != 1 || p.Errors[0].Field != "to[0].email" {
		t.Errorf("sender error: %d %s", r.status, r.body)
	}
	f.mu.Lock()
	f.sendErr = &herald.Error{Code: herald.CodeConflict, Message: "the first request is in flight", RetryAfterSeconds: 2}
	f.mu.Unlock()
	r = f.do(t, f.client, "POST", "/v1/notifications", f.sendKey, `{"to":[{"email":"a@example.com"}],"content":{"body":"x"}}`)
	if r.status != 409 || r.header.Get("Retry-After") != "2" {
		t.Errorf("conflict: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
}

func TestChannelSend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.do(t, f.client, "POST", "/v1/email/send", f.sendKey,
		`{"to":[{"user_id":123456},{"user_id":"abc"},{"email":"b@example.com"}],"from":{"email":"x@example.com"},"subject":"S","content":[{"type":"text/plain","value":"T"},{"type":"text/html","value":"<p>H</p>"}]}`)
	if r.status != 202 {
		t.Fatalf("status %d; body %s", r.status, r.body)
	}
	f.mu.Lock()
	got := f.lastSend
	f.mu.Unlock()
	if len(got.Channels) != 1 || got.Channels[0] != herald.ChannelEmail || got.To[0].UserID != "123456" ||
		got.To[1].UserID != "abc" || got.To[2].Email != "b@example.com" ||
		got.Content.Subject != "S" || got.Content.Body != "T" || got.Content.HTML != "<p>H</p>" {
		t.Errorf("SendRequest = %+v", got)
	}
	r = f.do(t, f.client, "POST", "/v1/push/send", f.sendKey,
		`{"to":[{"user_id":1.5},{"user_id":true}],"content":[{"type":"text/markdown","value":"x"}]}`)
	p := r.problem(t)
	if want := "to[0].user_id,to[1].user_id,content[0].type"; r.status != 422 || strings.Join(fieldsOf(p), ",") != want {
		t.Errorf("status %d fields %v, want 422 %s", r.status, fieldsOf(p), want)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// keyStore does not implement GetUser: the handler panics on the nil
	// embedded interface.
	r := f.do(t, f.client, "GET", "/v1/users/u1", f.adminKey, "")
	if p := r.problem(t); r.status != 500 || p.Detail != detailInternal {
		t.Errorf("status %d body %s", r.status, r.body)
	}
	if !strings.Contains(f.logs.String(), "handler panicked") {
		t.Errorf("panic not logged: %s", f.logs.String())
	}
	if r := f.do(t, f.client, "GET", "/healthz", "", ""); r.status != 200 {
		t.Errorf("server unhealthy after a panic: %d", r.status)
	}
}

func TestProblemMapping(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err        error
		status     int
		slug       string
		retryAfter string
		leak       string // must not appear in the body
	}{
		{herald.Invalid("email", "bad"), 422, "invalid", "", ""},
		{herald.Errorf(herald.CodeMalformed, "x"), 400, "malformed", "", ""},
		{herald.Errorf(herald.CodeUnauthorized, "x"), 401, "unauthorized", "", ""},
		{herald.Errorf(herald.CodeForbidden, "x"), 403, "forbidden", "", ""},
		{fmt.Errorf("store: get: %w", herald.ErrNotFound), 404, "not-found", "", ""},
		{&herald.Error{Code: herald.CodeConflict, RetryAfterSeconds: 3}, 409, "conflict", "3", ""},
		{herald.Errorf(herald.CodeTooLarge, "x"), 413, "too-large", "", ""},
		{&herald.Error{Code: herald.CodeRateLimited, RetryAfterSeconds: 7}, 429, "rate-limited", "7", ""},
		{&herald.Error{Code: herald.CodeUnavailable, Message: "dial 10.1.2.3 refused"}, 503, "unavailable", "5", "10.1.2.3"},
		{&herald.Error{Code: herald.CodeInternal, Message: "nil map in worker.go"}, 500, "internal", "", "worker.go"},
		{errors.New("sql: database is closed"), 500, "internal", "", "database"},
		{&herald.Error{Code: "weird", Message: "secret"}, 500, "internal", "", "secret"},
	} {
		var logs bytes.Buffer
		s := &server{log: slog.New(slog.NewTextHandler(&logs, nil))}
		w := httptest.NewRecorder()
		s.fail(w, httptest.NewRequest("GET", "/x", nil), tt.err)
		var p problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatalf("%v: body %s: %v", tt.err, w.Body, err)
		}
		if w.Code != tt.status || p.Status != tt.status || p.Type != problemBase+tt.slug || p.Title == "" {
			t.Errorf("%v: %d %+v, want %d %s", tt.err, w.Code, p, tt.status, tt.slug)
		}
		if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
			t.Errorf("%v: Retry-After %q, want %q", tt.err, got, tt.retryAfter)
		}
		if tt.leak != "" && strings.Contains(w.Body.String(), tt.leak) {
			t.Errorf("%v: body leaks %q: %s", tt.err, tt.leak, w.Body)
		}
		if tt.status == 500 && !strings.Contains(logs.String(), "internal error") {
			t.Errorf("%v: internal error not logged", tt.err)
		}
	}
}

func TestNotificationStatus(t *testing.T) {
	t.Parallel()
	d := func(ss ...herald.Status) []herald.Delivery {
		var out []herald.Delivery
		for _, s := range ss {
			out = append(out, herald.Delivery{Status: s})
		}
		return out
	}
	for _, tt := range []struct {
		ds   []herald.Delivery
		want string
	}{
		{nil, "completed"},
		{d(herald.StatusAccepted, herald.StatusQueued, herald.StatusScheduled), "accepted"},
		{d(herald.StatusQueued, herald.StatusSending), "processing"},
		{d(herald.StatusSent, herald.StatusQueued), "processing"},
		{d(herald.StatusDelivered, herald.StatusSuppressed, herald.StatusDead), "completed"},
	} {
		if got := notificationStatus(tt.ds); got != tt.want {
			t.Errorf("notificationStatus(%v) = %s, want %s", tt.ds, got, tt.want)
		}
	}
}

func TestNotificationFilter(t *testing.T) {
	t.Parallel()
	f, err := notificationFilter(map[string][]string{})
	if err != nil || f.Limit != defaultListLimit {
		t.Errorf("defaults: %+v %v", f, err)
	}
	_, err = notificationFilter(map[string][]string{
		"limit": {"501"}, "since": {"yesterday"}, "status": {"lost"}, "channel": {"fax"}, "user_id": {"a/b"},
	})
	var he *herald.Error
	if !errors.As(err, &he) {
		t.Fatalf("error %v", err)
	}
	var got []string
	for _, fe := range he.Fields {
		got = append(got, fe.Field)
	}
	if want := "user_id,status,channel,since,limit"; strings.Join(got, ",") != want {
		t.Errorf("fields %v, want %s", got, want)
	}
}

func TestMaskAddress(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		c        herald.Channel
		in, want string
	}{
		{herald.ChannelEmail, "ada@example.com", "a***@example.com"},
		{herald.ChannelSMS, "+14155550100", "+141******00"},
		{herald.ChannelPush, "token", ""},
	} {
		if got := maskAddress(tt.c, tt.in); got != tt.want {
			t.Errorf("maskAddress(%s, %q) = %q, want %q", tt.c, tt.in, got, tt.want)
		}
	}
}
