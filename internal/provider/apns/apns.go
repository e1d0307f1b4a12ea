// Package apns delivers push notifications to Apple devices through the
// APNs HTTP/2 provider API with token-based (JWT) authentication.
package apns

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/heraldhq/herald"
	providersettings "github.com/heraldhq/herald/internal/provider/internal/settings"
	"github.com/heraldhq/herald/internal/provider/internal/wire"
)

// Kind is the provider kind this package implements.
const Kind = "apns"

// DefaultEndpoint is Apple's production host; the sandbox is
// https://api.sandbox.push.apple.com.
const DefaultEndpoint = "https://api.push.apple.com"

// MaxPayload is the largest payload APNs accepts for a regular (non-VoIP)
// notification.
const MaxPayload = 4096

// TokenLifetime is how long one provider token is reused. Apple rejects a
// token older than an hour and answers 429 TooManyProviderTokenUpdates to a
// token renewed more often than every 20 minutes.
const TokenLifetime = 40 * time.Minute

// Expiration is how long APNs stores a notification it cannot deliver at
// once (apns-expiration); a push older than a day is rarely still useful.
const Expiration = 24 * time.Hour

const (
	// defaultTimeout bounds a send when env.HTTPClient sets no timeout.
	defaultTimeout = 30 * time.Second
	// maxCollapseID is Apple's limit on apns-collapse-id, in bytes.
	maxCollapseID = 64
	// maxErrorBody bounds how much of an error answer is read.
	maxErrorBody = 64 << 10
)

// settings is the JSON of a provider entry's settings.
type settings struct {
	TeamID     string `json:"team_id"`
	KeyID      string `json:"key_id"`
	PrivateKey string `json:"private_key"`
	Topic      string `json:"topic"`
	Endpoint   string `json:"endpoint"`
	CAPEM      string `json:"ca_pem"`
}

// Provider sends push notifications to APNs with one team, key and topic.
// It is safe for concurrent use: every Send shares one HTTP/2 connection,
// multiplexed, and one provider token.
type Provider struct {
	teamID   string
	keyID    string
	key      *ecdsa.PrivateKey
	topic    string
	endpoint string // scheme and host, no trailing slash
	client   *http.Client
	logger   *slog.Logger
	now      func() time.Time

	mu       sync.Mutex
	token    string
	tokenIat time.Time
}

var _ herald.Provider = (*Provider)(nil)

// New validates settings and returns a Provider. Invalid settings return a
// *herald.Error with CodeInvalid whose Fields name them as "settings.<name>";
// the caller prefixes the entry's position in the list. Error messages never
// quote the private key.
func New(raw json.RawMessage, env herald.ProviderEnv) (*Provider, error) {
	s, err := decode(raw)
	if err != nil {
		return nil, err
	}
	var v herald.Validation
	p := &Provider{teamID: s.TeamID, keyID: s.KeyID, topic: s.Topic, logger: env.Logger, now: env.Now}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}

	checkID := func(field, value string) {
		switch {
		case value == "":
			v.Add(field, "is required")
		case !isAppleID(value):
			v.Add(field, "must be Apple's 10-character identifier (letters and digits)")
		}
	}
	checkID("settings.team_id", s.TeamID)
	checkID("settings.key_id", s.KeyID)

	if s.PrivateKey == "" {
		v.Add("settings.private_key", "is required")
	} else if key, msg := parseKey(s.PrivateKey); msg != "" {
		v.Add("settings.private_key", "%s", msg)
	} else {
		p.key = key
	}

	if s.Topic == "" {
		v.Add("settings.topic", "is required")
	} else if strings.ContainsAny(s.Topic, " \t\r\n/") {
		v.Add("settings.topic", "must be the app's bundle id")
	}

	endpoint := s.Endpoint
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	if u, err := url.Parse(endpoint); err != nil || u.Scheme != "https" || u.Host == "" ||
		strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		v.Add("settings.endpoint", "must be an https URL without a path, such as %q", DefaultEndpoint)
	} else {
		p.endpoint = "https://" + u.Host
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
	p.client = newClient(env.HTTPClient, roots)
	return p, nil
}

