// Package fcmfake is a fake Firebase Cloud Messaging HTTP v1 server for
// tests. It speaks the real wire protocol over HTTP/2 and TLS: an OAuth 2
// token endpoint implementing the JWT-bearer grant for service accounts it
// generated, and messages:send, whose body it validates against Google's
// discovery document (specs.FCM) and FCM's documented rules. Errors come in
// Google's google.rpc.Status shape with FcmError details.
package fcmfake

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Scopes the token endpoint accepts for FCM.
const (
	ScopeMessaging     = "https://www.googleapis.com/auth/firebase.messaging"
	ScopeCloudPlatform = "https://www.googleapis.com/auth/cloud-platform"
)

// grantType is the JWT-bearer grant (RFC 7523).
const grantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// maxBody caps a request body the fake reads.
const maxBody = 1 << 20

// Request is one messages:send call the fake answered.
type Request struct {
	Project string // the {project_id} of the path
	Proto   string // "HTTP/2.0" when the client spoke HTTP/2
	Header  http.Header
	Body    []byte // the raw JSON body
	// Message is the body's "message" object, decoded with json.Number; nil
	// when the body was not valid JSON.
	Message map[string]any
	Status  int    // the HTTP status answered
	Name    string // the message name answered with 200, else ""
}

// Option configures New.
type Option func(*config)

type config struct {
	tokenLifetime time.Duration
	latency       time.Duration
	now           func() time.Time
}

// WithTokenLifetime sets the expires_in of issued access tokens (default 1h).
func WithTokenLifetime(d time.Duration) Option {
	return func(c *config) { c.tokenLifetime = d }
}

// WithLatency delays every messages:send answer by d, as Latency does.
func WithLatency(d time.Duration) Option {
	return func(c *config) { c.latency = d }
}

// WithClock sets the clock used to check JWT times and token expiry.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	srv    *httptest.Server
	schema *schemaSet
	now    func() time.Time
	stop   chan struct{}

	mu       sync.Mutex
	lifetime time.Duration
	latency  time.Duration
	hang     bool
	accounts map[string]*account // by client_email
	tokens   map[string]*issued  // by access token
	failures []failure
	gone     map[string]bool // unregistered device tokens
	requests []Request
	received int
	issuedN  int
	seq      int
}

type account struct {
	projectID string
	keyID     string
	key       *rsa.PublicKey
}

type issued struct {
	email   string
	project string
	expires time.Time
	revoked bool
}

type failure struct {
	status     int
	code       string
	retryAfter time.Duration
}

// New starts a fake on 127.0.0.1 with TLS and HTTP/2; it stops when the
// test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	c := config{tokenLifetime: time.Hour, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	schema, err := loadSchema()
	if err != nil {
		t.Fatalf("fcmfake: %v", err)
	}
	s := &Server{
		schema:   schema,
		now:      c.now,
		stop:     make(chan struct{}),
		lifetime: c.tokenLifetime,
		latency:  c.latency,
		accounts: map[string]*account{},
		tokens:   map[string]*issued{},
		gone:     map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.handleToken)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", s.handleSend)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.EnableHTTP2 = true
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake noise from clients that give up
	s.srv.StartTLS()
	t.Cleanup(func() {
		close(s.stop) // releases hanging handlers
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

// URL is the FCM root URL of the fake (the provider's endpoint setting).
func (s *Server) URL() string { return s.srv.URL }

// TokenURI is the fake's OAuth token endpoint.
func (s *Server) TokenURI() string { return s.srv.URL + "/token" }

// CAPEM returns the PEM of the fake's self-signed certificate (the
// provider's ca_pem setting).
func (s *Server) CAPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}))
}

