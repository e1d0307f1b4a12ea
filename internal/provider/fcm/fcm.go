// Package fcm delivers push notifications to Android (and, when configured,
// iOS) devices through the Firebase Cloud Messaging HTTP v1 API, with an
// OAuth 2 access token obtained from a service-account key by the two-legged
// JWT-bearer grant. It speaks HTTP directly; the Firebase Admin SDK is not used.
package fcm

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"github.com/heraldhq/herald"
	providersettings "github.com/heraldhq/herald/internal/provider/internal/settings"
	"github.com/heraldhq/herald/internal/provider/internal/wire"
)

// Kind is the provider kind this package implements.
const Kind = "fcm"

// DefaultEndpoint is the FCM root URL used when settings give none.
const DefaultEndpoint = "https://fcm.googleapis.com"

// Scope is the OAuth 2 scope the access token is requested for.
const Scope = "https://www.googleapis.com/auth/firebase.messaging"

// defaultTokenURI is Google's token endpoint, for a key file without token_uri.
const defaultTokenURI = "https://oauth2.googleapis.com/token"

// maxTTL is FCM's maximum (and default) time to live: 4 weeks.
const maxTTL = 28 * 24 * time.Hour

// defaultTimeout bounds a send whose context has no deadline and whose
// HTTP client has no timeout, so a silent server cannot hold a worker forever.
const defaultTimeout = time.Minute

// maxResponse caps how much of a response body is read.
const maxResponse = 64 << 10

// maxCollapseID is APNs's limit on apns-collapse-id, in bytes.
const maxCollapseID = 64

// settings is the JSON of a provider entry's settings.
type settings struct {
	ProjectID      string          `json:"project_id"`
	ServiceAccount json.RawMessage `json:"service_account"`
	Platforms      []string        `json:"platforms"`
	Endpoint       string          `json:"endpoint"`
	CAPEM          string          `json:"ca_pem"`
	// TTL, a Go duration ("1h"), is how long FCM keeps an undelivered
	// message; empty leaves FCM's default of 4 weeks.
	TTL string `json:"ttl"`
}

// serviceAccount is the part of a Google service-account key file we use.
type serviceAccount struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
}

// Provider sends push notifications through FCM HTTP v1 with one
// configuration. It is safe for concurrent use; all sends share one cached
// OAuth access token.
type Provider struct {
	sendURL   string
	platforms []herald.Platform
	ttl       time.Duration
	client    *http.Client
	jwt       *jwt.Config
	tokenCtx  context.Context // carries client for the token requests
	logger    *slog.Logger
	now       func() time.Time

	// tokens is the current cached token source. An UNAUTHENTICATED answer
	// replaces it (compare-and-swap, so concurrent 401s refresh only once).
	tokens atomic.Pointer[tokenCache]
}

// tokenCache is one generation of the cached OAuth token.
type tokenCache struct {
	src  oauth2.TokenSource // an oauth2.ReuseTokenSource
	last atomic.Pointer[oauth2.Token]
}

var _ herald.Provider = (*Provider)(nil)

