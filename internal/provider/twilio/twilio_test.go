package twilio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/providertest"
	"github.com/heraldhq/herald/internal/provider/providertest/twiliofake"
	"github.com/heraldhq/herald/internal/provider/twilio"
)

const (
	accountSID = "AC0123456789abcdef0123456789abcdef"
	authToken  = "tok-9f8e7d6c5b4a"
	fromNumber = "+14155550199"
	serviceSID = "MG0123456789abcdef0123456789abcdef"
	publicURL  = "https://herald.example.com"
)

func newFake(t testing.TB) *twiliofake.Server {
	t.Helper()
	return twiliofake.New(t, twiliofake.WithAccount(accountSID, authToken))
}

func fakeSettings(srv *twiliofake.Server) map[string]any {
	return map[string]any{
		"account_sid": accountSID, "auth_token": authToken, "from": fromNumber,
		"endpoint": srv.URL(), "ca_pem": srv.CAPEM(),
	}
}

func newProvider(t testing.TB, settings map[string]any, env herald.ProviderEnv) *twilio.Provider {
	t.Helper()
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	p, err := twilio.New(raw, env)
	if err != nil {
		t.Fatalf("twilio.New(%s): %v", raw, err)
	}
	return p
}

func message(id, to, body string) herald.Message {
	return herald.Message{
		AppID: "app_1", NotificationID: "ntf_1", DeliveryID: id, Channel: herald.ChannelSMS,
		To: to, Content: herald.Content{Body: body},
	}
}

func send(t *testing.T, p herald.Provider, m herald.Message) herald.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return p.Send(ctx, m)
}

func TestConformance(t *testing.T) {
	srv := newFake(t)
	providertest.Run(t, providertest.Suite{
		Kind: "twilio",
		New: func(t *testing.T) herald.Provider {
			return newProvider(t, fakeSettings(srv), herald.ProviderEnv{PublicURL: publicURL})
		},
		Message:  func() herald.Message { return message("dlv_x", "+14155550100", "Your code is 123456") },
		Received: func(*testing.T) int { return srv.Received() },
		// PROVIDERS.md §0. FailNext rather than StopNumber or InvalidNumber:
		// every suite message goes to the same number, and only the next
		// request may fail.
		Fault: func(_ *testing.T, k herald.OutcomeKind) bool {
			switch k {
			case herald.OutcomeRetry:
				srv.FailNext(1, http.StatusServiceUnavailable, 0, 0)
			case herald.OutcomePermanent:
				srv.FailNext(1, http.StatusBadRequest, 21617, 0)
			case herald.OutcomeInvalidRecipient:
				srv.FailNext(1, http.StatusBadRequest, 21211, 0)
			case herald.OutcomeOptedOut:
				srv.FailNext(1, http.StatusBadRequest, 21610, 0)
			case herald.OutcomeConfigError:
				srv.FailNext(1, http.StatusUnauthorized, 20003, 0)
			default:
				return false
			}
			return true
		},
		Hang: func(*testing.T) { srv.Hang() },
		NewWithLogger: func(t *testing.T, logger *slog.Logger) herald.Provider {
			return newProvider(t, fakeSettings(srv), herald.ProviderEnv{PublicURL: publicURL, Logger: logger})
		},
		Secrets: []string{authToken},
	})
}