// newClient builds the HTTP/2 client: base's timeout and transport
// settings, with a transport of its own so that the extra roots and the
// long-lived APNs connection are not shared with other providers.
func newClient(base *http.Client, roots *x509.CertPool) *http.Client {
	var tr *http.Transport
	client := &http.Client{Timeout: defaultTimeout}
	if base != nil {
		client.Timeout = base.Timeout
		if t, ok := base.Transport.(*http.Transport); ok && t != nil {
			tr = t.Clone()
		}
	}
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if tr.TLSClientConfig != nil {
		tlsConf = tr.TLSClientConfig.Clone()
		if tlsConf.MinVersion < tls.VersionTLS12 {
			tlsConf.MinVersion = tls.VersionTLS12
		}
	}
	tlsConf.RootCAs = roots
	tr.TLSClientConfig = tlsConf
	tr.ForceAttemptHTTP2 = true
	// For HTTP/2 this caps connections being dialed, not those open: sends
	// that start together wait for the first connection and share it, where
	// each would otherwise dial one, only for all but one to be dropped.
	tr.MaxConnsPerHost = 1
	// APNs speaks HTTP/2 only: offer nothing else in ALPN.
	var protos http.Protocols
	protos.SetHTTP2(true)
	tr.Protocols = &protos
	// Pings find a dead connection before a send waits on it for its whole timeout.
	h2 := http.HTTP2Config{SendPingTimeout: 60 * time.Second, PingTimeout: 15 * time.Second}
	if tr.HTTP2 != nil {
		h2 = *tr.HTTP2
	}
	tr.HTTP2 = &h2
	client.Transport = tr
	return client
}

// isAppleID reports whether s looks like a Team ID or Key ID.
func isAppleID(s string) bool {
	if len(s) != 10 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// parseKey reads a .p8 key: PKCS #8 PEM holding a P-256 ECDSA key. The
// second result says what is wrong, without quoting the key.
func parseKey(p8 string) (*ecdsa.PrivateKey, string) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(p8)))
	if block == nil {
		return nil, "must be the .p8 key: PKCS #8 in PEM"
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Sprintf("must be a PKCS #8 PRIVATE KEY PEM block, not %q", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, "is not a valid PKCS #8 key"
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, "must be an ECDSA P-256 key (ES256)"
	}
	return ec, ""
}

// decode parses settings strictly: an unknown or mistyped field is named
// in the error rather than silently ignored.
func decode(raw json.RawMessage) (settings, error) {
	var s settings
	err := providersettings.Decode(raw, &s, Kind)
	return s, err
}

// Kind returns "apns".
func (p *Provider) Kind() string { return Kind }

// Close releases the provider's idle connections. Send may still be
// called afterwards; it dials again.
func (p *Provider) Close() error {
	p.client.CloseIdleConnections()
	return nil
}

// Send pushes m to the device token m.To and classifies APNs' answer. It
// returns once ctx is done, without waiting for the answer.
func (p *Provider) Send(ctx context.Context, m herald.Message) herald.Outcome {
	if err := ctx.Err(); err != nil {
		return retry("apns: "+err.Error(), 0)
	}
	req, bad := p.build(m)
	if bad != nil {
		return *bad
	}
	token, err := p.providerToken("")
	if err != nil {
		return herald.Outcome{Kind: herald.OutcomeConfigError, Detail: "apns: sign provider token: " + err.Error()}
	}
	out := p.post(ctx, req, token)
	if out.reason == "ExpiredProviderToken" {
		// APNs judged the token stale (clock skew, or a long pause): mint a
		// new one, unless a concurrent send already did, and try once more.
		if token, err = p.providerToken(token); err != nil {
			return herald.Outcome{Kind: herald.OutcomeConfigError, Detail: "apns: sign provider token: " + err.Error()}
		}
		out = p.post(ctx, req, token)
		if out.reason == "ExpiredProviderToken" {
			out.Kind = herald.OutcomeConfigError
			out.Detail += " (after a fresh token: check this host's clock)"
		}
	}
	if out.Kind != herald.OutcomeSent {
		p.logger.DebugContext(ctx, "apns send failed",
			"delivery_id", m.DeliveryID, "outcome", out.Kind.String(), "detail", out.Detail)
	}
	return out.Outcome
}

