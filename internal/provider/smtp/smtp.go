// Package smtp delivers email through any SMTP server (a relay, a mail
// provider's submission port, or the fake in providertest) with go-mail.
package smtp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/heraldhq/herald"
	providersettings "github.com/heraldhq/herald/internal/provider/internal/settings"
	"github.com/heraldhq/herald/internal/provider/internal/wire"
)

// Kind is the provider kind this package implements.
const Kind = "smtp"

// TLS modes of the tls setting.
const (
	TLSStartTLS = "starttls" // plain connect, then STARTTLS, which must be offered (the default)
	TLSImplicit = "implicit" // TLS from the first byte (port 465 style)
	TLSNone     = "none"     // no TLS at all: local relays and tests only
)

// HeaderDeliveryID carries the delivery id, so a bounce or a complaint that
// quotes the original headers can be traced to its delivery.
const HeaderDeliveryID = "X-Herald-Delivery-Id"

// defaultTimeout bounds a send whose context has no deadline, so a silent
// server cannot hold a worker forever.
const defaultTimeout = time.Minute

// settings is the JSON of a provider entry's settings.
type settings struct {
	Endpoint string `json:"endpoint"`
	From     string `json:"from"`
	Username string `json:"username"`
	Password string `json:"password"`
	TLS      string `json:"tls"`
	CAPEM    string `json:"ca_pem"`
}

// Provider sends email over SMTP with one configuration. It is safe for
// concurrent use.
//
// Each Send opens its own connection. That is simple and isolates failures,
// but costs a TCP and TLS handshake per message; a pool of connections
// reused across sends is a later optimisation.
type Provider struct {
	host      string
	port      int
	tlsMode   string
	tlsConfig *tls.Config
	from      *netmail.Address
	domain    string // of from, the right-hand side of every Message-ID
	username  string
	password  string
	helo      string
	logger    *slog.Logger
	now       func() time.Time
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
		tlsMode:  s.TLS,
		username: s.Username,
		password: s.Password,
		logger:   env.Logger,
		now:      env.Now,
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}

	if s.Endpoint == "" {
		v.Add("settings.endpoint", "is required")
	} else if host, port, err := net.SplitHostPort(s.Endpoint); err != nil || host == "" {
		v.Add("settings.endpoint", "must be host:port")
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.Add("settings.endpoint", "port must be 1 to 65535")
	} else {
		p.host, p.port = host, n
	}

	if s.From == "" {
		v.Add("settings.from", "is required")
	} else if hasCRLF(s.From) {
		v.Add("settings.from", "must not contain line breaks")
	} else if a, err := netmail.ParseAddress(s.From); err != nil {
		v.Add("settings.from", "must be an email address, optionally \"Name <address>\"")
	} else if at := strings.LastIndexByte(a.Address, '@'); at < 1 || at == len(a.Address)-1 {
		v.Add("settings.from", "must be an email address with a domain")
	} else {
		p.from, p.domain = a, a.Address[at+1:]
	}

	switch s.TLS {
	case "":
		p.tlsMode = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		v.Add("settings.tls", "must be %q, %q or %q", TLSStartTLS, TLSImplicit, TLSNone)
	}

	if s.Password != "" && s.Username == "" {
		v.Add("settings.username", "is required with a password")
	}
	if s.Username != "" && s.Password == "" {
		v.Add("settings.password", "is required with a username")
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
	p.tlsConfig = &tls.Config{ServerName: p.host, RootCAs: roots, MinVersion: tls.VersionTLS12}
	// HELO names this machine, as go-mail would, but once rather than per send.
	p.helo, _ = os.Hostname()
	if p.helo == "" {
		p.helo = "localhost"
	}
	return p, nil
}

// decode parses settings strictly: an unknown or mistyped field is named
// in the error rather than silently ignored.
func decode(raw json.RawMessage) (settings, error) {
	var s settings
	err := providersettings.Decode(raw, &s, Kind)
	return s, err
}

// Kind returns "smtp".
func (p *Provider) Kind() string { return Kind }