// ServiceAccountJSON generates an RSA key and returns a service-account key
// file for projectID, in Google's format, whose token_uri is the fake's.
// Only accounts made here can get tokens.
func (s *Server) ServiceAccountJSON(projectID string) []byte {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("fcmfake: generate key: " + err.Error())
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic("fcmfake: marshal key: " + err.Error())
	}
	kid := make([]byte, 20)
	_, _ = rand.Read(kid)
	s.mu.Lock()
	s.seq++
	email := fmt.Sprintf("herald-%d@%s.iam.gserviceaccount.com", s.seq, projectID)
	s.accounts[email] = &account{projectID: projectID, keyID: hex.EncodeToString(kid), key: &key.PublicKey}
	s.mu.Unlock()
	out, err := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  projectID,
		"private_key_id":              hex.EncodeToString(kid),
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                email,
		"client_id":                   "1" + strconv.Itoa(100000000+s.seq),
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   s.TokenURI(),
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/" + email,
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	if err != nil {
		panic(err)
	}
	return out
}

// Requests returns every messages:send request answered so far, accepted
// or not, in the order they were answered.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// Received returns how many messages the fake accepted (answered 200,
// validate_only excluded).
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

// TokensIssued returns how many access tokens the token endpoint issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issuedN
}

// FailNext makes the next n authenticated messages:send calls fail with
// status and fcmErrorCode, with a Retry-After header when retryAfter > 0.
// An FcmError code (UNREGISTERED, QUOTA_EXCEEDED, THIRD_PARTY_AUTH_ERROR, …)
// is sent as an FcmError detail; a canonical code (UNAUTHENTICATED,
// PERMISSION_DENIED) only as the top-level status, as Google does.
func (s *Server) FailNext(n, status int, fcmErrorCode string, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{status: status, code: fcmErrorCode, retryAfter: retryAfter})
	}
}

// Unregister makes sends to the device token answer 404 UNREGISTERED.
func (s *Server) Unregister(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone[token] = true
}

// ExpireTokens revokes every access token issued so far: the next send
// with one gets 401 UNAUTHENTICATED.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tok := range s.tokens {
		tok.revoked = true
	}
}

// Latency delays every later messages:send answer by d.
func (s *Server) Latency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Hang makes every later messages:send call hang until the client gives up
// or the test ends; the call is recorded with status 0.
func (s *Server) Hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = true
}

// handleToken implements the OAuth 2 JWT-bearer grant as Google's token
// endpoint does for service accounts.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Bad form body")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != grantType {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	email, status, code, desc := s.verifyAssertion(r.PostForm.Get("assertion"))
	if status != 0 {
		oauthError(w, status, code, desc)
		return
	}
	tokBytes := make([]byte, 24)
	_, _ = rand.Read(tokBytes)
	tok := "ya29.fake-" + base64.RawURLEncoding.EncodeToString(tokBytes)
	s.mu.Lock()
	lifetime := s.lifetime
	s.tokens[tok] = &issued{email: email, project: s.accounts[email].projectID, expires: s.now().Add(lifetime)}
	s.issuedN++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok,
		"expires_in":   int(lifetime / time.Second),
		"token_type":   "Bearer",
	})
}

