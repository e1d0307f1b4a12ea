// Package sink is a lean stand-in for every provider Herald talks to, for
// load tests: fake APNs, FCM (with its OAuth2 token endpoint), Twilio and
// SendGrid on one HTTPS listener (HTTP/2 and HTTP/1.1, a CA of its own), and
// SMTP on a second port. It checks nothing beyond what it needs to answer
// like the provider and to recognise the delivery; it counts what arrives,
// per kind, and keeps each arrival's time so a load generator can compute
// accept-to-provider latency. The wire-exact, validating fakes for tests
// are in internal/provider/providertest; they are too slow for this.
//
// Any other push server on the same machine can be measured against it:
// point its APNs, FCM, Twilio or SendGrid base URLs at URL() (or its SMTP
// relay at SMTPAddr()), trust the CA written by WriteCA, and read
// GET /stats (counts), GET /arrivals?since=N (arrival times, paged) or
// GET /metrics (Prometheus text) from the same HTTPS listener.
//
// It is also a Web Push service with one subscription (GET
// /push/subscription), whose messages it validates like a real push
// service and decrypts, since it holds the subscription's private key:
// /arrivals shows their plaintext, as it shows each email's subject. That
// makes it the receiver of docs/quickstart.md, with no internet.
package sink

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
)

// The kinds the sink answers for, as Herald's provider kinds name them.
const (
	KindAPNs     = "apns"
	KindFCM      = "fcm"
	KindTwilio   = "twilio"
	KindSendGrid = "sendgrid"
	KindSMTP     = "smtp"
)

// Kinds lists every kind, in a stable order.
var Kinds = []string{KindAPNs, KindFCM, KindTwilio, KindSendGrid, KindSMTP, KindWebPush}

// Options configures a Sink.
type Options struct {
	Addr      string        // the HTTPS listener, host:port (port 0 picks one)
	SMTPAddr  string        // the SMTP listener; empty for none
	Latency   time.Duration // added before every answer
	Jitter    time.Duration // the latency varies uniformly by ± this much
	ErrorRate float64       // the share of sends answered with an error, 0 to 1
	// Keep bounds the arrivals held for /arrivals (about 100 bytes each);
	// past it the oldest half is dropped. 0 means 10 million.
	Keep   int
	Logger *slog.Logger
}

// Arrival is one message a provider endpoint accepted.
type Arrival struct {
	Kind string `json:"k"`
	// ID is the Herald delivery id the wire carries (apns-collapse-id, FCM
	// collapse_key, SendGrid's herald_delivery_id, the Message-ID's local
	// part); empty when it carries none (Twilio).
	ID string `json:"id,omitempty"`
	// Ref is the first "hb-<digits>" token in the message text, which a load
	// generator may put in the content to recognise messages that carry no id.
	Ref string `json:"ref,omitempty"`
	// Text is what a person would see: a web push message's decrypted
	// payload, an email's Subject; empty for the other kinds.
	Text string `json:"text,omitempty"`
	At   int64  `json:"at"` // when the request arrived, Unix nanoseconds
}

// Stats are the sink's counters since it started.
type Stats struct {
	Started  time.Time        `json:"started"`
	Received map[string]int64 `json:"received"` // accepted messages per kind
	Errors   map[string]int64 `json:"errors"`   // injected error answers per kind
	Tokens   int64            `json:"tokens"`   // OAuth2 tokens issued (FCM)
	Arrivals int              `json:"arrivals"` // total arrivals recorded
	// Dropped arrivals are no longer held (Options.Keep); /arrivals skips them.
	Dropped int `json:"dropped"`
}

// Sink is the running fake. Start it, then read URL, SMTPAddr and CAPEM.
type Sink struct {
	opts    Options
	caPEM   []byte
	caPool  *x509.CertPool
	push    *pushReceiver
	cert    tls.Certificate
	started time.Time

	ln     net.Listener
	srv    *http.Server
	smtpLn net.Listener
	smtp   *smtp.Server
	done   chan error

	received, errs map[string]*atomic.Int64
	tokens         atomic.Int64
	errSeq         atomic.Uint64

	mu       sync.Mutex
	arrivals []Arrival // arrivals[i] is arrival number base+i
	base     int

	stopOnce sync.Once
	stopErr  error
}

