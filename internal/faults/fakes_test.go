package faults

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/provider/providertest/apnsfake"
	"github.com/heraldhq/herald/internal/provider/providertest/sendgridfake"
	"github.com/heraldhq/herald/internal/provider/providertest/twiliofake"
)

// The three providers of the production mix: push through APNs, email
// through SendGrid, SMS through Twilio.
const (
	kindAPNs     = "apns"
	kindSendGrid = "sendgrid"
	kindTwilio   = "twilio"
)

// faultPlan is what a provider's fault injector does to each call.
type faultPlan struct {
	ErrorShare float64 // answered 500, 503 or 429 with Retry-After: 1 (a third each)
	HangShare  float64 // left unanswered until Herald gives up (never accepted)
}

// injector sits in front of one provider fake: it answers a share of the
// calls with errors, hangs on another share, answers 503 to everything
// while down, and records every call the fake itself accepted.
type injector struct {
	kind string
	rec  *recorder
	done chan struct{} // closed at cleanup: hanging calls return

	mu   sync.Mutex
	plan faultPlan
	rnd  *mrand.Rand
	down atomic.Bool

	calls, errors, hangs, downCalls atomic.Int64
}

func newInjector(kind string, rec *recorder) *injector {
	return &injector{kind: kind, rec: rec, done: make(chan struct{}), rnd: mrand.New(mrand.NewPCG(1, uint64(time.Now().UnixNano())))}
}

// SetPlan changes the shares of later calls.
func (in *injector) SetPlan(p faultPlan) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.plan = p
}

// SetDown makes every later call answer 503 (true) or go through again (false).
func (in *injector) SetDown(down bool) { in.down.Store(down) }

func (in *injector) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.calls.Add(1)
		if in.down.Load() {
			in.downCalls.Add(1)
			in.answerError(w, http.StatusServiceUnavailable)
			return
		}
		in.mu.Lock()
		plan, x, pick := in.plan, in.rnd.Float64(), in.rnd.IntN(3)
		in.mu.Unlock()
		switch {
		case x < plan.HangShare:
			in.hangs.Add(1)
			select {
			case <-r.Context().Done():
			case <-in.done:
			}
			panic(http.ErrAbortHandler) // returning would answer 200
		case x < plan.HangShare+plan.ErrorShare:
			in.errors.Add(1)
			in.answerError(w, []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusTooManyRequests}[pick])
			return
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		key := in.key(r, raw)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status >= 200 && sw.status < 300 {
			in.rec.accept(key)
		}
	})
}

// key recovers which Herald delivery a call carries: APNs' collapse id and
// SendGrid's custom argument are the delivery id; a Twilio message carries
// only its text, in which the load generator put the notification's ref.
func (in *injector) key(r *http.Request, raw []byte) string {
	switch in.kind {
	case kindAPNs:
		return r.Header.Get("apns-collapse-id")
	case kindSendGrid:
		var m sendgridfake.Mail
		if json.Unmarshal(raw, &m) == nil && len(m.Personalizations) > 0 {
			return m.Personalizations[0].CustomArgs["herald_delivery_id"]
		}
	case kindTwilio:
		form, err := url.ParseQuery(string(raw))
		if err == nil {
			if _, ref, ok := strings.Cut(form.Get("Body"), "ref="); ok {
				return "ref:" + strings.Fields(ref)[0]
			}
		}
	}
	return "unknown"
}

// answerError answers as the provider does for status.
func (in *injector) answerError(w http.ResponseWriter, status int) {
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	switch in.kind {
	case kindAPNs:
		reason := map[int]string{500: "InternalServerError", 503: "ServiceUnavailable", 429: "TooManyRequests"}[status]
		fmt.Fprintf(w, `{"reason":%q}`, reason)
	case kindSendGrid:
		fmt.Fprint(w, `{"errors":[{"field":null,"message":"injected failure"}]}`)
	case kindTwilio:
		fmt.Fprintf(w, `{"code":%d,"message":"injected failure","more_info":"https://www.twilio.com/docs/errors/%d","status":%d}`,
			20000+status, 20000+status, status)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// recorder is the providers' side of the ledger: every call a fake
// accepted, by delivery key, with the time of the first.
type recorder struct {
	mu    sync.Mutex
	count map[string]int
	first map[string]time.Time
	later map[string][]time.Time // acceptances after the first
}

func newRecorder() *recorder {
	return &recorder{count: map[string]int{}, first: map[string]time.Time{}, later: map[string][]time.Time{}}
}

func (r *recorder) accept(key string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count[key] == 0 {
		r.first[key] = now
	} else {
		r.later[key] = append(r.later[key], now)
	}
	r.count[key]++
}

// get reports how often key was accepted and when first.
func (r *recorder) get(key string) (int, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count[key], r.first[key]
}

// times lists when key was accepted, for the report of a duplicate.
func (r *recorder) times(key string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{r.first[key].Format("15:04:05.000")}
	for _, t := range r.later[key] {
		out = append(out, t.Format("15:04:05.000"))
	}
	return strings.Join(out, ",")
}

func (r *recorder) keys() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.count))
	for k, v := range r.count {
		out[k] = v
	}
	return out
}