// New validates settings and returns a Provider. Invalid settings return a
// *herald.Error with CodeInvalid whose Fields name them as "settings.<name>";
// the caller prefixes the entry's position in the list. No request is made:
// the first access token is fetched by the first Send.
func New(raw json.RawMessage, env herald.ProviderEnv) (*Provider, error) {
	s, err := decode(raw)
	if err != nil {
		return nil, err
	}
	var v herald.Validation
	p := &Provider{logger: env.Logger, now: env.Now}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}

	switch {
	case s.ProjectID == "":
		v.Add("settings.project_id", "is required")
	case strings.ContainsAny(s.ProjectID, "/?#% \t\r\n"):
		v.Add("settings.project_id", "must be a Firebase project id or number")
	}

	sa, msg := parseServiceAccount(s.ServiceAccount)
	if msg != "" {
		v.Add("settings.service_account", "%s", msg)
	}

	p.platforms = []herald.Platform{herald.PlatformAndroid}
	if s.Platforms != nil {
		p.platforms = nil
		if len(s.Platforms) == 0 {
			v.Add("settings.platforms", "must list at least one platform")
		}
		for i, name := range s.Platforms {
			pl := herald.Platform(name)
			switch {
			case pl != herald.PlatformAndroid && pl != herald.PlatformIOS:
				v.Add(fmt.Sprintf("settings.platforms[%d]", i), "must be %q or %q", herald.PlatformAndroid, herald.PlatformIOS)
			case slices.Contains(p.platforms, pl):
				v.Add(fmt.Sprintf("settings.platforms[%d]", i), "repeats %q", name)
			default:
				p.platforms = append(p.platforms, pl)
			}
		}
	}

	endpoint := DefaultEndpoint
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			v.Add("settings.endpoint", "must be an https base URL such as %q", DefaultEndpoint)
		} else {
			endpoint = strings.TrimRight(s.Endpoint, "/")
		}
	}

	if s.TTL != "" {
		d, err := time.ParseDuration(s.TTL)
		if err != nil || d < 0 || d > maxTTL {
			v.Add("settings.ttl", "must be a duration from 0s to %v", maxTTL)
		}
		p.ttl = d
	}

	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if s.CAPEM != "" && !roots.AppendCertsFromPEM([]byte(s.CAPEM)) {
		v.Add("settings.ca_pem", "holds no PEM certificate")
	}

	if err := v.Err(); err != nil {
		return nil, err
	}

	p.sendURL = endpoint + "/v1/projects/" + url.PathEscape(s.ProjectID) + "/messages:send"
	p.client = httpClient(env.HTTPClient, roots, s.CAPEM != "")
	p.jwt = &jwt.Config{
		Email:        sa.ClientEmail,
		PrivateKey:   []byte(sa.PrivateKey),
		PrivateKeyID: sa.PrivateKeyID,
		Scopes:       []string{Scope},
		TokenURL:     sa.TokenURI,
	}
	// The token source keeps this context for its requests: it only carries
	// our client (and so our transport and ca_pem), never a deadline.
	p.tokenCtx = context.WithValue(context.Background(), oauth2.HTTPClient, p.client)
	p.tokens.Store(p.newTokenCache())
	return p, nil
}

// httpClient returns the client for both FCM and the token endpoint: the
// base client's settings with a transport that trusts roots when ca_pem added one.
func httpClient(base *http.Client, roots *x509.CertPool, extraCA bool) *http.Client {
	c := &http.Client{Timeout: defaultTimeout}
	if base != nil {
		c = new(http.Client)
		*c = *base
		if c.Timeout == 0 {
			c.Timeout = defaultTimeout
		}
	}
	if !extraCA {
		return c
	}
	var t *http.Transport
	if bt, ok := c.Transport.(*http.Transport); ok {
		t = bt.Clone()
	} else {
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t.TLSClientConfig.RootCAs = roots
	t.ForceAttemptHTTP2 = true
	c.Transport = t
	return c
}

// parseServiceAccount reads the key file's JSON, given as a JSON string or
// as an object. The message it returns on failure never quotes the key.
func parseServiceAccount(raw json.RawMessage) (serviceAccount, string) {
	var sa serviceAccount
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return sa, "is required"
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return sa, "must be the service account key file's JSON, as a string or an object"
		}
		raw = bytes.TrimSpace([]byte(s))
	}
	if len(raw) == 0 || raw[0] != '{' {
		return sa, "must be the service account key file's JSON, as a string or an object"
	}
	if err := json.Unmarshal(raw, &sa); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return sa, fmt.Sprintf("%s must be a %s", typeErr.Field, typeErr.Type)
		}
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) {
			return sa, fmt.Sprintf("is not valid JSON (at byte %d)", syntaxErr.Offset)
		}
		return sa, "is not valid JSON"
	}
	switch {
	case sa.Type != "" && sa.Type != "service_account":
		return sa, fmt.Sprintf("type is %q, want \"service_account\"", sa.Type)
	case sa.ClientEmail == "":
		return sa, "client_email is required"
	case sa.PrivateKey == "":
		return sa, "private_key is required"
	}
	if _, err := parseRSAKey(sa.PrivateKey); err != nil {
		return sa, "private_key " + err.Error()
	}
	if sa.TokenURI == "" {
		sa.TokenURI = defaultTokenURI
	}
	if u, err := url.Parse(sa.TokenURI); err != nil || u.Scheme != "https" || u.Host == "" {
		return sa, "token_uri must be an https URL"
	}
	return sa, ""
}