// request is a built notification, ready to post (again).
type request struct {
	path    string
	header  http.Header
	payload []byte
}

// aps is the Apple-defined part of the payload.
type aps struct {
	Alert            *alert `json:"alert,omitempty"`
	Sound            string `json:"sound,omitempty"`
	ContentAvailable int    `json:"content-available,omitempty"`
}

type alert struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

// build shapes m for APNs, or returns the outcome that ends the send when
// m can never be sent as it is.
func (p *Provider) build(m herald.Message) (*request, *herald.Outcome) {
	permanent := func(format string, args ...any) (*request, *herald.Outcome) {
		return nil, &herald.Outcome{Kind: herald.OutcomePermanent, Detail: "apns: " + fmt.Sprintf(format, args...)}
	}
	if m.Platform != "" && m.Platform != herald.PlatformIOS {
		return permanent("platform %q is not served by apns", m.Platform)
	}
	if m.DeliveryID == "" {
		return permanent("message has no delivery id")
	}
	if !isDeviceToken(m.To) {
		return nil, &herald.Outcome{Kind: herald.OutcomeInvalidRecipient,
			Detail: fmt.Sprintf("apns: device token %q is not hexadecimal", truncate(m.To, 80))}
	}

	body := make(map[string]any, len(m.Content.Data)+2)
	for k, v := range m.Content.Data {
		if k == "aps" {
			return permanent("data key %q is reserved by Apple", k)
		}
		body[k] = v
	}
	if m.Content.URL != "" {
		body["url"] = m.Content.URL
	}
	pushType, priority := "alert", "10"
	if m.Content.Title != "" || m.Content.Body != "" {
		body["aps"] = aps{Alert: &alert{Title: m.Content.Title, Body: m.Content.Body}, Sound: "default"}
		if m.Priority != herald.PriorityHigh {
			priority = "5"
		}
	} else {
		// Data only: a silent push that wakes the app, which Apple requires at priority 5.
		pushType, priority = "background", "5"
		body["aps"] = aps{ContentAvailable: 1}
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return permanent("encode payload: %v", err)
	}
	if len(payload) > MaxPayload {
		return permanent("payload is %d bytes, over the %d-byte limit", len(payload), MaxPayload)
	}

	h := make(http.Header, 8)
	h.Set("Content-Type", "application/json")
	h.Set("apns-topic", p.topic)
	h.Set("apns-push-type", pushType)
	h.Set("apns-priority", priority)
	h.Set("apns-expiration", strconv.FormatInt(p.now().Add(Expiration).Unix(), 10))
	h.Set("apns-collapse-id", collapseID(m.DeliveryID))
	if id, err := uuid.Parse(m.DeliveryID); err == nil {
		// A repeated attempt carries the same apns-id, which traces it in Apple's logs.
		h.Set("apns-id", id.String())
	}
	return &request{path: "/3/device/" + m.To, header: h, payload: payload}, nil
}

// collapseID is the delivery id, which makes a repeated attempt of one
// delivery replace rather than duplicate the first on the device; an id
// over Apple's 64 bytes is replaced by its SHA-256 in hex (64 characters).
func collapseID(deliveryID string) string {
	if len(deliveryID) <= maxCollapseID {
		return deliveryID
	}
	sum := sha256.Sum256([]byte(deliveryID))
	return hex.EncodeToString(sum[:])
}