// New makes a Sink with a fresh CA and a certificate for 127.0.0.1, ::1
// and localhost.
func New(opts Options) (*Sink, error) {
	if opts.ErrorRate < 0 || opts.ErrorRate > 1 {
		return nil, fmt.Errorf("sink: error rate %v is not between 0 and 1", opts.ErrorRate)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Keep <= 0 {
		opts.Keep = 10_000_000
	}
	s := &Sink{opts: opts, received: map[string]*atomic.Int64{}, errs: map[string]*atomic.Int64{}}
	for _, k := range Kinds {
		s.received[k], s.errs[k] = new(atomic.Int64), new(atomic.Int64)
	}
	var err error
	if s.caPEM, s.cert, err = newCA(); err != nil {
		return nil, fmt.Errorf("sink: certificate: %w", err)
	}
	s.caPool = x509.NewCertPool()
	s.caPool.AppendCertsFromPEM(s.caPEM)
	if s.push, err = newPushReceiver(); err != nil {
		return nil, fmt.Errorf("sink: web push subscription: %w", err)
	}
	return s, nil
}

// newCA makes a CA and a server certificate it signs; it returns the CA's PEM.
func newCA() ([]byte, tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Herald bench sink CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Start listens on both addresses and serves until Stop.
func (s *Sink) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("sink: listen on %s: %w", s.opts.Addr, err)
	}
	s.ln = ln
	s.started = time.Now()
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12},
		// Herald multiplexes every APNs and FCM send on one connection.
		HTTP2:    &http.HTTP2Config{MaxConcurrentStreams: 1000},
		ErrorLog: log.New(io.Discard, "", 0)}
	s.done = make(chan error, 2)
	go func() { s.done <- s.srv.ServeTLS(ln, "", "") }()
	if s.opts.SMTPAddr != "" {
		if s.smtpLn, err = lc.Listen(ctx, "tcp", s.opts.SMTPAddr); err != nil {
			_ = s.srv.Close()
			return fmt.Errorf("sink: smtp listen on %s: %w", s.opts.SMTPAddr, err)
		}
		s.smtp = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
		s.smtp.Domain = "localhost"
		s.smtp.ReadTimeout, s.smtp.WriteTimeout = 30*time.Second, 30*time.Second
		s.smtp.MaxMessageBytes = 10 << 20
		s.smtp.AllowInsecureAuth = true
		s.smtp.ErrorLog = log.New(io.Discard, "", 0)
		go func() { s.done <- s.smtp.Serve(s.smtpLn) }()
	}
	s.opts.Logger.Info("bench sink started", "url", s.URL(), "smtp", s.SMTPAddr())
	return nil
}

// Stop closes both listeners and their connections. It is safe to call twice.
func (s *Sink) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		if s.srv == nil {
			return
		}
		errs := []error{s.srv.Shutdown(ctx)}
		if s.smtp != nil {
			_ = s.smtp.Close()
			_ = s.smtpLn.Close()
		}
		for _, e := range errs {
			if e != nil && !errors.Is(e, http.ErrServerClosed) {
				s.stopErr = e
			}
		}
	})
	return s.stopErr
}

// URL is the HTTPS base URL of the HTTP providers, such as https://127.0.0.1:9443.
func (s *Sink) URL() string { return "https://" + s.ln.Addr().String() }

// SMTPAddr is the SMTP listener's host:port, empty without one.
func (s *Sink) SMTPAddr() string {
	if s.smtpLn == nil {
		return ""
	}
	return s.smtpLn.Addr().String()
}

// CAPEM is the CA that signed the sink's certificate, PEM encoded.
func (s *Sink) CAPEM() []byte { return s.caPEM }

// Client is an HTTP client that trusts the sink's CA.
func (s *Sink) Client() *http.Client { return ClientFor(s.caPEM) }

// ClientFor is an HTTP client that trusts caPEM, for reading a sink's stats.
func ClientFor(caPEM []byte) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	st := Stats{Started: s.started, Received: map[string]int64{}, Errors: map[string]int64{}, Tokens: s.tokens.Load()}
	for _, k := range Kinds {
		st.Received[k], st.Errors[k] = s.received[k].Load(), s.errs[k].Load()
	}
	s.mu.Lock()
	st.Arrivals, st.Dropped = s.base+len(s.arrivals), s.base
	s.mu.Unlock()
	return st
}

// Arrivals returns up to limit arrivals from number since (counted from
// the sink's start), and the number to ask from next. Arrivals no longer
// held are skipped.
func (s *Sink) Arrivals(since, limit int) ([]Arrival, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := s.base + len(s.arrivals)
	if since < 0 || since > total {
		since = total
	}
	since = max(since, s.base)
	end := min(total, since+limit)
	return append([]Arrival(nil), s.arrivals[since-s.base:end-s.base]...), end
}

