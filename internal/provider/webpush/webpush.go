// Package webpush delivers push messages to browsers with the Web Push
// protocol: RFC 8030 requests to each subscription's endpoint, payloads
// encrypted per RFC 8291 (aes128gcm) and signed with VAPID (RFC 8292).
package webpush

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/netguard"
	providersettings "github.com/heraldhq/herald/internal/provider/internal/settings"
	"github.com/heraldhq/herald/internal/provider/internal/wire"
)

// Kind is the provider kind this package implements.
const Kind = "webpush"

// Time-to-live the push service keeps an undelivered message (the TTL
// header, RFC 8030 §5.2). A high-priority message is usually time-bound (a
// code, an alert), so it is dropped sooner than a stale one could mislead.
const (
	TTLNormal = 24 * time.Hour
	TTLHigh   = time.Hour
)

// VAPID token lifetimes: a token says it expires after vapidExpiry (RFC
// 8292 allows at most 24 hours) and is reused for vapidReuse, so every
// token a push service sees still has hours to run.
const (
	vapidExpiry = 12 * time.Hour
	vapidReuse  = time.Hour
)

// defaultTimeout bounds a send whose client and context set no deadline.
const defaultTimeout = 30 * time.Second

// settings is the JSON of a provider entry's settings.
type settings struct {
	VAPIDPublicKey  string `json:"vapid_public_key"`
	VAPIDPrivateKey string `json:"vapid_private_key"`
	Subject         string `json:"subject"`
	CAPEM           string `json:"ca_pem"`
}

// Provider sends Web Push messages with one VAPID key pair. It is safe for
// concurrent use.
type Provider struct {
	key          *ecdsa.PrivateKey
	publicKey    string // base64url of the uncompressed point: the k of the Authorization header
	subject      string
	client       *http.Client
	allowPrivate bool
	logger       *slog.Logger
	now          func() time.Time

	mu     sync.Mutex
	tokens map[string]vapidToken // by audience
}

// vapidToken is a signed VAPID JWT and when it was made.
type vapidToken struct {
	jwt    string
	issued time.Time
}

// payload is what the service worker's push event receives, as JSON.
type payload struct {
	Title string            `json:"title,omitempty"`
	Body  string            `json:"body,omitempty"`
	URL   string            `json:"url,omitempty"`
	Icon  string            `json:"icon,omitempty"`
	Data  map[string]string `json:"data,omitempty"`
}

var _ herald.Provider = (*Provider)(nil)

// New validates settings and returns a Provider. Invalid settings return a
// *herald.Error with CodeInvalid whose Fields name them as "settings.<name>";
// the caller prefixes the entry's position in the list.
//
// Requests go out through a clone of env.HTTPClient's transport with its
// own dialer, which refuses loopback, private, link-local and metadata
// addresses after DNS resolution unless env.AllowPrivateTargets is set; no
// proxy is used, so that check sees the real target, and no redirect is
// followed.
func New(raw json.RawMessage, env herald.ProviderEnv) (*Provider, error) {
	s, err := decode(raw)
	if err != nil {
		return nil, err
	}
	var v herald.Validation
	p := &Provider{
		subject:      s.Subject,
		allowPrivate: env.AllowPrivateTargets,
		logger:       env.Logger,
		now:          env.Now,
		tokens:       map[string]vapidToken{},
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}

	var pub *ecdsa.PublicKey
	if s.VAPIDPublicKey == "" {
		v.Add("settings.vapid_public_key", "is required")
	} else if b, err := decodeB64(s.VAPIDPublicKey); err != nil || len(b) != keyLen {
		v.Add("settings.vapid_public_key", "must be the base64url of a 65-byte uncompressed P-256 point")
	} else if pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b); err != nil {
		v.Add("settings.vapid_public_key", "is not a point on P-256")
	} else {
		p.publicKey = base64.RawURLEncoding.EncodeToString(b)
	}
	if s.VAPIDPrivateKey == "" {
		v.Add("settings.vapid_private_key", "is required")
	} else if b, err := decodeB64(s.VAPIDPrivateKey); err != nil || len(b) != 32 {
		v.Add("settings.vapid_private_key", "must be the base64url of a 32-byte P-256 scalar")
	} else if p.key, err = ecdsa.ParseRawPrivateKey(elliptic.P256(), b); err != nil {
		v.Add("settings.vapid_private_key", "is not a valid P-256 private key")
	} else if pub != nil && !p.key.PublicKey.Equal(pub) {
		v.Add("settings.vapid_private_key", "does not match vapid_public_key")
	}

	if msg := checkSubject(s.Subject); msg != "" {
		v.Add("settings.subject", "%s", msg)
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
	p.client = p.newClient(env.HTTPClient, roots)
	return p, nil
}

