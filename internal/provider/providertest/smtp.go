package providertest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// ReceivedMail is one message the fake SMTP server accepted.
type ReceivedMail struct {
	From string   // MAIL FROM
	To   []string // RCPT TO, in order
	Data []byte   // the message as received after DATA
	// Header is the parsed header of Data; nil when Data is not a valid message.
	Header    mail.Header
	MessageID string // the Message-ID header, angle brackets included
	Subject   string // the Subject header, RFC 2047 words decoded
}

// SMTPOption configures NewSMTPServer.
type SMTPOption func(*smtpConfig)

type smtpConfig struct {
	starttls   bool
	implicit   bool
	user, pass string
	rejects    map[string]*smtp.SMTPError
	dataErr    *smtp.SMTPError
	dataDelay  time.Duration
}

// WithSTARTTLS makes the server offer STARTTLS with a self-signed
// certificate for 127.0.0.1 and localhost; CAPEM returns it.
func WithSTARTTLS() SMTPOption {
	return func(c *smtpConfig) { c.starttls = true }
}

// WithImplicitTLS makes the server speak TLS from the first byte (the
// port 465 style) with the same self-signed certificate as WithSTARTTLS.
func WithImplicitTLS() SMTPOption {
	return func(c *smtpConfig) { c.implicit = true }
}

// WithAuth makes the server offer AUTH PLAIN and require it before MAIL,
// accepting only user and pass.
func WithAuth(user, pass string) SMTPOption {
	return func(c *smtpConfig) { c.user, c.pass = user, pass }
}

// RejectRecipient makes the server answer RCPT TO:<addr> (case-insensitive)
// with code, the enhanced status code and msg, e.g. 550, {5, 1, 1}.
func RejectRecipient(addr string, code int, enhanced [3]int, msg string) SMTPOption {
	return func(c *smtpConfig) {
		c.rejects[strings.ToLower(addr)] = &smtp.SMTPError{
			Code: code, EnhancedCode: smtp.EnhancedCode(enhanced), Message: msg,
		}
	}
}

// FailData makes the server refuse every message after reading its DATA,
// answering code and msg.
func FailData(code int, msg string) SMTPOption {
	return func(c *smtpConfig) {
		c.dataErr = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
	}
}

// DataDelay makes the server take d to answer each message after reading
// its DATA, like a slow relay: the message counts as received once answered.
func DataDelay(d time.Duration) SMTPOption {
	return func(c *smtpConfig) { c.dataDelay = d }
}

// SMTPServer is a real SMTP server (emersion/go-smtp) on a loopback port
// that records what it receives. It is safe for concurrent use.
type SMTPServer struct {
	cfg   smtpConfig
	addr  string
	caPEM string

	mu       sync.Mutex // also guards cfg.dataErr, which SetFailData changes
	messages []ReceivedMail
	changed  chan struct{} // closed and replaced whenever a message arrives
}

// NewSMTPServer starts an SMTP server on 127.0.0.1:0 and stops it when the
// test ends.
func NewSMTPServer(t testing.TB, opts ...SMTPOption) *SMTPServer {
	t.Helper()
	s := &SMTPServer{
		cfg:     smtpConfig{rejects: map[string]*smtp.SMTPError{}},
		changed: make(chan struct{}),
	}
	for _, o := range opts {
		o(&s.cfg)
	}

	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &smtpSession{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.AllowInsecureAuth = !s.cfg.starttls && !s.cfg.implicit
	// Tests cut connections on purpose (canceled sends); the server's
	// complaints about that are noise.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	var tlsConfig *tls.Config
	if s.cfg.starttls || s.cfg.implicit {
		cert, certPEM, err := selfSigned()
		if err != nil {
			t.Fatalf("providertest: smtp certificate: %v", err)
		}
		s.caPEM = certPEM
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if s.cfg.starttls {
		srv.TLSConfig = tlsConfig
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("providertest: smtp listen: %v", err)
	}
	s.addr = ln.Addr().String()
	if s.cfg.implicit {
		ln = tls.NewListener(ln, tlsConfig)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		// Close misses a listener that Serve has not registered yet; closing
		// it here too makes Serve return either way.
		_ = ln.Close()
		if err := <-done; err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("providertest: smtp serve: %v", err)
		}
	})
	return s
}

// Addr is the server's "host:port".
func (s *SMTPServer) Addr() string { return s.addr }

// CAPEM is the PEM of the server's self-signed certificate, for a
// provider's ca_pem setting; empty without WithSTARTTLS or WithImplicitTLS.
func (s *SMTPServer) CAPEM() string { return s.caPEM }

// Messages returns the messages received so far, oldest first.
func (s *SMTPServer) Messages() []ReceivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ReceivedMail(nil), s.messages...)
}

// WaitForMessages waits until the server has received at least n messages
// and returns them all; the test fails when timeout passes first.
func (s *SMTPServer) WaitForMessages(t testing.TB, n int, timeout time.Duration) []ReceivedMail {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, changed := len(s.messages), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Messages()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("providertest: smtp server got %d messages within %v, want %d", got, timeout, n)
			return nil
		}
	}
}

// SetFailData makes the server refuse every message from now on with code
// and msg, like FailData; code 0 makes it accept them again (an outage and
// its end).
func (s *SMTPServer) SetFailData(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.dataErr = nil
	if code != 0 {
		s.cfg.dataErr = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
	}
}

func (s *SMTPServer) dataError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.dataErr == nil {
		return nil
	}
	return s.cfg.dataErr
}

func (s *SMTPServer) add(m ReceivedMail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// smtpSession is one connection's transaction state; go-smtp drives a
// session from one goroutine.
type smtpSession struct {
	s      *SMTPServer
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*smtpSession)(nil)

func (ss *smtpSession) AuthMechanisms() []string {
	if ss.s.cfg.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	if ss.s.cfg.user == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if (identity != "" && identity != user) || user != ss.s.cfg.user || pass != ss.s.cfg.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.cfg.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err, ok := ss.s.cfg.rejects[strings.ToLower(to)]; ok {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	time.Sleep(ss.s.cfg.dataDelay) // a slow relay, by request
	if err := ss.s.dataError(); err != nil {
		return err
	}
	rm := ReceivedMail{From: ss.from, To: append([]string(nil), ss.to...), Data: data}
	if msg, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		rm.Header = msg.Header
		rm.MessageID = msg.Header.Get("Message-Id")
		rm.Subject = msg.Header.Get("Subject")
		if dec, err := new(mime.WordDecoder).DecodeHeader(rm.Subject); err == nil {
			rm.Subject = dec
		}
	}
	ss.s.add(rm)
	return nil
}

func (ss *smtpSession) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *smtpSession) Logout() error { return nil }

// selfSigned makes a certificate for the loopback names that is its own CA,
// so a client can trust exactly it through ca_pem.
func selfSigned() (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "herald providertest smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, nil
}
