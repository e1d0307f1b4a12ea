// Package twilio delivers SMS through Twilio's Messages API (REST
// 2010-04-01) with plain net/http: one form-encoded POST per message,
// authenticated with the account SID and auth token.
package twilio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	providersettings "github.com/heraldhq/herald/internal/provider/internal/settings"
	"github.com/heraldhq/herald/internal/provider/internal/wire"
)

// Kind is the provider kind this package implements.
const Kind = "twilio"

// DefaultEndpoint is Twilio's API base URL, used when settings.endpoint is empty.
const DefaultEndpoint = "https://api.twilio.com"

// StatusCallbackPath is where, below the public URL, Herald receives
// Twilio's delivery status callbacks.
const StatusCallbackPath = "/hooks/twilio/status"

// Encodings Segments reports.
const (
	EncodingGSM7 = "GSM-7"
	EncodingUCS2 = "UCS-2"
)

// defaultTimeout bounds a send when neither ctx nor the injected client
// sets a limit, so a silent server cannot hold a worker forever.
const defaultTimeout = time.Minute

// maxResponse caps how much of an answer is read; Twilio's are small.
const maxResponse = 64 << 10

// isSID reports whether s is prefix followed by 32 hexadecimal digits,
// the shape of every Twilio SID.
func isSID(s, prefix string) bool {
	if len(s) != len(prefix)+32 || !strings.HasPrefix(s, prefix) {
		return false
	}
	for _, c := range s[len(prefix):] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// isE164 reports whether s is an E.164 number: '+', then 2 to 15 digits,
// the first not 0.
func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// settings is the JSON of a provider entry's settings.
type settings struct {
	AccountSID          string `json:"account_sid"`
	AuthToken           string `json:"auth_token"`
	From                string `json:"from"`
	MessagingServiceSID string `json:"messaging_service_sid"`
	Endpoint            string `json:"endpoint"`
	CAPEM               string `json:"ca_pem"`
}

// Provider sends SMS through Twilio with one configuration. It is safe for
// concurrent use.
type Provider struct {
	accountSID     string
	authToken      string
	from           string
	serviceSID     string
	messagesURL    string
	statusCallback string
	client         *http.Client
	logger         *slog.Logger
	now            func() time.Time
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
	p := &Provider{
		accountSID: s.AccountSID,
		authToken:  s.AuthToken,
		from:       s.From,
		serviceSID: s.MessagingServiceSID,
		logger:     env.Logger,
		now:        env.Now,
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}

	switch {
	case s.AccountSID == "":
		v.Add("settings.account_sid", "is required")
	case !isSID(s.AccountSID, "AC"):
		v.Add("settings.account_sid", "must be AC followed by 32 hexadecimal digits")
	}
	if s.AuthToken == "" {
		v.Add("settings.auth_token", "is required")
	} else if strings.ContainsAny(s.AuthToken, " \t\r\n:") {
		v.Add("settings.auth_token", "must not contain spaces, line breaks or colons")
	}
	switch {
	case s.From != "" && s.MessagingServiceSID != "":
		v.Add("settings.messaging_service_sid", "must not be set together with from")
	case s.From == "" && s.MessagingServiceSID == "":
		v.Add("settings.from", "is required unless messaging_service_sid is set")
	case s.From != "" && !isE164(s.From):
		v.Add("settings.from", "must be an E.164 number such as +14155550100")
	case s.MessagingServiceSID != "" && !isSID(s.MessagingServiceSID, "MG"):
		v.Add("settings.messaging_service_sid", "must be MG followed by 32 hexadecimal digits")
	}

	endpoint := s.Endpoint
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.Add("settings.endpoint", "must be an http or https URL")
	} else if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		v.Add("settings.endpoint", "must not contain credentials, a query or a fragment")
	} else if isSID(s.AccountSID, "AC") {
		p.messagesURL = strings.TrimSuffix(u.String(), "/") + "/2010-04-01/Accounts/" + s.AccountSID + "/Messages.json"
	}

	client, err := httpClient(env.HTTPClient, s.CAPEM)
	if err != nil {
		v.Add("settings.ca_pem", "%s", err.Error())
	}
	if env.PublicURL != "" {
		p.statusCallback = strings.TrimSuffix(env.PublicURL, "/") + StatusCallbackPath
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	p.client = client
	return p, nil
}