// checkSubject returns why s is not a VAPID contact URI, or "".
func checkSubject(s string) string {
	switch {
	case s == "":
		return "is required"
	case strings.HasPrefix(s, "mailto:"):
		addr := strings.TrimPrefix(s, "mailto:")
		if at := strings.LastIndexByte(addr, '@'); at < 1 || at == len(addr)-1 || strings.ContainsAny(addr, " \r\n") {
			return "must be a mailto: URI with an email address"
		}
	case strings.HasPrefix(s, "https:"):
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return "must be an https: URL with a host"
		}
	default:
		return "must be a mailto: or https: URI"
	}
	return ""
}

// newClient builds the HTTP client: base's timeout, a clone of its
// transport (when it is an *http.Transport) with the extra roots, no
// proxy, and a dialer that checks every resolved address.
func (p *Provider) newClient(base *http.Client, roots *x509.CertPool) *http.Client {
	var tr *http.Transport
	timeout := defaultTimeout
	if base != nil {
		if t, ok := base.Transport.(*http.Transport); ok {
			tr = t.Clone()
		}
		if base.Timeout > 0 {
			timeout = base.Timeout
		}
	}
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	tr.Proxy = nil
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.RootCAs = roots
	tr.ForceAttemptHTTP2 = true
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !p.allowPrivate {
		d.ControlContext = netguard.Control
	}
	tr.DialContext = d.DialContext
	tr.DialTLSContext = nil
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// decode parses settings strictly: an unknown or mistyped field is named
// in the error rather than silently ignored.
func decode(raw json.RawMessage) (settings, error) {
	var s settings
	err := providersettings.Decode(raw, &s, Kind)
	return s, err
}

// decodeB64 decodes base64url with or without padding, the forms browsers
// and key generators hand out.
func decodeB64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// Kind returns "webpush".
func (p *Provider) Kind() string { return Kind }

// Send encrypts m's content for m.Subscription, posts it to the
// subscription's endpoint and classifies the push service's answer. The
// request ends by ctx's deadline.
func (p *Provider) Send(ctx context.Context, m herald.Message) herald.Outcome {
	if err := ctx.Err(); err != nil {
		return herald.Outcome{Kind: herald.OutcomeRetry, Detail: "webpush: " + err.Error()}
	}
	req, out := p.build(ctx, m)
	if out != nil {
		return *out
	}
	resp, err := p.client.Do(req)
	if err != nil {
		out := p.classifyErr(ctx, err)
		p.logger.DebugContext(ctx, "webpush send failed",
			"delivery_id", m.DeliveryID, "outcome", out.Kind.String(), "detail", out.Detail)
		return out
	}
	defer func() { _ = resp.Body.Close() }()
	out = p.classify(resp, m.DeliveryID)
	if out.Kind != herald.OutcomeSent {
		p.logger.DebugContext(ctx, "webpush send failed",
			"delivery_id", m.DeliveryID, "outcome", out.Kind.String(), "detail", out.Detail)
	}
	return *out
}

// build validates m and turns it into the push request, or returns the
// outcome that ends the send when m can never be sent as it is.
func (p *Provider) build(ctx context.Context, m herald.Message) (*http.Request, *herald.Outcome) {
	fail := func(kind herald.OutcomeKind, format string, args ...any) (*http.Request, *herald.Outcome) {
		return nil, &herald.Outcome{Kind: kind, Detail: "webpush: " + fmt.Sprintf(format, args...)}
	}
	if m.DeliveryID == "" {
		return fail(herald.OutcomePermanent, "message has no delivery id")
	}
	sub := m.Subscription
	if sub == nil {
		return fail(herald.OutcomeInvalidRecipient, "message has no web push subscription")
	}
	endpoint, err := url.Parse(sub.Endpoint)
	if err != nil || endpoint.Host == "" || endpoint.Hostname() == "" {
		return fail(herald.OutcomeInvalidRecipient, "subscription endpoint %q is not an absolute URL", sub.Endpoint)
	}
	switch {
	case endpoint.User != nil:
		return fail(herald.OutcomePermanent, "subscription endpoint must not carry credentials")
	case endpoint.Scheme == "https":
	case endpoint.Scheme == "http" && p.allowPrivate:
	default:
		return fail(herald.OutcomePermanent, "subscription endpoint scheme %q refused: push services are reached over https", endpoint.Scheme)
	}
	if !p.allowPrivate {
		// An IP literal is refused here with a plain message; host names are
		// checked by the dialer once resolved.
		if reason := netguard.HostReason(endpoint.Hostname()); reason != "" {
			return fail(herald.OutcomePermanent, "subscription endpoint %s is %s; private targets are not allowed", endpoint.Host, reason)
		}
	}

	uaBytes, err := decodeB64(sub.Keys.P256dh)
	if err != nil {
		return fail(herald.OutcomeInvalidRecipient, "subscription key p256dh is not base64url")
	}
	uaPublic, err := ecdh.P256().NewPublicKey(uaBytes)
	if err != nil || len(uaBytes) != keyLen {
		return fail(herald.OutcomeInvalidRecipient, "subscription key p256dh is not an uncompressed P-256 point")
	}
	auth, err := decodeB64(sub.Keys.Auth)
	if err != nil || len(auth) != authLen {
		return fail(herald.OutcomeInvalidRecipient, "subscription key auth is not 16 bytes of base64url")
	}

	plain, err := json.Marshal(payload{Title: m.Content.Title, Body: m.Content.Body, URL: m.Content.URL, Icon: m.Content.Icon, Data: m.Content.Data})
	if err != nil {
		return fail(herald.OutcomePermanent, "payload: %v", err)
	}
	if len(plain) > maxPlaintext {
		return fail(herald.OutcomePermanent, "payload is %d bytes; at most %d fit in one %d-byte record", len(plain), maxPlaintext, recordSize)
	}
	// A fresh ephemeral key and salt for every message (RFC 8291 §3.1).
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return fail(herald.OutcomeRetry, "ephemeral key: %v", err)
	}
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand)
	body, err := encrypt(plain, uaPublic, auth, as, salt)
	if err != nil {
		return fail(herald.OutcomePermanent, "encrypt: %v", err)
	}

	token, err := p.vapid(endpoint.Scheme + "://" + endpoint.Host)
	if err != nil {
		return fail(herald.OutcomeConfigError, "vapid: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return fail(herald.OutcomeInvalidRecipient, "request: %v", err)
	}
	ttl, urgency := TTLNormal, "normal"
	if m.Priority == herald.PriorityHigh {
		ttl, urgency = TTLHigh, "high"
	}
	h := req.Header
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Encoding", "aes128gcm")
	h.Set("TTL", strconv.Itoa(int(ttl/time.Second)))
	h.Set("Urgency", urgency)
	h.Set("Topic", Topic(m.DeliveryID))
	h.Set("Authorization", "vapid t="+token+", k="+p.publicKey)
	return req, nil
}