// providers are the three fakes of a run, each behind its injector.
type providers struct {
	rec                    *recorder
	push, email, sms       *injector
	apns                   *apnsfake.Server
	sendgrid               *sendgridfake.Server
	twilio                 *twiliofake.Server
	apnsKey                *ecdsa.PrivateKey
	apnsTeam, apnsKeyID    string
	twilioSID, twilioToken string
	sendgridKey            string
}

func startProviders(t *testing.T) *providers {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &providers{rec: newRecorder(), apnsKey: key, apnsTeam: "TEAM123456", apnsKeyID: "KEY1234567",
		twilioSID: "AC0123456789abcdef0123456789abcdef", twilioToken: "twilio-secret", sendgridKey: "SG.faults-key"}
	p.push = newInjector(kindAPNs, p.rec)
	p.email = newInjector(kindSendGrid, p.rec)
	p.sms = newInjector(kindTwilio, p.rec)
	p.apns = apnsfake.New(t, apnsfake.WithKey(p.apnsTeam, p.apnsKeyID, &key.PublicKey), apnsfake.WithMiddleware(p.push.middleware))
	p.sendgrid = sendgridfake.New(t, sendgridfake.WithAPIKey(p.sendgridKey), sendgridfake.WithMiddleware(p.email.middleware))
	p.twilio = twiliofake.New(t, twiliofake.WithAccount(p.twilioSID, p.twilioToken), twiliofake.WithMiddleware(p.sms.middleware))
	// Registered after the fakes, so it runs before they close and waits on no hanging call.
	t.Cleanup(func() {
		for _, in := range []*injector{p.push, p.email, p.sms} {
			close(in.done)
		}
	})
	return p
}

// setPlan gives every provider the same fault plan.
func (p *providers) setPlan(plan faultPlan) {
	for _, in := range []*injector{p.push, p.email, p.sms} {
		in.SetPlan(plan)
	}
}

// configure points the app's channels at the fakes.
func (p *providers) configure(t *testing.T, c *client) {
	t.Helper()
	p8, err := x509.MarshalPKCS8PrivateKey(p.apnsKey)
	if err != nil {
		t.Fatal(err)
	}
	c.must(t, 200, "PUT", "/v1/providers/push", []map[string]any{{"kind": "apns", "settings": map[string]any{
		"team_id": p.apnsTeam, "key_id": p.apnsKeyID, "topic": apnsfake.DefaultTopic,
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})),
		"endpoint":    p.apns.URL(), "ca_pem": p.apns.CAPEM()}}})
	c.must(t, 200, "PUT", "/v1/providers/sms", []map[string]any{{"kind": "twilio", "settings": map[string]any{
		"account_sid": p.twilioSID, "auth_token": p.twilioToken, "from": "+15005550006",
		"endpoint": p.twilio.URL(), "ca_pem": p.twilio.CAPEM()}}})
	c.must(t, 200, "PUT", "/v1/providers/email", []map[string]any{{"kind": "sendgrid", "settings": map[string]any{
		"api_key": p.sendgridKey, "from": "shop@example.com", "endpoint": p.sendgrid.URL(), "ca_pem": p.sendgrid.CAPEM()}}})
}

// faultCounts summarises what the injectors did, for the report.
func (p *providers) faultCounts() map[string]int64 {
	out := map[string]int64{}
	for name, in := range map[string]*injector{"push": p.push, "email": p.email, "sms": p.sms} {
		out[name+"_calls"] = in.calls.Load()
		out[name+"_errors"] = in.errors.Load()
		out[name+"_hangs"] = in.hangs.Load()
		out[name+"_down"] = in.downCalls.Load()
	}
	return out
}