// Send delivers m to m.To and classifies the server's answer. The whole
// SMTP transaction, dial included, ends by ctx's deadline.
func (p *Provider) Send(ctx context.Context, m herald.Message) herald.Outcome {
	if err := ctx.Err(); err != nil {
		return herald.Outcome{Kind: herald.OutcomeRetry, Detail: "smtp: " + err.Error()}
	}
	msg, id, out := p.build(m)
	if out != nil {
		return *out
	}

	timeout := defaultTimeout
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		timeout = time.Until(deadline)
		if timeout <= 0 {
			return herald.Outcome{Kind: herald.OutcomeRetry, Detail: "smtp: " + context.DeadlineExceeded.Error()}
		}
	} else {
		deadline = time.Now().Add(timeout)
	}

	// go-mail re-arms the connection deadline with its timeout after each
	// command, and dials with the context only; the dial function below caps
	// every deadline at ctx's and closes the connection when ctx is canceled.
	var stop func() bool
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn := net.Conn(&deadlineConn{Conn: c, limit: deadline})
		stop = context.AfterFunc(ctx, func() { _ = c.Close() })
		if err := conn.SetDeadline(deadline); err != nil {
			_ = c.Close()
			return nil, err
		}
		if p.tlsMode == TLSImplicit {
			tc := tls.Client(conn, p.tlsConfig)
			if err := tc.HandshakeContext(dctx); err != nil {
				_ = c.Close()
				return nil, err
			}
			conn = tc
		}
		return conn, nil
	}
	defer func() {
		if stop != nil {
			stop()
		}
	}()

	opts := []mail.Option{
		mail.WithPort(p.port),
		mail.WithTimeout(timeout),
		mail.WithDialContextFunc(dial),
		mail.WithTLSConfig(p.tlsConfig),
		mail.WithHELO(p.helo),
		mail.WithoutNoop(), // the connection is fresh; NOOP would only add a round trip
	}
	switch p.tlsMode {
	case TLSStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	default: // implicit TLS is done by dial; go-mail must not try STARTTLS inside it
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if p.username != "" {
		opts = append(opts,
			mail.WithOpportunisticSMTPAuth(mail.SMTPAuthPlain, mail.SMTPAuthLogin),
			mail.WithUsername(p.username), mail.WithPassword(p.password))
	}
	client, err := mail.NewClient(p.host, opts...)
	if err != nil {
		return herald.Outcome{Kind: herald.OutcomePermanent, Detail: "smtp: client: " + err.Error()}
	}
	err = client.DialAndSendWithContext(ctx, msg)
	if err == nil || msg.IsDelivered() {
		// A failure after the server accepted the message (RSET or QUIT)
		// must not cause a retry: that would send it twice.
		return herald.Outcome{Kind: herald.OutcomeSent, ProviderMessageID: id}
	}
	out = classifyErr(err)
	if cerr := ctx.Err(); cerr != nil {
		// The failure is most likely our own cancellation closing the connection.
		out = &herald.Outcome{Kind: herald.OutcomeRetry, Detail: "smtp: " + cerr.Error() + ": " + err.Error()}
	}
	p.logger.DebugContext(ctx, "smtp send failed",
		"delivery_id", m.DeliveryID, "outcome", out.Kind.String(), "detail", out.Detail)
	return *out
}