// Topic derives the RFC 8030 Topic of a delivery: 32 characters of
// URL-safe base64, the most RFC 8030 §5.4 allows. A repeated attempt of
// one delivery carries the same topic, so the push service replaces a
// copy it still holds instead of showing the message twice.
func Topic(deliveryID string) string {
	sum := sha256.Sum256([]byte(deliveryID))
	return base64.RawURLEncoding.EncodeToString(sum[:24])
}

// vapid returns a VAPID JWT for audience (the endpoint's origin), signing
// a new one when the cached one is older than vapidReuse.
func (p *Provider) vapid(audience string) (string, error) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.tokens[audience]; ok && now.Sub(t.issued) < vapidReuse && !now.Before(t.issued) {
		return t.jwt, nil
	}
	claims := jwt.MapClaims{
		"aud": audience,
		"exp": now.Add(vapidExpiry).Unix(),
		"sub": p.subject,
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(p.key)
	if err != nil {
		return "", err
	}
	// Drop expired entries so subscriptions spread over many push services
	// do not grow the cache without bound.
	for aud, t := range p.tokens {
		if now.Sub(t.issued) >= vapidReuse {
			delete(p.tokens, aud)
		}
	}
	p.tokens[audience] = vapidToken{jwt: signed, issued: now}
	return signed, nil
}