func TestRequest(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	for _, tc := range []struct {
		name      string
		settings  map[string]any
		env       herald.ProviderEnv
		content   herald.Content
		wantForm  map[string]string // "" means absent
		wantExtra string
	}{
		{
			name:     "from and status callback",
			settings: fakeSettings(srv),
			env:      herald.ProviderEnv{PublicURL: publicURL + "/"},
			content:  herald.Content{Body: "Hello"},
			wantForm: map[string]string{
				"To": "+14155550100", "From": fromNumber, "MessagingServiceSid": "", "Body": "Hello",
				"StatusCallback": "https://herald.example.com/hooks/twilio/status",
			},
		},
		{
			name: "messaging service, no public URL, URL appended",
			settings: func() map[string]any {
				s := fakeSettings(srv)
				delete(s, "from")
				s["messaging_service_sid"] = serviceSID
				return s
			}(),
			content: herald.Content{Body: "Track it", URL: "https://example.com/o/1"},
			wantForm: map[string]string{
				"To": "+14155550100", "From": "", "MessagingServiceSid": serviceSID,
				"Body": "Track it\nhttps://example.com/o/1", "StatusCallback": "",
			},
		},
		{
			name:     "URL only",
			settings: fakeSettings(srv),
			content:  herald.Content{URL: "https://example.com/o/2"},
			wantForm: map[string]string{"Body": "https://example.com/o/2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, tc.settings, tc.env)
			before := len(srv.Requests())
			m := message("dlv_1", "+14155550100", "")
			m.Content = tc.content
			out := send(t, p, m)
			if out.Kind != herald.OutcomeSent || !strings.HasPrefix(out.ProviderMessageID, "SM") || len(out.ProviderMessageID) != 34 {
				t.Fatalf("Send = %v %q (%s)", out.Kind, out.ProviderMessageID, out.Detail)
			}
			reqs := srv.Requests()
			if len(reqs) != before+1 {
				t.Fatalf("%d requests, want %d", len(reqs), before+1)
			}
			got := reqs[len(reqs)-1]
			for k, want := range tc.wantForm {
				if got.Get(k) != want {
					t.Errorf("%s = %q, want %q", k, got.Get(k), want)
				}
			}
		})
	}
}

func TestSentDetail(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	p := newProvider(t, fakeSettings(srv), herald.ProviderEnv{})
	for _, tc := range []struct {
		body, want string
	}{
		{"Hello", "segments=1 encoding=GSM-7"},
		{strings.Repeat("x", 161), "segments=2 encoding=GSM-7"},
		{"Hi 👋", "segments=1 encoding=UCS-2"},
	} {
		out := send(t, p, message("dlv_d", "+14155550100", tc.body))
		if out.Kind != herald.OutcomeSent || out.Detail != tc.want {
			t.Errorf("body %q: %v %q, want sent %q", tc.body, out.Kind, out.Detail, tc.want)
		}
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	// One fake serves every case: loading its API description is the slow
	// part. The cases run in order, each consuming its own scripted answer.
	srv := newFake(t)
	p := newProvider(t, fakeSettings(srv), herald.ProviderEnv{})
	for _, tc := range []struct {
		name       string
		script     func(*twiliofake.Server)
		to         string
		want       herald.OutcomeKind
		retryAfter time.Duration
	}{
		{name: "stop", script: func(s *twiliofake.Server) { s.StopNumber("+14155550111") }, to: "+14155550111", want: herald.OutcomeOptedOut},
		{name: "invalid number", script: func(s *twiliofake.Server) { s.InvalidNumber("+14155550122") }, to: "+14155550122", want: herald.OutcomeInvalidRecipient},
		{name: "21211", script: fail(400, 21211, 0), want: herald.OutcomeInvalidRecipient},
		{name: "21614 not mobile", script: fail(400, 21614, 0), want: herald.OutcomeInvalidRecipient},
		{name: "30005", script: fail(400, 30005, 0), want: herald.OutcomeInvalidRecipient},
		{name: "30006", script: fail(400, 30006, 0), want: herald.OutcomeInvalidRecipient},
		{name: "21610", script: fail(400, 21610, 0), want: herald.OutcomeOptedOut},
		{name: "30004", script: fail(400, 30004, 0), want: herald.OutcomeOptedOut},
		{name: "429 20429 Retry-After", script: fail(429, 20429, 7*time.Second), want: herald.OutcomeRetry, retryAfter: 7 * time.Second},
		{name: "429 without code", script: fail(429, 0, 3*time.Second), want: herald.OutcomeRetry, retryAfter: 3 * time.Second},
		{name: "500", script: fail(500, 20500, 0), want: herald.OutcomeRetry},
		{name: "503 HTML", script: fail(503, 0, 0), want: herald.OutcomeRetry},
		{name: "30001", script: fail(400, 30001, 0), want: herald.OutcomeRetry},
		{name: "30003", script: fail(400, 30003, 0), want: herald.OutcomeRetry},
		{name: "30008", script: fail(400, 30008, 0), want: herald.OutcomeRetry},
		{name: "20003", script: fail(401, 20003, 0), want: herald.OutcomeConfigError},
		{name: "21606", script: fail(400, 21606, 0), want: herald.OutcomeConfigError},
		{name: "21408", script: fail(400, 21408, 0), want: herald.OutcomeConfigError},
		{name: "30002", script: fail(400, 30002, 0), want: herald.OutcomeConfigError},
		{name: "30034", script: fail(400, 30034, 0), want: herald.OutcomeConfigError},
		{name: "21617", script: fail(400, 21617, 0), want: herald.OutcomePermanent},
		{name: "other 400", script: fail(400, 21999, 0), want: herald.OutcomePermanent},
		{name: "body over 1600", to: "+14155550100", want: herald.OutcomePermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.script != nil {
				tc.script(srv)
			}
			to := tc.to
			if to == "" {
				to = "+14155550100"
			}
			body := "Hello"
			if tc.name == "body over 1600" {
				body = strings.Repeat("x", 1601)
			}
			out := send(t, p, message("dlv_o", to, body))
			if out.Kind != tc.want || out.RetryAfter != tc.retryAfter {
				t.Errorf("Send = %v RetryAfter %v (%s), want %v RetryAfter %v", out.Kind, out.RetryAfter, out.Detail, tc.want, tc.retryAfter)
			}
			if out.ProviderMessageID != "" {
				t.Errorf("ProviderMessageID = %q on a failure", out.ProviderMessageID)
			}
			if strings.Contains(out.Detail, authToken) {
				t.Errorf("Detail %q contains the auth token", out.Detail)
			}
		})
	}
	if srv.Received() != 0 {
		t.Errorf("the fake accepted %d messages", srv.Received())
	}
}

