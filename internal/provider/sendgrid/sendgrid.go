// Package sendgrid delivers email through the Twilio SendGrid v3 Mail Send
// API (POST /v3/mail/send) over plain net/http.
package sendgrid

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	providersettings "github.com/heraldhq/herald/internal/provider/internal/settings"
	"github.com/heraldhq/herald/internal/provider/internal/wire"
)

// Kind is the provider kind this package implements.
const Kind = "sendgrid"

// DefaultEndpoint is SendGrid's global API base; EU regional subusers set
// endpoint to "https://api.eu.sendgrid.com".
const DefaultEndpoint = "https://api.sendgrid.com"

// MailSendPath is the Mail Send operation's path below the endpoint.
const MailSendPath = "/v3/mail/send"

// Custom args every message carries. SendGrid copies them into each event
// of the Event Webhook, which is how an event finds its delivery.
const (
	ArgDeliveryID     = "herald_delivery_id"
	ArgNotificationID = "herald_notification_id"
	ArgAppID          = "herald_app_id"
)

// defaultTimeout bounds a send whose context has no deadline, so a silent
// server cannot hold a worker forever.
const defaultTimeout = time.Minute

// maxErrorBody is how much of an error response is read for its messages.
const maxErrorBody = 64 << 10

// settings is the JSON of a provider entry's settings.
type settings struct {
	APIKey           string `json:"api_key"`
	From             string `json:"from"`
	FromName         string `json:"from_name"`
	WebhookPublicKey string `json:"webhook_public_key"`
	Endpoint         string `json:"endpoint"`
	CAPEM            string `json:"ca_pem"`
}

// Provider sends email through SendGrid with one configuration. It is safe
// for concurrent use.
type Provider struct {
	url        string // endpoint + MailSendPath
	apiKey     string
	auth       string // the Authorization header value
	from       address
	domain     string // of from, the right-hand side of every Message-ID
	webhookKey *ecdsa.PublicKey
	client     *http.Client
	logger     *slog.Logger
	now        func() time.Time
}

var _ herald.Provider = (*Provider)(nil)

// New validates settings and returns a Provider. Invalid settings return a
// *herald.Error with CodeInvalid whose Fields name them as "settings.<name>";
// the caller prefixes the entry's position in the list.
func New(raw json.RawMessage, env herald.ProviderEnv) (*Provider, error) {
	s, err := decode(raw)
	if err != nil {
		return nil, err
	}
	var v herald.Validation
	p := &Provider{apiKey: s.APIKey, logger: env.Logger, now: env.Now}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}

	switch {
	case s.APIKey == "":
		v.Add("settings.api_key", "is required")
	case strings.IndexFunc(s.APIKey, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		// It goes into a header: a space or a line break would corrupt it.
		v.Add("settings.api_key", "must not contain spaces or control characters")
	default:
		p.auth = "Bearer " + s.APIKey
	}

	if s.From == "" {
		v.Add("settings.from", "is required")
	} else if hasCRLF(s.From) {
		v.Add("settings.from", "must not contain line breaks")
	} else if a, err := netmail.ParseAddress(s.From); err != nil {
		v.Add("settings.from", "must be an email address")
	} else if at := strings.LastIndexByte(a.Address, '@'); at < 1 || at == len(a.Address)-1 {
		v.Add("settings.from", "must be an email address with a domain")
	} else {
		// "Name <address>" is accepted too; from_name wins over its name.
		p.from, p.domain = address{Email: a.Address, Name: a.Name}, a.Address[at+1:]
	}
	if s.FromName != "" {
		if hasCRLF(s.FromName) {
			v.Add("settings.from_name", "must not contain line breaks")
		} else {
			p.from.Name = s.FromName
		}
	}

	if s.WebhookPublicKey != "" {
		if key, err := parseWebhookKey(s.WebhookPublicKey); err != nil {
			v.Add("settings.webhook_public_key", "%s", err.Error())
		} else {
			p.webhookKey = key
		}
	}

	endpoint := s.Endpoint
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	if u, err := url.Parse(endpoint); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		v.Add("settings.endpoint", "must be an absolute http(s) URL such as %q", DefaultEndpoint)
	} else if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		v.Add("settings.endpoint", "must not carry a query, a fragment or credentials")
	} else {
		p.url = strings.TrimSuffix(u.String(), "/") + MailSendPath
	}

	var roots *x509.CertPool
	if s.CAPEM != "" {
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM([]byte(s.CAPEM)) {
			v.Add("settings.ca_pem", "holds no PEM certificate")
		}
	}

	if err := v.Err(); err != nil {
		return nil, err
	}
	p.client = httpClient(env.HTTPClient, roots)
	return p, nil
}