// classify maps the push service's answer (RFC 8030 §5 and §7, RFC 8292
// §4.2, PROVIDERS.md §3.2) to an outcome.
func (p *Provider) classify(resp *http.Response, deliveryID string) *herald.Outcome {
	// Read a little of the body for the timeline, and drain the rest so the
	// connection can be reused.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	detail := fmt.Sprintf("webpush: %s", resp.Status)
	if s := strings.TrimSpace(string(snippet)); s != "" {
		detail += ": " + strings.ToValidUTF8(s, "?")
	}
	code := resp.StatusCode
	switch {
	case code == http.StatusCreated || code == http.StatusOK || code == http.StatusAccepted:
		id := resp.Header.Get("Location")
		if id == "" {
			id = deliveryID
		}
		return &herald.Outcome{Kind: herald.OutcomeSent, ProviderMessageID: id}
	case code == http.StatusNotFound || code == http.StatusGone:
		return &herald.Outcome{Kind: herald.OutcomeInvalidRecipient, Detail: detail}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return &herald.Outcome{Kind: herald.OutcomeConfigError, Detail: detail}
	case code == http.StatusTooManyRequests || code >= 500:
		return &herald.Outcome{Kind: herald.OutcomeRetry, Detail: detail,
			RetryAfter: wire.RetryAfter(resp.Header.Get("Retry-After"), p.now())}
	case code == http.StatusRequestTimeout:
		return &herald.Outcome{Kind: herald.OutcomeRetry, Detail: detail}
	}
	// 400 (bad headers or crypto), 413 (too large), redirects and the rest.
	return &herald.Outcome{Kind: herald.OutcomePermanent, Detail: detail}
}

// classifyErr maps a failed round trip: a refused private target is
// permanent, anything else (DNS, connect, TLS, timeout, cancel) is worth
// retrying except an untrusted certificate, which ca_pem must fix.
func (p *Provider) classifyErr(ctx context.Context, err error) herald.Outcome {
	var (
		blocked *netguard.BlockedError
		verr    *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &blocked):
		return herald.Outcome{Kind: herald.OutcomePermanent, Detail: "webpush: " + blocked.Error()}
	case ctx.Err() != nil:
		return herald.Outcome{Kind: herald.OutcomeRetry, Detail: "webpush: " + ctx.Err().Error() + ": " + err.Error()}
	case errors.As(err, &verr):
		return herald.Outcome{Kind: herald.OutcomePermanent, Detail: "webpush: " + err.Error()}
	}
	return herald.Outcome{Kind: herald.OutcomeRetry, Detail: "webpush: " + err.Error()}
}