// parseRSAKey parses the key as the token source will, so a bad key fails
// here rather than on the first send.
func parseRSAKey(pemKey string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(pemKey))
	if block == nil {
		return nil, errors.New("must be a PEM private key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("must be a PKCS #8 or PKCS #1 private key")
	}
	k, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("must be an RSA private key")
	}
	return k, nil
}

// decode parses settings strictly: an unknown or mistyped field is named
// in the error rather than silently ignored.
func decode(raw json.RawMessage) (settings, error) {
	var s settings
	err := providersettings.Decode(raw, &s, Kind)
	return s, err
}

// Kind returns "fcm".
func (p *Provider) Kind() string { return Kind }

// Platforms returns the device platforms this configuration serves:
// ["android"] unless settings.platforms says otherwise. The caller owns the slice.
func (p *Provider) Platforms() []herald.Platform { return slices.Clone(p.platforms) }

func (p *Provider) newTokenCache() *tokenCache {
	return &tokenCache{src: p.jwt.TokenSource(p.tokenCtx)}
}

// token returns a valid access token of c, fetching one when the cached one
// has expired. A fetch is not bound to ctx (other sends may wait for it),
// so a canceled ctx returns at once and leaves the fetch to finish alone,
// bounded by the client's timeout.
func (c *tokenCache) token(ctx context.Context) (*oauth2.Token, error) {
	if t := c.last.Load(); t.Valid() {
		return t, nil
	}
	type result struct {
		t   *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	go func() {
		t, err := c.src.Token()
		if err == nil {
			c.last.Store(t)
		}
		done <- result{t, err}
	}()
	select {
	case r := <-done:
		return r.t, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Send delivers m to the device token m.To and classifies FCM's answer.
// An UNAUTHENTICATED answer refreshes the access token and retries once.
func (p *Provider) Send(ctx context.Context, m herald.Message) herald.Outcome {
	if err := ctx.Err(); err != nil {
		return herald.Outcome{Kind: herald.OutcomeRetry, Detail: "fcm: " + err.Error()}
	}
	body, out := p.build(m)
	if out != nil {
		return *out
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}

	var res herald.Outcome
	for attempt := 0; ; attempt++ {
		tc := p.tokens.Load()
		var refresh bool
		res, refresh = p.post(ctx, tc, body)
		if !refresh {
			break
		}
		if attempt > 0 {
			// A freshly issued token was refused: the credentials are wrong.
			res.Kind = herald.OutcomeConfigError
			break
		}
		// Replace the cache that gave the refused token; if another send
		// already did, its new cache is used as it is.
		p.tokens.CompareAndSwap(tc, p.newTokenCache())
	}
	if res.Kind != herald.OutcomeSent {
		p.logger.DebugContext(ctx, "fcm send failed",
			"delivery_id", m.DeliveryID, "outcome", res.Kind.String(), "detail", res.Detail)
	}
	return res
}

// post makes one messages:send call with a token of tc. refresh reports a
// 401 UNAUTHENTICATED answer: the token was refused.
func (p *Provider) post(ctx context.Context, tc *tokenCache, body []byte) (out herald.Outcome, refresh bool) {
	tok, err := tc.token(ctx)
	if err != nil {
		return tokenError(ctx, err), false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.sendURL, bytes.NewReader(body))
	if err != nil {
		return herald.Outcome{Kind: herald.OutcomeConfigError, Detail: "fcm: request: " + err.Error()}, false
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := p.client.Do(req)
	if err != nil {
		return networkError(ctx, err), false
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil && resp.StatusCode == http.StatusOK {
		// The message was accepted; only its name is missing. Retrying could send it twice.
		return herald.Outcome{Kind: herald.OutcomeSent, Detail: "fcm: reading the answer: " + err.Error()}, false
	}
	return classify(resp.StatusCode, resp.Header, data)
}

// message is FCM's v1 Message, as much of it as Herald fills. Field names
// follow the REST reference (snake_case), which Google's JSON mapping accepts.
type message struct {
	Token        string            `json:"token"`
	Notification *notification     `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      androidConfig     `json:"android"`
	APNS         apnsConfig        `json:"apns"`
	Webpush      *webpushConfig    `json:"webpush,omitempty"`
}

type notification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

type androidConfig struct {
	Priority    string `json:"priority"`
	CollapseKey string `json:"collapse_key"`
	TTL         string `json:"ttl,omitempty"`
}

type apnsConfig struct {
	Headers map[string]string `json:"headers"`
	Payload map[string]any    `json:"payload,omitempty"`
}

type webpushConfig struct {
	FCMOptions struct {
		Link string `json:"link"`
	} `json:"fcm_options"`
}

// build encodes the request body for m, or returns the outcome that ends the
// send when m can never be sent as it is.
func (p *Provider) build(m herald.Message) ([]byte, *herald.Outcome) {
	permanent := func(format string, args ...any) ([]byte, *herald.Outcome) {
		return nil, &herald.Outcome{Kind: herald.OutcomePermanent, Detail: "fcm: " + fmt.Sprintf(format, args...)}
	}
	if m.DeliveryID == "" {
		return permanent("message has no delivery id")
	}
	if strings.TrimSpace(m.To) == "" {
		return nil, &herald.Outcome{Kind: herald.OutcomeInvalidRecipient, Detail: "fcm: the device has no registration token"}
	}
	for k := range m.Content.Data {
		lk := strings.ToLower(k)
		if lk == "from" || lk == "message_type" || strings.HasPrefix(lk, "google") || strings.HasPrefix(lk, "gcm") {
			return permanent("data key %q is reserved by FCM", k)
		}
	}

	msg := message{Token: m.To, Data: m.Content.Data}
	if m.Content.Title != "" || m.Content.Body != "" {
		msg.Notification = &notification{Title: m.Content.Title, Body: m.Content.Body}
	}
	// The delivery id collapses repeated attempts of one delivery on the
	// device, so a retry after a lost answer does not show twice.
	msg.Android = androidConfig{Priority: "NORMAL", CollapseKey: m.DeliveryID}
	apnsPriority := "5"
	if m.Priority == herald.PriorityHigh {
		msg.Android.Priority = "HIGH"
		apnsPriority = "10"
	}
	if p.ttl > 0 {
		msg.Android.TTL = strconv.FormatInt(int64(p.ttl/time.Second), 10) + "s"
	}
	if msg.Notification == nil {
		// APNs accepts a data-only (background) push only at priority 5
		// and only with content-available.
		apnsPriority = "5"
		msg.APNS.Payload = map[string]any{"aps": map[string]any{"content-available": 1}}
	}
	msg.APNS.Headers = map[string]string{
		"apns-collapse-id": collapseID(m.DeliveryID),
		"apns-priority":    apnsPriority,
	}
	if p.ttl > 0 {
		msg.APNS.Headers["apns-expiration"] = strconv.FormatInt(p.now().Add(p.ttl).Unix(), 10)
	}
	if strings.HasPrefix(m.Content.URL, "https://") {
		// FCM accepts only an HTTPS link for web clients.
		msg.Webpush = &webpushConfig{}
		msg.Webpush.FCMOptions.Link = m.Content.URL
	}
	body, err := json.Marshal(struct {
		Message message `json:"message"`
	}{msg})
	if err != nil {
		return permanent("encode: %v", err)
	}
	return body, nil
}

// collapseID keeps the delivery id within APNs's 64 bytes, deterministically.
func collapseID(deliveryID string) string {
	if len(deliveryID) <= maxCollapseID {
		return deliveryID
	}
	sum := sha256.Sum256([]byte(deliveryID))
	return hex.EncodeToString(sum[:16])
}

// errorBody is the google.rpc.Status envelope of an FCM error.
type errorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type            string `json:"@type"`
			ErrorCode       string `json:"errorCode"`
			FieldViolations []struct {
				Field string `json:"field"`
			} `json:"fieldViolations"`
		} `json:"details"`
	} `json:"error"`
}

// classify maps an FCM answer to an outcome per the outcome matrix
// (PROVIDERS.md §0 and §2.5). It branches on the FcmError code, which is
// sharper than the canonical status; refresh reports 401 UNAUTHENTICATED.
func classify(status int, h http.Header, data []byte) (out herald.Outcome, refresh bool) {
	if status == http.StatusOK {
		var ok struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(data, &ok)
		out = herald.Outcome{Kind: herald.OutcomeSent, ProviderMessageID: ok.Name}
		if ok.Name == "" {
			out.Detail = "fcm: accepted without a message name"
		}
		return out, false
	}

	var eb errorBody
	_ = json.Unmarshal(data, &eb)
	code, tokenField := "", false
	for _, d := range eb.Error.Details {
		if strings.HasSuffix(d.Type, "google.firebase.fcm.v1.FcmError") && d.ErrorCode != "" {
			code = d.ErrorCode
		}
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				tokenField = true
			}
		}
	}
	detail := "fcm: " + strconv.Itoa(status)
	for _, s := range []string{eb.Error.Status, code} {
		if s != "" && !strings.Contains(detail, s) {
			detail += " " + s
		}
	}
	if msg := eb.Error.Message; msg != "" {
		detail += ": " + truncate(msg, 300)
	} else if eb.Error.Status == "" && len(data) > 0 {
		detail += ": " + truncate(strings.TrimSpace(string(data)), 200)
	}
	out = herald.Outcome{Detail: detail}

	switch {
	case code == "UNREGISTERED", code == "SENDER_ID_MISMATCH":
		out.Kind = herald.OutcomeInvalidRecipient
	case status == http.StatusBadRequest && (tokenField || mentionsBadToken(eb.Error.Message)):
		out.Kind = herald.OutcomeInvalidRecipient
	case code == "THIRD_PARTY_AUTH_ERROR":
		out.Kind = herald.OutcomeConfigError
	case status == http.StatusUnauthorized:
		out.Kind = herald.OutcomeConfigError
		return out, true
	case code == "QUOTA_EXCEEDED", code == "UNAVAILABLE", code == "INTERNAL", code == "UNSPECIFIED_ERROR",
		status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		out.Kind = herald.OutcomeRetry
		out.RetryAfter = wire.RetryAfter(h.Get("Retry-After"), time.Now())
	case status == http.StatusForbidden, status == http.StatusNotFound:
		// PERMISSION_DENIED (the account lacks the role, or the project is
		// wrong) or no such project or path: the configuration is at fault.
		out.Kind = herald.OutcomeConfigError
	default:
		// INVALID_ARGUMENT about the payload, 413 and the like.
		out.Kind = herald.OutcomePermanent
	}
	return out, false
}

// mentionsBadToken reports whether an INVALID_ARGUMENT message is about the
// registration token rather than the payload.
func mentionsBadToken(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "registration token") &&
		(strings.Contains(m, "not a valid") || strings.Contains(m, "invalid"))
}

// tokenError classifies a failure to get an access token. The token
// endpoint refusing the grant (400/401/403: unknown account, bad key or
// signature) is a configuration error; anything else may pass.
func tokenError(ctx context.Context, err error) herald.Outcome {
	if cerr := ctx.Err(); cerr != nil {
		return herald.Outcome{Kind: herald.OutcomeRetry, Detail: "fcm: access token: " + cerr.Error()}
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		status := re.Response.StatusCode
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(re.Body, &body)
		detail := fmt.Sprintf("fcm: access token: %d %s", status, body.Error)
		if body.Description != "" {
			detail += ": " + truncate(body.Description, 200)
		}
		kind := herald.OutcomeRetry
		if status >= 400 && status < 500 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout {
			kind = herald.OutcomeConfigError
		}
		return herald.Outcome{Kind: kind, Detail: detail}
	}
	out := networkError(ctx, err)
	out.Detail = strings.Replace(out.Detail, "fcm: ", "fcm: access token: ", 1)
	return out
}

// networkError classifies a failed round trip: worth retrying, unless the
// server's certificate is not trusted (fix ca_pem or the endpoint).
func networkError(ctx context.Context, err error) herald.Outcome {
	if cerr := ctx.Err(); cerr != nil {
		return herald.Outcome{Kind: herald.OutcomeRetry, Detail: "fcm: " + cerr.Error()}
	}
	var (
		verr *tls.CertificateVerificationError
		herr x509.HostnameError
		uerr x509.UnknownAuthorityError
	)
	// The token source wraps with %v, so the text is the last resort.
	if errors.As(err, &verr) || errors.As(err, &herr) || errors.As(err, &uerr) ||
		strings.Contains(err.Error(), "x509: ") {
		return herald.Outcome{Kind: herald.OutcomeConfigError, Detail: "fcm: " + err.Error()}
	}
	return herald.Outcome{Kind: herald.OutcomeRetry, Detail: "fcm: " + err.Error()}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