func fail(status, code int, retryAfter time.Duration) func(*twiliofake.Server) {
	return func(s *twiliofake.Server) { s.FailNext(1, status, code, retryAfter) }
}

func TestWrongCredentials(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	var logs bytes.Buffer
	settings := fakeSettings(srv)
	settings["auth_token"] = "wrong-token-42"
	p := newProvider(t, settings, herald.ProviderEnv{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	out := send(t, p, message("dlv_w", "+14155550100", "Hello"))
	if out.Kind != herald.OutcomeConfigError || !strings.Contains(out.Detail, "20003") {
		t.Errorf("Send = %v (%s), want config error with 20003", out.Kind, out.Detail)
	}
	if strings.Contains(out.Detail, "wrong-token-42") || strings.Contains(logs.String(), "wrong-token-42") {
		t.Errorf("the auth token leaked: detail %q, logs %q", out.Detail, logs.String())
	}
	if logs.Len() == 0 {
		t.Error("a failed send logged nothing")
	}
}

func TestNetworkErrorRetries(t *testing.T) {
	t.Parallel()
	settings := map[string]any{
		"account_sid": accountSID, "auth_token": authToken, "from": fromNumber,
		"endpoint": "https://127.0.0.1:1", // nothing listens on port 1
	}
	out := send(t, newProvider(t, settings, herald.ProviderEnv{}), message("dlv_n", "+14155550100", "Hello"))
	if out.Kind != herald.OutcomeRetry {
		t.Errorf("Send = %v (%s), want retry", out.Kind, out.Detail)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	settings := fakeSettings(srv)
	delete(settings, "ca_pem")
	out := send(t, newProvider(t, settings, herald.ProviderEnv{}), message("dlv_c", "+14155550100", "Hello"))
	if out.Kind == herald.OutcomeSent || srv.Received() != 0 {
		t.Errorf("Send = %v (%s) to an untrusted server", out.Kind, out.Detail)
	}
}

func TestBadRecipientNotSent(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	p := newProvider(t, fakeSettings(srv), herald.ProviderEnv{})
	for _, to := range []string{"", "4155550100", "+0123", "+1415555010x", "ada@example.org"} {
		if out := send(t, p, message("dlv_r", to, "Hello")); out.Kind != herald.OutcomeInvalidRecipient {
			t.Errorf("To %q: %v (%s), want invalid recipient", to, out.Kind, out.Detail)
		}
	}
	if out := send(t, p, message("dlv_e", "+14155550100", "")); out.Kind != herald.OutcomePermanent {
		t.Errorf("empty body: %v (%s), want permanent", out.Kind, out.Detail)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("the fake saw %d requests", n)
	}
}

func TestContextCancel(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	srv.Hang()
	p := newProvider(t, fakeSettings(srv), herald.ProviderEnv{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan herald.Outcome, 1)
	go func() { done <- p.Send(ctx, message("dlv_h", "+14155550100", "Hello")) }()
	time.AfterFunc(50*time.Millisecond, cancel)
	select {
	case out := <-done:
		if out.Kind != herald.OutcomeRetry || !strings.Contains(out.Detail, context.Canceled.Error()) {
			t.Errorf("Send = %v (%s), want retry after cancel", out.Kind, out.Detail)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send did not return after its context was canceled")
	}
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	srv.Latency(time.Minute)
	p := newProvider(t, fakeSettings(srv), herald.ProviderEnv{})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	out := p.Send(ctx, message("dlv_t", "+14155550100", "Hello"))
	if out.Kind != herald.OutcomeRetry || time.Since(start) > 5*time.Second {
		t.Errorf("Send = %v (%s) after %v, want retry by the deadline", out.Kind, out.Detail, time.Since(start))
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	srv.Latency(5 * time.Millisecond)
	p := newProvider(t, fakeSettings(srv), herald.ProviderEnv{PublicURL: publicURL})
	const n = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]bool{}
	for i := range n {
		wg.Go(func() {
			out := send(t, p, message("dlv_c", "+14155550100", strings.Repeat("z", i+1)))
			mu.Lock()
			defer mu.Unlock()
			if out.Kind != herald.OutcomeSent || ids[out.ProviderMessageID] {
				t.Errorf("send %d: %v %q (%s)", i, out.Kind, out.ProviderMessageID, out.Detail)
			}
			ids[out.ProviderMessageID] = true
		})
	}
	wg.Wait()
	if srv.Received() != n {
		t.Errorf("Received = %d, want %d", srv.Received(), n)
	}
}

func TestSegments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		body     string
		n        int
		encoding string
	}{
		{"empty", "", 0, "GSM-7"},
		{"basic", "Hello, world!", 1, "GSM-7"},
		{"GSM-7 accents and symbols", "Café à 5£ @ Ørsted ¿¡ §", 1, "GSM-7"},
		{"160 GSM-7", strings.Repeat("a", 160), 1, "GSM-7"},
		{"161 GSM-7", strings.Repeat("a", 161), 2, "GSM-7"},
		{"306 GSM-7", strings.Repeat("a", 306), 2, "GSM-7"},
		{"307 GSM-7", strings.Repeat("a", 307), 3, "GSM-7"},
		{"euro counts two septets", "€" + strings.Repeat("a", 158), 1, "GSM-7"},
		{"euro tips over 160", "€" + strings.Repeat("a", 159), 2, "GSM-7"},
		{"braces", strings.Repeat("{", 80), 1, "GSM-7"},
		{"braces tip over", strings.Repeat("{", 81), 2, "GSM-7"},
		// 152 septets, then an escape pair that may not be split: it starts part 2.
		{"escape not split", strings.Repeat("a", 152) + "[" + strings.Repeat("a", 152), 3, "GSM-7"},
		{"all extension chars", "^{}\\[~]|€\f", 1, "GSM-7"},
		{"lowercase ç is not GSM-7", "ç", 1, "UCS-2"},
		{"70 UCS-2", strings.Repeat("ж", 70), 1, "UCS-2"},
		{"71 UCS-2", strings.Repeat("ж", 71), 2, "UCS-2"},
		{"134 UCS-2", strings.Repeat("ж", 134), 2, "UCS-2"},
		{"135 UCS-2", strings.Repeat("ж", 135), 3, "UCS-2"},
		{"one emoji switches all", strings.Repeat("a", 69) + "😀", 2, "UCS-2"}, // 71 units
		{"emoji is two units", strings.Repeat("😀", 35), 1, "UCS-2"},
		// 134 units would fill two parts of 67, but the pair may not straddle them.
		{"surrogate pair not split", strings.Repeat("a", 66) + "😀" + strings.Repeat("a", 66), 3, "UCS-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, enc := twilio.Segments(tc.body)
			if n != tc.n || enc != tc.encoding {
				t.Errorf("Segments = %d %s, want %d %s", n, enc, tc.n, tc.encoding)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	valid := func() map[string]any {
		return map[string]any{"account_sid": accountSID, "auth_token": authToken, "from": fromNumber}
	}
	with := func(k string, v any) map[string]any {
		s := valid()
		if v == nil {
			delete(s, k)
		} else {
			s[k] = v
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		settings any
		field    string // "" means valid
	}{
		{"valid from", valid(), ""},
		{"neither from nor service", with("from", nil), "settings.from"},
		{"messaging service only", func() map[string]any { s := with("from", nil); s["messaging_service_sid"] = serviceSID; return s }(), ""},
		{"both from and service", with("messaging_service_sid", serviceSID), "settings.messaging_service_sid"},
		{"bad account sid", with("account_sid", "AC123"), "settings.account_sid"},
		{"account sid not hex", with("account_sid", "AC"+strings.Repeat("g", 32)), "settings.account_sid"},
		{"no account sid", with("account_sid", nil), "settings.account_sid"},
		{"no auth token", with("auth_token", nil), "settings.auth_token"},
		{"from not E.164", with("from", "4155550199"), "settings.from"},
		{"bad service sid", func() map[string]any { s := with("from", nil); s["messaging_service_sid"] = "MGxyz"; return s }(), "settings.messaging_service_sid"},
		{"unknown field", with("api_key", "x"), "settings.api_key"},
		{"mistyped field", with("auth_token", 42), "settings.auth_token"},
		{"bad endpoint", with("endpoint", "ftp://example.com"), "settings.endpoint"},
		{"endpoint with credentials", with("endpoint", "https://u:p@example.com"), "settings.endpoint"},
		{"custom endpoint", with("endpoint", "https://twilio.internal.example/"), ""},
		{"bad ca_pem", with("ca_pem", "not a pem"), "settings.ca_pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(tc.settings)
			p, err := twilio.New(raw, herald.ProviderEnv{})
			if tc.field == "" {
				if err != nil || p == nil {
					t.Fatalf("New(%s) = %v", raw, err)
				}
				return
			}
			var herr *herald.Error
			if !errors.As(err, &herr) || herr.Code != herald.CodeInvalid {
				t.Fatalf("New(%s) = %v, want a CodeInvalid *herald.Error", raw, err)
			}
			found := false
			for _, f := range herr.Fields {
				found = found || f.Field == tc.field
			}
			if !found {
				t.Errorf("fields = %+v, want %s", herr.Fields, tc.field)
			}
			if strings.Contains(err.Error(), authToken) {
				t.Errorf("error %q contains the auth token", err)
			}
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	srv := newFake(t)
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusMovedPermanently, Header: http.Header{"Location": {srv.URL() + "/elsewhere"}},
			Body: http.NoBody, Request: r}, nil
	})
	env := herald.ProviderEnv{HTTPClient: &http.Client{Transport: rt}}
	// ca_pem needs an *http.Transport to put its roots in.
	raw, _ := json.Marshal(fakeSettings(srv))
	if _, err := twilio.New(raw, env); err == nil || !strings.Contains(err.Error(), "settings.ca_pem") {
		t.Errorf("New with ca_pem and a custom RoundTripper = %v, want a settings.ca_pem error", err)
	}
	settings := fakeSettings(srv)
	delete(settings, "ca_pem")
	p := newProvider(t, settings, env)
	out := send(t, p, message("dlv_3", "+14155550100", "Hello"))
	if out.Kind != herald.OutcomeConfigError {
		t.Errorf("Send = %v (%s), want config error", out.Kind, out.Detail)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