func (s *Sink) record(a Arrival) {
	s.received[a.Kind].Add(1)
	s.mu.Lock()
	if len(s.arrivals) >= s.opts.Keep {
		drop := max(1, len(s.arrivals)/2)
		s.arrivals = append(s.arrivals[:0:0], s.arrivals[drop:]...)
		s.base += drop
	}
	s.arrivals = append(s.arrivals, a)
	s.mu.Unlock()
}

// delay waits the configured latency with its jitter.
func (s *Sink) delay(ctx context.Context) {
	d := s.opts.Latency
	if j := s.opts.Jitter; j > 0 {
		d += time.Duration(mrand.Int64N(int64(2*j)+1)) - j
	}
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// failure picks whether this send fails and how: 0 for success, else one
// of 503, 429 and 500 in turn, the errors every provider documents.
func (s *Sink) failure() int {
	if s.opts.ErrorRate <= 0 || (s.opts.ErrorRate < 1 && mrand.Float64() >= s.opts.ErrorRate) {
		return 0
	}
	return [...]int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusInternalServerError}[s.errSeq.Add(1)%3]
}

func (s *Sink) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /3/device/{token}", s.apns)
	mux.HandleFunc("POST /v1/projects/{project}/{send}", s.fcm)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/Messages.json", s.twilio)
	mux.HandleFunc("POST /v3/mail/send", s.sendgrid)
	mux.HandleFunc("POST /push/{id}", s.webpush)
	mux.HandleFunc("GET /push/subscription", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Subscription()) })
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Stats()) })
	mux.HandleFunc("GET /arrivals", s.arrivalsPage)
	mux.HandleFunc("GET /metrics", s.metrics)
	mux.HandleFunc("GET /ca.pem", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(s.caPEM)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// retryAfter sets Retry-After on the answers that invite a retry.
func retryAfter(w http.ResponseWriter, status int) {
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
}

func (s *Sink) apns(w http.ResponseWriter, r *http.Request) {
	at := time.Now().UnixNano()
	_, _ = io.Copy(io.Discard, r.Body)
	s.delay(r.Context())
	if code := s.failure(); code != 0 {
		s.errs[KindAPNs].Add(1)
		retryAfter(w, code)
		reason := map[int]string{503: "ServiceUnavailable", 429: "TooManyRequests", 500: "InternalServerError"}[code]
		writeJSON(w, code, map[string]string{"reason": reason})
		return
	}
	id := r.Header.Get("apns-id")
	if id == "" {
		id = uuid.NewString()
	}
	s.record(Arrival{Kind: KindAPNs, ID: r.Header.Get("apns-collapse-id"), At: at})
	w.Header().Set("apns-id", id)
	w.WriteHeader(http.StatusOK)
}

func (s *Sink) token(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.tokens.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{"access_token": "ya29.bench-" + uuid.NewString(), "token_type": "Bearer", "expires_in": 3600})
}