// httpClient derives the provider's client from the injected one: its own
// TLS roots when ca_pem is set, and redirects answered rather than
// followed, so credentials never travel to another host.
func httpClient(base *http.Client, caPEM string) (*http.Client, error) {
	c := &http.Client{Timeout: defaultTimeout}
	if base != nil {
		cp := *base
		c = &cp
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if caPEM == "" {
		return c, nil
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, errors.New("holds no PEM certificate")
	}
	var tr *http.Transport
	switch rt := c.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = rt.Clone()
	default:
		return nil, fmt.Errorf("cannot be applied to a %T transport", rt)
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.RootCAs = roots
	c.Transport = tr
	return c, nil
}

// decode parses settings strictly: an unknown or mistyped field is named
// in the error rather than silently ignored.
func decode(raw json.RawMessage) (settings, error) {
	var s settings
	err := providersettings.Decode(raw, &s, Kind)
	return s, err
}

// Kind returns "twilio".
func (p *Provider) Kind() string { return Kind }

// Send posts m to Twilio's Messages resource and classifies the answer.
// The request ends by ctx's deadline.
func (p *Provider) Send(ctx context.Context, m herald.Message) herald.Outcome {
	if err := ctx.Err(); err != nil {
		return herald.Outcome{Kind: herald.OutcomeRetry, Detail: "twilio: " + err.Error()}
	}
	if !isE164(m.To) {
		return herald.Outcome{Kind: herald.OutcomeInvalidRecipient, Detail: fmt.Sprintf("twilio: recipient %q is not an E.164 number", m.To)}
	}
	body := m.Content.Body
	if m.Content.URL != "" {
		if body != "" {
			body += "\n"
		}
		body += m.Content.URL
	}
	if body == "" {
		return herald.Outcome{Kind: herald.OutcomePermanent, Detail: "twilio: the message has no body"}
	}
	segments, encoding := Segments(body)

	form := url.Values{"To": {m.To}, "Body": {body}}
	if p.serviceSID != "" {
		form.Set("MessagingServiceSid", p.serviceSID)
	} else {
		form.Set("From", p.from)
	}
	if p.statusCallback != "" {
		form.Set("StatusCallback", p.statusCallback)
	}
	if _, ok := ctx.Deadline(); !ok && p.client.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.messagesURL, strings.NewReader(form.Encode()))
	if err != nil {
		return herald.Outcome{Kind: herald.OutcomeConfigError, Detail: "twilio: request: " + err.Error()}
	}
	req.SetBasicAuth(p.accountSID, p.authToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	resp, err := p.client.Do(req)
	if err != nil {
		out := herald.Outcome{Kind: herald.OutcomeRetry, Detail: "twilio: " + err.Error()}
		if cerr := ctx.Err(); cerr != nil {
			out.Detail = "twilio: " + cerr.Error()
		}
		p.logFailure(ctx, m, out)
		return out
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	_ = resp.Body.Close()
	if err != nil && resp.StatusCode/100 != 2 {
		out := herald.Outcome{Kind: herald.OutcomeRetry, Detail: fmt.Sprintf("twilio: %d: read answer: %v", resp.StatusCode, err)}
		p.logFailure(ctx, m, out)
		return out
	}
	out := p.classify(resp, data)
	if out.Kind == herald.OutcomeSent {
		detail := fmt.Sprintf("segments=%d encoding=%s", segments, encoding)
		if out.Detail != "" {
			detail += " " + out.Detail
		}
		out.Detail = detail
		return out
	}
	p.logFailure(ctx, m, out)
	return out
}

func (p *Provider) logFailure(ctx context.Context, m herald.Message, out herald.Outcome) {
	p.logger.DebugContext(ctx, "twilio send failed",
		"delivery_id", m.DeliveryID, "outcome", out.Kind.String(), "detail", out.Detail)
}

// apiError is Twilio's error JSON.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// classify maps Twilio's answer to an outcome: the error code decides when
// there is one (PROVIDERS.md §0 and §4.3), the HTTP status otherwise.
func (p *Provider) classify(resp *http.Response, data []byte) herald.Outcome {
	if resp.StatusCode/100 == 2 {
		var msg struct {
			SID    string `json:"sid"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(data, &msg); err != nil || msg.SID == "" {
			// Twilio took the message; retrying would send it twice.
			return herald.Outcome{Kind: herald.OutcomeSent, Detail: fmt.Sprintf("(answer %d without a message sid)", resp.StatusCode)}
		}
		return herald.Outcome{Kind: herald.OutcomeSent, ProviderMessageID: msg.SID}
	}

	var e apiError
	detail := fmt.Sprintf("twilio: HTTP %d", resp.StatusCode)
	if json.Unmarshal(data, &e) == nil && e.Code != 0 {
		detail = fmt.Sprintf("twilio: HTTP %d, code %d: %s", resp.StatusCode, e.Code, clip(e.Message, 300))
	} else if len(data) > 0 {
		detail += ": " + clip(string(data), 200)
	}
	kind := classifyCode(e.Code)
	if kind == 0 {
		kind = classifyStatus(resp.StatusCode)
	}
	out := herald.Outcome{Kind: kind, Detail: detail}
	if kind == herald.OutcomeRetry {
		out.RetryAfter = wire.RetryAfter(resp.Header.Get("Retry-After"), p.now())
	}
	return out
}

// classifyCode maps a Twilio error code to an outcome, or 0 when the code
// alone does not decide.
func classifyCode(code int) herald.OutcomeKind {
	switch code {
	case 21211, 21614, 21635, 30005, 30006:
		return herald.OutcomeInvalidRecipient
	case 21610, 30004:
		return herald.OutcomeOptedOut
	case 20429, 30001, 30003, 30008:
		return herald.OutcomeRetry
	case 20003, 20404, 21408, 21606, 21608, 30002, 30034:
		return herald.OutcomeConfigError
	}
	return 0
}

// classifyStatus maps an HTTP status without a deciding code.
func classifyStatus(status int) herald.OutcomeKind {
	switch {
	case status == http.StatusTooManyRequests || status >= 500:
		return herald.OutcomeRetry
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound:
		// Wrong credentials, account or endpoint: every message would fail.
		return herald.OutcomeConfigError
	case status >= 300 && status < 400:
		// The endpoint redirects: it is not Twilio's API.
		return herald.OutcomeConfigError
	}
	return herald.OutcomePermanent
}

// clip shortens s to at most n bytes on a rune boundary, on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