// build turns m into a go-mail message and its Message-ID, or returns the
// outcome that ends the send when m can never be sent as it is.
func (p *Provider) build(m herald.Message) (*mail.Msg, string, *herald.Outcome) {
	permanent := func(format string, args ...any) (*mail.Msg, string, *herald.Outcome) {
		return nil, "", &herald.Outcome{Kind: herald.OutcomePermanent, Detail: "smtp: " + fmt.Sprintf(format, args...)}
	}
	if m.DeliveryID == "" {
		return permanent("message has no delivery id")
	}
	// Header injection: a line break in a header value would let the content
	// add headers or recipients of its own.
	for _, h := range []struct{ name, value string }{
		{"To", m.To}, {"Subject", m.Content.Subject}, {HeaderDeliveryID, m.DeliveryID}, {"List-Unsubscribe", m.UnsubscribeURL},
	} {
		if hasCRLF(h.value) {
			return permanent("%s contains a line break", h.name)
		}
	}
	to, err := netmail.ParseAddress(m.To)
	if err != nil || !strings.Contains(to.Address, "@") {
		return nil, "", &herald.Outcome{Kind: herald.OutcomeInvalidRecipient, Detail: fmt.Sprintf("smtp: recipient %q is not an email address", m.To)}
	}

	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	msg.FromMailAddress(p.from)
	if err := msg.To(to.Address); err != nil {
		return nil, "", &herald.Outcome{Kind: herald.OutcomeInvalidRecipient, Detail: "smtp: recipient: " + err.Error()}
	}
	msg.Subject(m.Content.Subject)
	id := p.messageID(m.DeliveryID)
	msg.SetMessageIDWithValue(id)
	msg.SetGenHeader(HeaderDeliveryID, m.DeliveryID)
	msg.SetDateWithValue(p.now())
	if m.UnsubscribeURL != "" {
		u, err := url.Parse(m.UnsubscribeURL)
		if err != nil || !u.IsAbs() || u.Host == "" || strings.ContainsAny(m.UnsubscribeURL, "<> ") {
			return permanent("unsubscribe URL %q is not an absolute URL", m.UnsubscribeURL)
		}
		msg.SetGenHeader("List-Unsubscribe", "<"+m.UnsubscribeURL+">")
		// RFC 8058 one-click needs an HTTPS URI; a plain-HTTP one (local
		// development) keeps only the RFC 2369 link.
		if u.Scheme == "https" {
			msg.SetGenHeader("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
		}
	}
	switch {
	case m.Content.Body != "" && m.Content.HTML != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Content.Body)
		msg.AddAlternativeString(mail.TypeTextHTML, m.Content.HTML)
	case m.Content.HTML != "":
		msg.SetBodyString(mail.TypeTextHTML, m.Content.HTML)
	default:
		msg.SetBodyString(mail.TypeTextPlain, m.Content.Body)
	}
	return msg, "<" + id + ">", nil
}

// messageID derives the Message-ID (without angle brackets) from the
// delivery id, so a repeated attempt of one delivery carries the same id and
// mail systems can recognise the duplicate.
func (p *Provider) messageID(deliveryID string) string { return wire.MessageID(deliveryID, p.domain) }

func hasCRLF(s string) bool { return strings.ContainsAny(s, "\r\n") }

// classifyErr maps a go-mail error to an outcome. Server replies decide by
// code (RFC 5321: 4xx transient, 5xx permanent); a rejected recipient whose
// mailbox does not exist is an invalid recipient; anything that is not a
// reply (network errors, timeouts) is worth retrying.
func classifyErr(err error) *herald.Outcome {
	kind := herald.OutcomeRetry
	var (
		se   *mail.SendError
		te   *textproto.Error
		verr *tls.CertificateVerificationError
		herr x509.HostnameError
		uerr x509.UnknownAuthorityError
	)
	switch {
	case errors.As(err, &se):
		code := se.ErrorCode() // 0 when the error is not a server reply
		switch {
		case code >= 500 && se.Reason == mail.ErrSMTPRcptTo && mailboxGone(code, se.EnhancedStatusCode()):
			kind = herald.OutcomeInvalidRecipient
		case code >= 500:
			kind = herald.OutcomePermanent
		}
	case errors.As(err, &te):
		// A reply before MAIL FROM (greeting, EHLO, STARTTLS, AUTH): a 5xx
		// there, such as 535 bad credentials, is a configuration error that
		// retrying will not fix.
		if te.Code >= 500 {
			kind = herald.OutcomePermanent
		}
	case errors.As(err, &verr), errors.As(err, &herr), errors.As(err, &uerr):
		// The server's certificate is not trusted: fix ca_pem or the endpoint.
		kind = herald.OutcomePermanent
	}
	return &herald.Outcome{Kind: kind, Detail: "smtp: " + err.Error()}
}

// mailboxGone reports whether a 5xx reply to RCPT says the mailbox does not
// exist. The enhanced code is the sharper signal when the server sends one:
// 550 5.7.1 is a policy refusal (relaying denied), not a dead address, and
// disabling the contact for it would be wrong.
func mailboxGone(code int, enhanced string) bool {
	if enhanced != "" {
		return strings.HasPrefix(enhanced, "5.1.")
	}
	return code == 550 || code == 551 || code == 553
}

// deadlineConn caps every deadline go-mail sets at the send's deadline.
type deadlineConn struct {
	net.Conn
	limit time.Time
}

func (c *deadlineConn) clamp(t time.Time) time.Time {
	if t.IsZero() || t.After(c.limit) {
		return c.limit
	}
	return t
}

func (c *deadlineConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.clamp(t)) }

func (c *deadlineConn) SetReadDeadline(t time.Time) error { return c.Conn.SetReadDeadline(c.clamp(t)) }

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clamp(t))
}