func (s *Sink) fcm(w http.ResponseWriter, r *http.Request) {
	at := time.Now().UnixNano()
	if r.PathValue("send") != "messages:send" {
		http.NotFound(w, r)
		return
	}
	var body struct {
		Message struct {
			Notification struct {
				Body string `json:"body"`
			} `json:"notification"`
			Android struct {
				CollapseKey string `json:"collapse_key"`
			} `json:"android"`
		} `json:"message"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, googleError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received."))
		return
	}
	s.delay(r.Context())
	if code := s.failure(); code != 0 {
		s.errs[KindFCM].Add(1)
		retryAfter(w, code)
		e := map[int][2]string{503: {"UNAVAILABLE", "UNAVAILABLE"}, 429: {"RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"}, 500: {"INTERNAL", "INTERNAL"}}[code]
		writeJSON(w, code, googleError(code, e[0], e[1], "injected by the bench sink"))
		return
	}
	s.record(Arrival{Kind: KindFCM, ID: body.Message.Android.CollapseKey, Ref: ref(body.Message.Notification.Body), At: at})
	writeJSON(w, http.StatusOK, map[string]string{"name": "projects/" + r.PathValue("project") + "/messages/" + strconv.FormatInt(at, 10)})
}

func googleError(code int, status, fcmCode, msg string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status,
		"details": []map[string]string{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcmCode}}}}
}

func (s *Sink) twilio(w http.ResponseWriter, r *http.Request) {
	at := time.Now().UnixNano()
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 21601, "message": "bad form", "status": 400})
		return
	}
	s.delay(r.Context())
	if code := s.failure(); code != 0 {
		s.errs[KindTwilio].Add(1)
		retryAfter(w, code)
		e := map[int]int{503: 20503, 429: 20429, 500: 20500}[code]
		writeJSON(w, code, map[string]any{"code": e, "message": http.StatusText(code), "status": code,
			"more_info": "https://www.twilio.com/docs/errors/" + strconv.Itoa(e)})
		return
	}
	s.record(Arrival{Kind: KindTwilio, Ref: ref(r.PostForm.Get("Body")), At: at})
	sid := "SM" + strings.ReplaceAll(uuid.NewString(), "-", "")
	writeJSON(w, http.StatusCreated, map[string]any{"sid": sid, "status": "queued", "to": r.PostForm.Get("To"),
		"account_sid": r.PathValue("sid"), "num_segments": "1"})
}

func (s *Sink) sendgrid(w http.ResponseWriter, r *http.Request) {
	at := time.Now().UnixNano()
	var body struct {
		Personalizations []struct {
			CustomArgs map[string]string `json:"custom_args"`
		} `json:"personalizations"`
		Content []struct {
			Value string `json:"value"`
		} `json:"content"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Personalizations) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []map[string]any{{"message": "Bad Request", "field": nil}}})
		return
	}
	s.delay(r.Context())
	if code := s.failure(); code != 0 {
		s.errs[KindSendGrid].Add(1)
		retryAfter(w, code)
		writeJSON(w, code, map[string]any{"errors": []map[string]any{{"message": http.StatusText(code), "field": nil}}})
		return
	}
	a := Arrival{Kind: KindSendGrid, ID: body.Personalizations[0].CustomArgs["herald_delivery_id"], At: at}
	if len(body.Content) > 0 {
		a.Ref = ref(body.Content[0].Value)
	}
	s.record(a)
	w.Header().Set("X-Message-Id", strings.ReplaceAll(uuid.NewString(), "-", "")[:22])
	w.WriteHeader(http.StatusAccepted)
}

var refPattern = regexp.MustCompile(`hb-[0-9]+`)

// ref finds the load generator's token in a message text.
func ref(text string) string {
	if !strings.Contains(text, "hb-") {
		return ""
	}
	return refPattern.FindString(text)
}

func (s *Sink) arrivalsPage(w http.ResponseWriter, r *http.Request) {
	since, _ := strconv.Atoi(r.URL.Query().Get("since"))
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 || limit > 100000 {
		limit = 100000
	}
	page, next := s.Arrivals(since, limit)
	writeJSON(w, http.StatusOK, ArrivalsPage{Arrivals: page, Next: next})
}

// ArrivalsPage is the answer of GET /arrivals.
type ArrivalsPage struct {
	Arrivals []Arrival `json:"arrivals"`
	Next     int       `json:"next"` // pass as ?since= for the next page
}

func (s *Sink) metrics(w http.ResponseWriter, r *http.Request) {
	st := s.Stats()
	var b bytes.Buffer
	b.WriteString("# HELP herald_sink_received_total Messages the bench sink accepted, by provider kind.\n# TYPE herald_sink_received_total counter\n")
	kinds := append([]string(nil), Kinds...)
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "herald_sink_received_total{kind=%q} %d\n", k, st.Received[k])
	}
	b.WriteString("# HELP herald_sink_errors_total Error answers the bench sink injected, by provider kind.\n# TYPE herald_sink_errors_total counter\n")
	for _, k := range kinds {
		fmt.Fprintf(&b, "herald_sink_errors_total{kind=%q} %d\n", k, st.Errors[k])
	}
	fmt.Fprintf(&b, "# TYPE herald_sink_tokens_total counter\nherald_sink_tokens_total %d\n", st.Tokens)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write(b.Bytes())
}

// session is one SMTP connection.
type session struct{ s *Sink }

func (ss *session) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *session) Reset()                               {}
func (ss *session) Logout() error                        { return nil }

func (ss *session) Data(r io.Reader) error {
	at := time.Now().UnixNano()
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.delay(context.Background())
	if code := ss.s.failure(); code != 0 {
		ss.s.errs[KindSMTP].Add(1)
		if code == http.StatusServiceUnavailable {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service not available, try again later"}
		}
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Local error in processing, try again later"}
	}
	a := Arrival{Kind: KindSMTP, At: at}
	if msg, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		id := strings.Trim(msg.Header.Get("Message-Id"), "<> ")
		if i := strings.LastIndexByte(id, '@'); i > 0 {
			id = id[:i]
		}
		a.ID = id
		a.Ref = ref(string(data))
		if subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err == nil {
			a.Text = strings.Clone(subj) // not a slice of data, which would be kept whole
		}
	}
	ss.s.record(a)
	return nil
}