// isDeviceToken reports whether s is a plausible APNs device token: an even
// number of hex digits (32 bytes today; Apple says not to rely on the length).
func isDeviceToken(s string) bool {
	if s == "" || len(s)%2 != 0 || len(s) > 400 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// providerToken returns the cached provider token, minting a new one when it
// has reached TokenLifetime or when it is stale, the token APNs rejected as
// expired. Comparing with stale keeps concurrent sends that saw the same
// rejection from renewing the token once each, which APNs would punish with
// 429 TooManyProviderTokenUpdates.
func (p *Provider) providerToken(stale string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	age := now.Sub(p.tokenIat)
	if p.token != "" && p.token != stale && age >= 0 && age < TokenLifetime {
		return p.token, nil
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": p.teamID, "iat": now.Unix()})
	t.Header["kid"] = p.keyID
	signed, err := t.SignedString(p.key)
	if err != nil {
		return "", err
	}
	p.token, p.tokenIat = signed, now
	return signed, nil
}

// result is an outcome with the APNs reason, which Send inspects.
type result struct {
	herald.Outcome
	reason string
}

// post sends req once with token and classifies the answer.
func (p *Provider) post(ctx context.Context, req *request, token string) result {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint+req.path, bytes.NewReader(req.payload))
	if err != nil {
		return result{Outcome: herald.Outcome{Kind: herald.OutcomePermanent, Detail: "apns: request: " + err.Error()}}
	}
	hr.Header = req.header.Clone()
	hr.Header.Set("Authorization", "bearer "+token)
	resp, err := p.client.Do(hr)
	if err != nil {
		return result{Outcome: classifyErr(ctx, err)}
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return result{Outcome: herald.Outcome{Kind: herald.OutcomeSent, ProviderMessageID: resp.Header.Get("apns-id")}}
	}
	var e struct {
		Reason    string `json:"reason"`
		Timestamp int64  `json:"timestamp"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = json.Unmarshal(raw, &e)
	out := classify(resp.StatusCode, e.Reason)
	out.Detail = fmt.Sprintf("apns: %d %s", resp.StatusCode, e.Reason)
	if e.Reason == "" {
		out.Detail = fmt.Sprintf("apns: %d %s", resp.StatusCode, truncate(strings.TrimSpace(string(raw)), 200))
	}
	if e.Timestamp > 0 {
		out.Detail += " (token invalid since " + time.UnixMilli(e.Timestamp).UTC().Format(time.RFC3339) + ")"
	}
	if out.Kind == herald.OutcomeRetry {
		out.RetryAfter = wire.RetryAfter(resp.Header.Get("Retry-After"), p.now())
	}
	return result{Outcome: out, reason: e.Reason}
}

// classify maps an APNs status and reason to an outcome kind, following
// Apple's table (PROVIDERS.md §0 and §1.6).
func classify(status int, reason string) herald.Outcome {
	kind := herald.OutcomePermanent
	switch status {
	case http.StatusBadRequest:
		switch reason {
		case "BadDeviceToken", "DeviceTokenNotForTopic":
			kind = herald.OutcomeInvalidRecipient
		case "BadTopic", "TopicDisallowed", "MissingTopic":
			kind = herald.OutcomeConfigError
		case "IdleTimeout":
			kind = herald.OutcomeRetry
		}
	case http.StatusForbidden:
		// Every 403 is about credentials; ExpiredProviderToken is retried by Send first.
		kind = herald.OutcomeConfigError
	case http.StatusGone:
		kind = herald.OutcomeInvalidRecipient
	case http.StatusTooManyRequests:
		kind = herald.OutcomeRetry
		if reason == "TooManyProviderTokenUpdates" {
			kind = herald.OutcomeConfigError
		}
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		kind = herald.OutcomeRetry
	}
	return herald.Outcome{Kind: kind}
}

// classifyErr maps a transport error to an outcome. Certificate errors
// mean ca_pem or the endpoint is wrong; anything else (refused, reset,
// timeout, our own cancellation) is worth retrying.
func classifyErr(ctx context.Context, err error) herald.Outcome {
	var (
		verr *tls.CertificateVerificationError
		herr x509.HostnameError
		uerr x509.UnknownAuthorityError
	)
	if ctx.Err() == nil && (errors.As(err, &verr) || errors.As(err, &herr) || errors.As(err, &uerr)) {
		return herald.Outcome{Kind: herald.OutcomeConfigError, Detail: "apns: " + err.Error()}
	}
	return retry("apns: "+err.Error(), 0)
}

func retry(detail string, after time.Duration) herald.Outcome {
	return herald.Outcome{Kind: herald.OutcomeRetry, Detail: detail, RetryAfter: after}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