// verifyAssertion checks the JWT: RS256 signed by a known account's key,
// iss its client_email, aud this token endpoint, an FCM scope, and an
// iat/exp window of at most an hour around now. It returns the email, or
// the OAuth error to answer.
func (s *Server) verifyAssertion(assertion string) (email string, status int, code, desc string) {
	bad := func(d string) (string, int, string, string) { return "", http.StatusBadRequest, "invalid_grant", d }
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return bad("Invalid JWT: the assertion is not a JWS compact serialization.")
	}
	var header struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		Kid string `json:"kid"`
	}
	var claims struct {
		Iss   string `json:"iss"`
		Scope string `json:"scope"`
		Aud   string `json:"aud"`
		Iat   int64  `json:"iat"`
		Exp   int64  `json:"exp"`
		Sub   string `json:"sub"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return bad("Invalid JWT header.")
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return bad("Invalid JWT claim set.")
	}
	if header.Alg != "RS256" || (header.Typ != "" && header.Typ != "JWT") {
		return bad("Invalid JWT: alg must be RS256.")
	}
	s.mu.Lock()
	acct := s.accounts[claims.Iss]
	s.mu.Unlock()
	if acct == nil {
		return bad("Invalid grant: account not found")
	}
	if header.Kid != "" && header.Kid != acct.keyID {
		return bad("Invalid JWT Signature.")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return bad("Invalid JWT Signature.")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(acct.key, crypto.SHA256, sum[:], sig) != nil {
		return bad("Invalid JWT Signature.")
	}
	if claims.Aud != s.TokenURI() {
		return bad("Invalid JWT: Failed audience check. The right audience is " + s.TokenURI())
	}
	now := s.now().Unix()
	if claims.Iat == 0 || claims.Exp == 0 || claims.Exp <= claims.Iat || claims.Exp-claims.Iat > 3600 ||
		claims.Iat > now+300 || claims.Exp < now {
		return bad("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
	}
	ok := false
	for _, sc := range strings.Fields(claims.Scope) {
		if sc == ScopeMessaging || sc == ScopeCloudPlatform {
			ok = true
		}
	}
	if !ok {
		return "", http.StatusBadRequest, "invalid_scope", "Invalid OAuth scope or ID token audience provided."
	}
	if claims.Sub != "" && claims.Sub != claims.Iss {
		return "", http.StatusUnauthorized, "unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."
	}
	return claims.Iss, 0, "", ""
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// handleSend implements projects.messages.send.
func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	rec := Request{Project: project, Proto: r.Proto, Header: r.Header.Clone(), Body: body}
	if err == nil {
		var top map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if dec.Decode(&top) == nil {
			rec.Message, _ = top["message"].(map[string]any)
		}
	}
	a := s.answerSend(r, project, body, err, &rec)
	if a.status == 0 {
		// Hung or given up: abort, since a handler that returns answers 200.
		panic(http.ErrAbortHandler)
	}
	s.mu.Lock()
	rec.Status = a.status
	if a.status == http.StatusOK && !a.validateOnly {
		s.received++
		rec.Name = a.name
	}
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if a.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((a.retryAfter+time.Second-1)/time.Second)))
	}
	if a.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
	}
	w.WriteHeader(a.status)
	if a.status == http.StatusOK {
		_ = json.NewEncoder(w).Encode(map[string]string{"name": a.name})
		return
	}
	_ = json.NewEncoder(w).Encode(a.err)
}

type sendAnswer struct {
	status       int
	name         string
	validateOnly bool
	retryAfter   time.Duration
	err          statusBody
}

// answerSend decides the answer, in Google's order: authentication, the
// project, then the body; injected faults come after authentication.
func (s *Server) answerSend(r *http.Request, project string, body []byte, readErr error, rec *Request) sendAnswer {
	s.mu.Lock()
	latency, hang := s.latency, s.hang
	s.mu.Unlock()
	if hang {
		s.mu.Lock()
		s.requests = append(s.requests, *rec)
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
		return sendAnswer{}
	}
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return sendAnswer{}
		case <-s.stop:
			return sendAnswer{}
		}
	}

	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	s.mu.Lock()
	iss := s.tokens[tok]
	s.mu.Unlock()
	if !ok || iss == nil || iss.revoked || !s.now().Before(iss.expires) {
		return errorAnswer(http.StatusUnauthorized, "UNAUTHENTICATED", "", 0,
			"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")
	}
	if project != iss.project {
		return errorAnswer(http.StatusForbidden, "PERMISSION_DENIED", "", 0,
			fmt.Sprintf("Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/%s' (or it may not exist).", project))
	}

	s.mu.Lock()
	var f *failure
	if len(s.failures) > 0 {
		f = &s.failures[0]
		s.failures = s.failures[1:]
	}
	s.mu.Unlock()
	if f != nil {
		return injected(*f)
	}

	if readErr != nil {
		return invalidArgument("Request payload size exceeds the limit: 1048576 bytes.", "")
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return invalidArgument("Invalid JSON payload received. Content-Type must be application/json.", "")
	}
	req, perr := s.schema.validateRequest(body)
	if perr != nil {
		return invalidArgument(perr.msg, perr.field)
	}
	if req.token != "" {
		s.mu.Lock()
		gone := s.gone[req.token]
		s.mu.Unlock()
		if gone {
			return errorAnswer(http.StatusNotFound, "NOT_FOUND", "UNREGISTERED", 0, "Requested entity was not found.")
		}
		if !validToken(req.token) {
			return invalidArgument("The registration token is not a valid FCM registration token", "message.token")
		}
	}
	s.mu.Lock()
	s.seq++
	name := fmt.Sprintf("projects/%s/messages/0:%d%%%08x%08x", project, s.now().UnixMicro(), s.seq, s.seq*2654435761%(1<<32))
	s.mu.Unlock()
	if req.validateOnly {
		name = fmt.Sprintf("projects/%s/messages/fake_message_id", project)
	}
	return sendAnswer{status: http.StatusOK, name: name, validateOnly: req.validateOnly}
}

// validToken is the fake's idea of a registration token's shape: real ones
// are about 150 to 200 characters of base64url and ':'.
func validToken(t string) bool {
	if len(t) < 32 || len(t) > 4096 {
		return false
	}
	for _, c := range t {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}

// statusBody is the google.rpc.Status envelope.
type statusBody struct {
	Error struct {
		Code    int              `json:"code"`
		Message string           `json:"message"`
		Status  string           `json:"status"`
		Details []map[string]any `json:"details,omitempty"`
	} `json:"error"`
}

// isFcmErrorCode reports whether code is an FcmError code, sent as a details entry.
func isFcmErrorCode(code string) bool {
	switch code {
	case "UNSPECIFIED_ERROR", "INVALID_ARGUMENT", "UNREGISTERED", "SENDER_ID_MISMATCH",
		"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL", "THIRD_PARTY_AUTH_ERROR":
		return true
	}
	return false
}

// canonical maps an HTTP status to the canonical gRPC code Google puts in
// error.status.
func canonical(status int) string {
	switch status {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 409:
		return "ABORTED"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 501:
		return "UNIMPLEMENTED"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	if status >= 500 {
		return "INTERNAL"
	}
	return "FAILED_PRECONDITION"
}

// messages are Google's texts for each code.
func defaultMessage(code string) string {
	switch code {
	case "UNREGISTERED":
		return "Requested entity was not found."
	case "SENDER_ID_MISMATCH":
		return "SenderId mismatch"
	case "QUOTA_EXCEEDED":
		return "Quota exceeded for quota metric 'Messages' and limit 'Messages per minute'."
	case "UNAVAILABLE":
		return "The service is currently unavailable."
	case "INTERNAL":
		return "Internal error encountered."
	case "THIRD_PARTY_AUTH_ERROR":
		return "Auth error from APNS or Web Push Service"
	case "INVALID_ARGUMENT":
		return "Request contains an invalid argument."
	case "UNAUTHENTICATED":
		return "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
	case "PERMISSION_DENIED":
		return "The caller does not have permission"
	}
	return "Unknown error."
}

func injected(f failure) sendAnswer {
	fcmCode, status := "", canonical(f.status)
	if isFcmErrorCode(f.code) {
		fcmCode = f.code
	} else if f.code != "" {
		status = f.code
	}
	return errorAnswer(f.status, status, fcmCode, f.retryAfter, defaultMessage(f.code))
}

func invalidArgument(msg, field string) sendAnswer {
	a := errorAnswer(http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", 0, msg)
	if field != "" {
		a.err.Error.Details = append(a.err.Error.Details, map[string]any{
			"@type":           "type.googleapis.com/google.rpc.BadRequest",
			"fieldViolations": []map[string]string{{"field": field, "description": msg}},
		})
	}
	return a
}

func errorAnswer(httpStatus int, status, fcmCode string, retryAfter time.Duration, msg string) sendAnswer {
	a := sendAnswer{status: httpStatus, retryAfter: retryAfter}
	a.err.Error.Code = httpStatus
	a.err.Error.Status = status
	a.err.Error.Message = msg
	if fcmCode != "" {
		a.err.Error.Details = []map[string]any{{
			"@type":     "type.googleapis.com/google.firebase.fcm.v1.FcmError",
			"errorCode": fcmCode,
		}}
	}
	return a
}