// httpClient derives the provider's client from the base one: its own
// transport when it needs extra roots, and never following redirects, since
// a redirected POST would lose its body and its meaning.
func httpClient(base *http.Client, roots *x509.CertPool) *http.Client {
	c := &http.Client{Timeout: 30 * time.Second}
	if base != nil {
		cp := *base
		c = &cp
	}
	if roots != nil {
		var tr *http.Transport
		if t, ok := c.Transport.(*http.Transport); ok {
			tr = t.Clone()
		} else {
			tr = http.DefaultTransport.(*http.Transport).Clone()
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.RootCAs = roots
		c.Transport = tr
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// parseWebhookKey parses the Event Webhook verification key as SendGrid
// shows it: base64 of a DER SubjectPublicKeyInfo, ECDSA P-256. PEM framing
// is tolerated.
func parseWebhookKey(s string) (*ecdsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	var der []byte
	if block, _ := pem.Decode([]byte(s)); block != nil {
		der = block.Bytes
	} else {
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, errors.New("must be the base64 of a DER public key, as SendGrid shows it")
		}
		der = b
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errors.New("is not a DER public key (SubjectPublicKeyInfo)")
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("must be an ECDSA P-256 public key")
	}
	return key, nil
}

// decode parses settings strictly: an unknown or mistyped field is named
// in the error rather than silently ignored.
func decode(raw json.RawMessage) (settings, error) {
	var s settings
	err := providersettings.Decode(raw, &s, Kind)
	return s, err
}

// Kind returns "sendgrid".
func (p *Provider) Kind() string { return Kind }

// WebhookPublicKey returns the Event Webhook's verification key from
// settings.webhook_public_key, or nil when none is configured. Inbound
// event handlers use it to check X-Twilio-Email-Event-Webhook-Signature.
func (p *Provider) WebhookPublicKey() *ecdsa.PublicKey { return p.webhookKey }

// Send delivers m to m.To through Mail Send and classifies the answer.
// Mail Send is not idempotent: a retry after a lost 202 can send twice; the
// Message-ID derived from the delivery id lets mail systems spot that.
func (p *Provider) Send(ctx context.Context, m herald.Message) herald.Outcome {
	if err := ctx.Err(); err != nil {
		return retry("sendgrid: " + err.Error())
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return herald.Outcome{Kind: herald.OutcomeConfigError, Detail: "sendgrid: request: " + err.Error()}
	}
	req.Header.Set("Authorization", p.auth)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "herald")

	resp, err := p.client.Do(req)
	if err != nil {
		out := p.classifyErr(ctx, err)
		p.logFailure(ctx, m, out)
		return out
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, maxErrorBody)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		id := resp.Header.Get("X-Message-Id")
		if id == "" {
			// SendGrid always sends it; without it the Message-ID still
			// names the message uniquely.
			id = "<" + p.messageID(m.DeliveryID) + ">"
		}
		return herald.Outcome{Kind: herald.OutcomeSent, ProviderMessageID: id}
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	res := p.classify(resp, data)
	p.logFailure(ctx, m, res)
	return res
}

func (p *Provider) logFailure(ctx context.Context, m herald.Message, out herald.Outcome) {
	p.logger.DebugContext(ctx, "sendgrid send failed",
		"delivery_id", m.DeliveryID, "outcome", out.Kind.String(), "detail", out.Detail)
}

// The Mail Send request body, as much of it as Herald uses.
type (
	mailSend struct {
		Personalizations []personalization `json:"personalizations"`
		From             address           `json:"from"`
		Subject          string            `json:"subject,omitempty"`
		Content          []content         `json:"content,omitempty"`
		Categories       []string          `json:"categories,omitempty"`
		Headers          map[string]string `json:"headers,omitempty"`
	}
	personalization struct {
		To         []address         `json:"to"`
		CustomArgs map[string]string `json:"custom_args,omitempty"`
	}
	address struct {
		Email string `json:"email"`
		Name  string `json:"name,omitempty"`
	}
	content struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
)

// build returns the JSON body for m, or the outcome that ends the send
// when m can never be sent as it is.
func (p *Provider) build(m herald.Message) ([]byte, *herald.Outcome) {
	permanent := func(format string, args ...any) ([]byte, *herald.Outcome) {
		return nil, &herald.Outcome{Kind: herald.OutcomePermanent, Detail: "sendgrid: " + fmt.Sprintf(format, args...)}
	}
	if m.DeliveryID == "" {
		return permanent("message has no delivery id")
	}
	// Header injection: SendGrid writes these into the message header, where
	// a line break would let the content add headers of its own.
	for _, h := range []struct{ name, value string }{
		{"To", m.To}, {"Subject", m.Content.Subject}, {"List-Unsubscribe", m.UnsubscribeURL},
		{"delivery id", m.DeliveryID}, {"category", m.Category},
	} {
		if hasCRLF(h.value) {
			return permanent("%s contains a line break", h.name)
		}
	}
	to, err := netmail.ParseAddress(m.To)
	if err != nil || strings.LastIndexByte(to.Address, '@') < 1 || strings.HasSuffix(to.Address, "@") {
		return nil, &herald.Outcome{Kind: herald.OutcomeInvalidRecipient,
			Detail: fmt.Sprintf("sendgrid: recipient %q is not an email address", m.To)}
	}
	if m.Content.Body == "" && m.Content.HTML == "" {
		return permanent("message has neither a text nor an HTML body")
	}

	args := map[string]string{ArgDeliveryID: m.DeliveryID}
	if m.NotificationID != "" {
		args[ArgNotificationID] = m.NotificationID
	}
	if m.AppID != "" {
		args[ArgAppID] = m.AppID
	}
	ms := mailSend{
		Personalizations: []personalization{{To: []address{{Email: to.Address}}, CustomArgs: args}},
		From:             p.from,
		Subject:          m.Content.Subject,
		// Message-ID is not among the headers Mail Send forbids overriding;
		// a repeated attempt of one delivery carries the same id.
		Headers: map[string]string{"Message-ID": "<" + p.messageID(m.DeliveryID) + ">"},
	}
	// SendGrid requires text/plain first, then text/html.
	if m.Content.Body != "" {
		ms.Content = append(ms.Content, content{Type: "text/plain", Value: m.Content.Body})
	}
	if m.Content.HTML != "" {
		ms.Content = append(ms.Content, content{Type: "text/html", Value: m.Content.HTML})
	}
	if m.Category != "" {
		ms.Categories = []string{m.Category}
	}
	if m.UnsubscribeURL != "" {
		u, err := url.Parse(m.UnsubscribeURL)
		if err != nil || !u.IsAbs() || u.Host == "" || strings.ContainsAny(m.UnsubscribeURL, "<> ") {
			return permanent("unsubscribe URL %q is not an absolute URL", m.UnsubscribeURL)
		}
		ms.Headers["List-Unsubscribe"] = "<" + m.UnsubscribeURL + ">"
		// RFC 8058 one-click needs an HTTPS URI; a plain-HTTP one (local
		// development) keeps only the RFC 2369 link.
		if u.Scheme == "https" {
			ms.Headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
		}
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the HTML body stays readable in logs and golden files
	if err := enc.Encode(ms); err != nil {
		// Invalid UTF-8 is replaced, not refused; this is a safety net.
		return permanent("encode: %v", err)
	}
	return buf.Bytes(), nil
}

// messageID derives the Message-ID (without angle brackets) from the
// delivery id, so a repeated attempt of one delivery carries the same id.
func (p *Provider) messageID(deliveryID string) string { return wire.MessageID(deliveryID, p.domain) }

func hasCRLF(s string) bool { return strings.ContainsAny(s, "\r\n") }

func retry(detail string) herald.Outcome {
	return herald.Outcome{Kind: herald.OutcomeRetry, Detail: detail}
}

// classifyErr maps a transport error: an untrusted certificate is the
// configuration's fault (endpoint or ca_pem); anything else is passing.
func (p *Provider) classifyErr(ctx context.Context, err error) herald.Outcome {
	detail := p.redact("sendgrid: " + err.Error())
	if ctx.Err() != nil {
		return retry(detail)
	}
	var (
		verr *tls.CertificateVerificationError
		herr x509.HostnameError
		uerr x509.UnknownAuthorityError
	)
	if errors.As(err, &verr) || errors.As(err, &herr) || errors.As(err, &uerr) {
		return herald.Outcome{Kind: herald.OutcomeConfigError, Detail: detail}
	}
	return retry(detail)
}

// classify maps a non-2xx answer to an outcome (PROVIDERS.md §0 and §5.2).
func (p *Provider) classify(resp *http.Response, body []byte) herald.Outcome {
	code := resp.StatusCode
	detail := p.redact(fmt.Sprintf("sendgrid: %d %s", code, errorText(body)))
	switch {
	case code == http.StatusTooManyRequests:
		return herald.Outcome{Kind: herald.OutcomeRetry, RetryAfter: p.retryAfter(resp.Header), Detail: detail}
	case code >= 500, code == http.StatusRequestTimeout:
		return herald.Outcome{Kind: herald.OutcomeRetry, RetryAfter: p.retryAfter(resp.Header), Detail: detail}
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		// A wrong or revoked key, a missing scope or an unverified sender.
		return herald.Outcome{Kind: herald.OutcomeConfigError, Detail: detail}
	case code == http.StatusNotFound, code == http.StatusMethodNotAllowed, code >= 300 && code < 400:
		// The endpoint does not point at Mail Send: no message will get through.
		return herald.Outcome{Kind: herald.OutcomeConfigError, Detail: detail}
	default: // 400, 413 and the rest: this message as it is will never be accepted
		return herald.Outcome{Kind: herald.OutcomePermanent, Detail: detail}
	}
}

// retryAfter reads X-RateLimit-Reset (epoch seconds, SendGrid's own) or
// else Retry-After (seconds or an HTTP date); zero when neither says.
func (p *Provider) retryAfter(h http.Header) time.Duration {
	now := p.now()
	if v := h.Get("X-RateLimit-Reset"); v != "" {
		if sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && sec > 0 {
			return wire.Clamp(time.Unix(sec, 0).Sub(now))
		}
	}
	return wire.RetryAfter(h.Get("Retry-After"), now)
}

// errorText extracts SendGrid's {"errors":[{"message","field"}]} messages,
// or an excerpt of a body that is not in that shape.
func errorText(body []byte) string {
	var e struct {
		Errors []struct {
			Message string          `json:"message"`
			Field   json.RawMessage `json:"field"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		parts := make([]string, 0, len(e.Errors))
		for _, x := range e.Errors {
			msg := x.Message
			var field string
			if json.Unmarshal(x.Field, &field) == nil && field != "" && field != "null" {
				msg += " (field " + field + ")"
			}
			parts = append(parts, msg)
		}
		return strings.Join(parts, "; ")
	}
	s := []rune(strings.TrimSpace(strings.ToValidUTF8(string(body), "?")))
	if len(s) > 300 {
		return string(s[:300]) + "…"
	}
	return string(s)
}

// redact removes the API key from text bound for the timeline or logs, in
// case a server or a proxy echoes the request back.
func (p *Provider) redact(s string) string {
	if p.apiKey == "" {
		return s
	}
	return strings.ReplaceAll(s, p.apiKey, "[redacted]")
}
