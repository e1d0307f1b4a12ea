package webpush_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/providertest"
	"github.com/heraldhq/herald/internal/provider/providertest/webpushfake"
	"github.com/heraldhq/herald/internal/provider/webpush"
)

// vapidKeys is a VAPID key pair in the settings' encoding.
type vapidKeys struct{ public, private string }

func newVAPIDKeys(t testing.TB) vapidKeys {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return vapidKeys{base64.RawURLEncoding.EncodeToString(pub), base64.RawURLEncoding.EncodeToString(priv)}
}

// fixture is a fake push service that requires VAPID with keys.
type fixture struct {
	srv  *webpushfake.Server
	keys vapidKeys
}

func newFixture(t testing.TB, opts ...webpushfake.Option) fixture {
	t.Helper()
	keys := newVAPIDKeys(t)
	return fixture{srv: webpushfake.New(t, append([]webpushfake.Option{webpushfake.RequireVAPID(keys.public)}, opts...)...), keys: keys}
}

func (f fixture) settings() map[string]any {
	return map[string]any{
		"vapid_public_key":  f.keys.public,
		"vapid_private_key": f.keys.private,
		"subject":           "mailto:ops@example.com",
		"ca_pem":            f.srv.CAPEM(),
	}
}

// testEnv allows private targets: the fake listens on 127.0.0.1.
func testEnv() herald.ProviderEnv { return herald.ProviderEnv{AllowPrivateTargets: true} }

func newProvider(t testing.TB, settings map[string]any, env herald.ProviderEnv) *webpush.Provider {
	t.Helper()
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	p, err := webpush.New(raw, env)
	if err != nil {
		t.Fatalf("webpush.New(%s): %v", raw, err)
	}
	return p
}

func (f fixture) message(id string) herald.Message {
	sub := f.srv.NewSubscription()
	return herald.Message{
		AppID: "app_1", NotificationID: "ntf_1", DeliveryID: id,
		Channel: herald.ChannelPush, Platform: herald.PlatformWeb, Priority: herald.PriorityNormal,
		To: sub.Endpoint, Subscription: &sub,
		Content: herald.Content{Title: "Order shipped", Body: "It is on its way.", URL: "https://shop.example/o/42",
			Icon: "https://shop.example/icon.png", Data: map[string]string{"order": "42"}},
	}
}

func send(t testing.TB, p herald.Provider, m herald.Message) herald.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Send(ctx, m)
}

func TestConformance(t *testing.T) {
	f := newFixture(t)
	providertest.Run(t, providertest.Suite{
		Kind:     webpush.Kind,
		New:      func(t *testing.T) herald.Provider { return newProvider(t, f.settings(), testEnv()) },
		Message:  func() herald.Message { return f.message("dlv_x") },
		Received: func(*testing.T) int { return len(f.srv.Requests()) },
		// Each fault is scripted with FailNext(1, ...), so it hits only the
		// next request whatever its subscription; 410 is what Gone answers.
		Fault: func(_ *testing.T, k herald.OutcomeKind) bool {
			switch k {
			case herald.OutcomeRetry:
				f.srv.FailNext(1, http.StatusServiceUnavailable, 0)
			case herald.OutcomePermanent:
				f.srv.FailNext(1, http.StatusBadRequest, 0)
			case herald.OutcomeInvalidRecipient:
				f.srv.FailNext(1, http.StatusGone, 0)
			case herald.OutcomeConfigError:
				f.srv.FailNext(1, http.StatusForbidden, 0)
			default: // Web Push has no opt-out answer.
				return false
			}
			return true
		},
		Hang: func(*testing.T) { f.srv.Hang() },
		NewWithLogger: func(t *testing.T, logger *slog.Logger) herald.Provider {
			env := testEnv()
			env.Logger = logger
			return newProvider(t, f.settings(), env)
		},
		Secrets: []string{f.keys.private},
	})
}

func TestSendDecryptsToContent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := newProvider(t, f.settings(), testEnv())
	m := f.message("dlv_content")
	out := send(t, p, m)
	if out.Kind != herald.OutcomeSent {
		t.Fatalf("Send = %v (%s), want sent", out.Kind, out.Detail)
	}
	reqs := f.srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the fake accepted %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if out.ProviderMessageID != r.Location {
		t.Errorf("ProviderMessageID = %q, want the Location %q", out.ProviderMessageID, r.Location)
	}
	var got map[string]any
	if err := json.Unmarshal(r.Payload, &got); err != nil {
		t.Fatalf("payload %q is not JSON: %v", r.Payload, err)
	}
	want := map[string]any{"title": "Order shipped", "body": "It is on its way.", "url": "https://shop.example/o/42",
		"icon": "https://shop.example/icon.png", "data": map[string]any{"order": "42"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decrypted payload (-want +got):\n%s", diff)
	}
	if r.Endpoint != m.Subscription.Endpoint {
		t.Errorf("posted to %q, want %q", r.Endpoint, m.Subscription.Endpoint)
	}
	if r.TTL != 86400 || r.Urgency != "normal" || r.Topic != webpush.Topic("dlv_content") {
		t.Errorf("TTL, Urgency, Topic = %d, %q, %q; want 86400, normal, %q", r.TTL, r.Urgency, r.Topic, webpush.Topic("dlv_content"))
	}
	if got := r.Header.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type = %q", got)
	}
	if r.VAPID.Audience != f.srv.URL() || r.VAPID.Subject != "mailto:ops@example.com" {
		t.Errorf("VAPID claims = %+v, want aud %q and the subject", r.VAPID, f.srv.URL())
	}
	if ahead := time.Until(r.VAPID.Expiry); ahead < 11*time.Hour || ahead > 24*time.Hour {
		t.Errorf("VAPID exp is %v ahead, want between 11 h and 24 h", ahead)
	}
}

func TestSendHighPriority(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := newProvider(t, f.settings(), testEnv())
	m := f.message("dlv_high")
	m.Priority = herald.PriorityHigh
	if out := send(t, p, m); out.Kind != herald.OutcomeSent {
		t.Fatalf("Send = %v (%s), want sent", out.Kind, out.Detail)
	}
	r := f.srv.Requests()[0]
	if r.Urgency != "high" || r.TTL != 3600 {
		t.Errorf("Urgency, TTL = %q, %d; want high, 3600", r.Urgency, r.TTL)
	}
}

// TestSendFreshEncryption checks that two sends of one message use a fresh
// salt and ephemeral key, and that a repeat keeps its Topic.
func TestSendFreshEncryption(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := newProvider(t, f.settings(), testEnv())
	m := f.message("dlv_repeat")
	for range 2 {
		if out := send(t, p, m); out.Kind != herald.OutcomeSent {
			t.Fatalf("Send = %v (%s), want sent", out.Kind, out.Detail)
		}
	}
	reqs := f.srv.Requests()
	if reqs[0].Topic != reqs[1].Topic {
		t.Errorf("a repeated delivery changed its Topic: %q, %q", reqs[0].Topic, reqs[1].Topic)
	}
	if string(reqs[0].Payload) != string(reqs[1].Payload) {
		t.Errorf("payloads differ: %q, %q", reqs[0].Payload, reqs[1].Payload)
	}
}

func TestVAPIDTokenCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	env := testEnv()
	env.Now = clock
	p := newProvider(t, f.settings(), env)
	auth := func() string {
		t.Helper()
		if out := send(t, p, f.message("dlv_cache")); out.Kind != herald.OutcomeSent {
			t.Fatalf("Send = %v (%s), want sent", out.Kind, out.Detail)
		}
		reqs := f.srv.Requests()
		return reqs[len(reqs)-1].Header.Get("Authorization")
	}
	first := auth()
	if !strings.HasPrefix(first, "vapid t=") || !strings.HasSuffix(first, ", k="+f.keys.public) {
		t.Fatalf("Authorization = %q, want vapid t=…, k=<public key>", first)
	}
	if second := auth(); second != first {
		t.Errorf("a second send within the hour signed a new token")
	}
	mu.Lock()
	now = now.Add(61 * time.Minute)
	mu.Unlock()
	if third := auth(); third == first {
		t.Errorf("after an hour the cached token was still used")
	}
}

func TestWrongVAPIDKeyIsConfigError(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other := newVAPIDKeys(t)
	s := f.settings()
	s["vapid_public_key"], s["vapid_private_key"] = other.public, other.private
	p := newProvider(t, s, testEnv())
	out := send(t, p, f.message("dlv_wrongkey"))
	if out.Kind != herald.OutcomeConfigError {
		t.Fatalf("Send = %v (%s), want config_error", out.Kind, out.Detail)
	}
	if len(f.srv.Requests()) != 0 {
		t.Fatal("the fake accepted a request signed with the wrong key")
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter time.Duration
		want       herald.OutcomeKind
	}{
		{"404 expired subscription", 404, 0, herald.OutcomeInvalidRecipient},
		{"410 unsubscribed", 410, 0, herald.OutcomeInvalidRecipient},
		{"429 throttled", 429, 30 * time.Second, herald.OutcomeRetry},
		{"500", 500, 0, herald.OutcomeRetry},
		{"503 with Retry-After", 503, 2 * time.Minute, herald.OutcomeRetry},
		{"401 VAPID missing", 401, 0, herald.OutcomeConfigError},
		{"403 VAPID invalid", 403, 0, herald.OutcomeConfigError},
		{"400 bad request", 400, 0, herald.OutcomePermanent},
		{"413 too large", 413, 0, herald.OutcomePermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			p := newProvider(t, f.settings(), testEnv())
			f.srv.FailNext(1, tc.status, tc.retryAfter)
			out := send(t, p, f.message("dlv_outcome"))
			if out.Kind != tc.want || out.RetryAfter != tc.retryAfter {
				t.Fatalf("Send = %v, RetryAfter %v (%s); want %v, %v", out.Kind, out.RetryAfter, out.Detail, tc.want, tc.retryAfter)
			}
			if !strings.Contains(out.Detail, "webpush:") {
				t.Errorf("Detail %q does not say where it came from", out.Detail)
			}
			// The fault was one-shot: the next send goes through.
			if out := send(t, p, f.message("dlv_after")); out.Kind != herald.OutcomeSent {
				t.Fatalf("the send after the fault = %v (%s), want sent", out.Kind, out.Detail)
			}
		})
	}
}

func TestGoneSubscription(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := newProvider(t, f.settings(), testEnv())
	m := f.message("dlv_gone")
	f.srv.Gone(m.Subscription.Endpoint)
	if out := send(t, p, m); out.Kind != herald.OutcomeInvalidRecipient {
		t.Fatalf("Send = %v (%s), want invalid_recipient", out.Kind, out.Detail)
	}
}

func TestBadMessages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := newProvider(t, f.settings(), testEnv())
	for _, tc := range []struct {
		name   string
		change func(m *herald.Message)
		want   herald.OutcomeKind
	}{
		{"no subscription", func(m *herald.Message) { m.Subscription = nil }, herald.OutcomeInvalidRecipient},
		{"bad p256dh", func(m *herald.Message) { m.Subscription.Keys.P256dh = "AAAA" }, herald.OutcomeInvalidRecipient},
		{"bad auth", func(m *herald.Message) { m.Subscription.Keys.Auth = "!!" }, herald.OutcomeInvalidRecipient},
		{"relative endpoint", func(m *herald.Message) { m.Subscription.Endpoint = "/push/x" }, herald.OutcomeInvalidRecipient},
		{"ftp endpoint", func(m *herald.Message) { m.Subscription.Endpoint = "ftp://127.0.0.1/x" }, herald.OutcomePermanent},
		{"no delivery id", func(m *herald.Message) { m.DeliveryID = "" }, herald.OutcomePermanent},
		{"payload too large", func(m *herald.Message) { m.Content.Body = strings.Repeat("x", 4000) }, herald.OutcomePermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := f.message("dlv_bad")
			tc.change(&m)
			before := f.srv.Attempts()
			out := send(t, p, m)
			if out.Kind != tc.want {
				t.Fatalf("Send = %v (%s), want %v", out.Kind, out.Detail, tc.want)
			}
			if got := f.srv.Attempts() - before; got != 0 {
				t.Fatalf("the fake saw %d requests, want none", got)
			}
		})
	}
}

// TestPayloadLimit checks the boundary: the largest payload that fits is
// sent, one byte more is refused without a request.
func TestPayloadLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := newProvider(t, f.settings(), testEnv())
	m := f.message("dlv_limit")
	m.Content = herald.Content{}
	overhead := len(`{"body":""}`)
	m.Content.Body = strings.Repeat("x", 3993-overhead)
	if out := send(t, p, m); out.Kind != herald.OutcomeSent {
		t.Fatalf("a 3993-byte payload: Send = %v (%s), want sent", out.Kind, out.Detail)
	}
	m.Content.Body += "x"
	before := f.srv.Attempts()
	if out := send(t, p, m); out.Kind != herald.OutcomePermanent {
		t.Fatalf("a 3994-byte payload: Send = %v (%s), want permanent", out.Kind, out.Detail)
	}
	if f.srv.Attempts() != before {
		t.Fatal("an oversized payload reached the push service")
	}
}

func TestPrivateTargetsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := newProvider(t, f.settings(), herald.ProviderEnv{}) // AllowPrivateTargets off
	for _, tc := range []struct {
		name, endpoint, detail string
	}{
		{"loopback IP", f.srv.NewSubscription().Endpoint, "loopback"},
		// localhost is a name: the dialer refuses it after resolution.
		{"name resolving to loopback", strings.Replace(f.srv.NewSubscription().Endpoint, "127.0.0.1", "localhost", 1), "loopback"},
		{"metadata", "https://169.254.169.254/latest/meta-data", "link-local"},
		{"private", "https://10.0.0.1/push", "private"},
		{"http", "http://push.example.com/x", "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := f.message("dlv_private")
			m.Subscription.Endpoint, m.To = tc.endpoint, tc.endpoint
			before := f.srv.Attempts()
			out := send(t, p, m)
			if out.Kind != herald.OutcomePermanent {
				t.Fatalf("Send = %v (%s), want permanent", out.Kind, out.Detail)
			}
			if !strings.Contains(out.Detail, tc.detail) {
				t.Errorf("Detail %q does not mention %q", out.Detail, tc.detail)
			}
			if f.srv.Attempts() != before {
				t.Fatal("a refused endpoint reached the fake")
			}
		})
	}
}

func TestHTTPEndpointAllowedForPrivateTargets(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(plain.Close)
	f := newFixture(t)
	p := newProvider(t, f.settings(), testEnv())
	m := f.message("dlv_http")
	m.Subscription.Endpoint = plain.URL + "/push/1"
	out := send(t, p, m)
	if out.Kind != herald.OutcomeSent || out.ProviderMessageID != "dlv_http" {
		t.Fatalf("Send = %v %q (%s), want sent with the delivery id as message id", out.Kind, out.ProviderMessageID, out.Detail)
	}
	if hits.Load() != 1 {
		t.Fatalf("the http endpoint saw %d requests, want 1", hits.Load())
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, f.srv.NewSubscription().Endpoint, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	p := newProvider(t, f.settings(), testEnv())
	m := f.message("dlv_redirect")
	m.Subscription.Endpoint = redirect.URL + "/push/1"
	// The redirecting server's certificate is httptest's too, which ca_pem trusts.
	out := send(t, p, m)
	if out.Kind != herald.OutcomePermanent {
		t.Fatalf("Send = %v (%s), want permanent", out.Kind, out.Detail)
	}
	if f.srv.Attempts() != 0 {
		t.Fatal("the redirect was followed")
	}
}

func TestNetworkErrors(t *testing.T) {
	t.Parallel()
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		p := newProvider(t, f.settings(), testEnv())
		closed := httptest.NewUnstartedServer(nil)
		addr := closed.Listener.Addr().String()
		_ = closed.Listener.Close()
		m := f.message("dlv_refused")
		m.Subscription.Endpoint = "https://" + addr + "/push/1"
		if out := send(t, p, m); out.Kind != herald.OutcomeRetry {
			t.Fatalf("Send = %v (%s), want retry", out.Kind, out.Detail)
		}
	})
	t.Run("slow past the deadline", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		p := newProvider(t, f.settings(), testEnv())
		f.srv.Latency(5 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		out := p.Send(ctx, f.message("dlv_slow"))
		if out.Kind != herald.OutcomeRetry {
			t.Fatalf("Send = %v (%s), want retry", out.Kind, out.Detail)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("Send took %v past a 200 ms deadline", took)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		s := f.settings()
		delete(s, "ca_pem")
		p := newProvider(t, s, testEnv())
		if out := send(t, p, f.message("dlv_tls")); out.Kind != herald.OutcomePermanent {
			t.Fatalf("Send = %v (%s), want permanent", out.Kind, out.Detail)
		}
	})
}

func TestCancelWhileHung(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := newProvider(t, f.settings(), testEnv())
	f.srv.Hang()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan herald.Outcome)
	go func() { done <- p.Send(ctx, f.message("dlv_hang")) }()
	// Cancel once the request has reached the fake.
	deadline := time.Now().Add(5 * time.Second)
	for f.srv.Attempts() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the fake")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case out := <-done:
		if out.Kind != herald.OutcomeRetry || !strings.Contains(out.Detail, context.Canceled.Error()) {
			t.Fatalf("Send = %v (%s), want retry for the cancellation", out.Kind, out.Detail)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send did not return after its context was canceled")
	}
}

func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := newProvider(t, f.settings(), testEnv())
	const n = 50
	msgs := make([]herald.Message, n)
	for i := range msgs {
		msgs[i] = f.message("dlv_c")
		msgs[i].DeliveryID = "dlv_c" + string(rune('A'+i%26)) + strings.Repeat("z", i/26)
		msgs[i].Content.Body = msgs[i].DeliveryID
	}
	f.srv.FailNext(5, 503, time.Second)
	outs := make([]herald.Outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { outs[i] = send(t, p, msgs[i]) })
	}
	wg.Wait()
	var sent, retry int
	for _, o := range outs {
		switch o.Kind {
		case herald.OutcomeSent:
			sent++
		case herald.OutcomeRetry:
			retry++
		default:
			t.Errorf("outcome %v (%s)", o.Kind, o.Detail)
		}
	}
	if sent != n-5 || retry != 5 {
		t.Fatalf("sent %d, retry %d; want %d and 5", sent, retry, n-5)
	}
	// Each accepted request decrypted to its own message's body.
	for _, r := range f.srv.Requests() {
		var pl struct{ Body string }
		if err := json.Unmarshal(r.Payload, &pl); err != nil || r.Topic != webpush.Topic(pl.Body) {
			t.Errorf("request with payload %q carries Topic %q of another delivery", r.Payload, r.Topic)
		}
	}
}

func TestSettingsValidation(t *testing.T) {
	t.Parallel()
	good := newVAPIDKeys(t)
	other := newVAPIDKeys(t)
	valid := func() map[string]any {
		return map[string]any{"vapid_public_key": good.public, "vapid_private_key": good.private, "subject": "https://example.com/contact"}
	}
	for _, tc := range []struct {
		name   string
		change func(s map[string]any)
		fields []string
	}{
		{"empty", func(s map[string]any) { clear(s) }, []string{"settings.vapid_public_key", "settings.vapid_private_key", "settings.subject"}},
		{"mismatched key pair", func(s map[string]any) { s["vapid_private_key"] = other.private }, []string{"settings.vapid_private_key"}},
		{"public key not a point", func(s map[string]any) { s["vapid_public_key"] = strings.Repeat("A", 87) }, []string{"settings.vapid_public_key"}},
		{"public key too short", func(s map[string]any) { s["vapid_public_key"] = "BAAA" }, []string{"settings.vapid_public_key"}},
		{"private key not base64url", func(s map[string]any) { s["vapid_private_key"] = "not base64!" }, []string{"settings.vapid_private_key"}},
		{"subject not a URI", func(s map[string]any) { s["subject"] = "ops@example.com" }, []string{"settings.subject"}},
		{"subject http", func(s map[string]any) { s["subject"] = "http://example.com" }, []string{"settings.subject"}},
		{"subject mailto without address", func(s map[string]any) { s["subject"] = "mailto:" }, []string{"settings.subject"}},
		{"unknown field", func(s map[string]any) { s["endpoint"] = "https://push.example" }, []string{"settings.endpoint"}},
		{"mistyped field", func(s map[string]any) { s["subject"] = 42 }, []string{"settings.subject"}},
		{"bad ca_pem", func(s map[string]any) { s["ca_pem"] = "not a certificate" }, []string{"settings.ca_pem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.change(s)
			raw, _ := json.Marshal(s)
			_, err := webpush.New(raw, herald.ProviderEnv{})
			var herr *herald.Error
			if !errors.As(err, &herr) || herr.Code != herald.CodeInvalid {
				t.Fatalf("New(%s) = %v, want a CodeInvalid *herald.Error", raw, err)
			}
			var got []string
			for _, fe := range herr.Fields {
				got = append(got, fe.Field)
			}
			if diff := cmp.Diff(tc.fields, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("valid with padding and mailto", func(t *testing.T) {
		s := valid()
		s["vapid_public_key"] = good.public + "="
		s["subject"] = "mailto:ops@example.com"
		raw, _ := json.Marshal(s)
		if _, err := webpush.New(raw, herald.ProviderEnv{}); err != nil {
			t.Fatalf("New(%s): %v", raw, err)
		}
	})
}

func BenchmarkSend(b *testing.B) {
	f := newFixture(b)
	p := newProvider(b, f.settings(), testEnv())
	m := f.message("dlv_bench")
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if out := p.Send(context.Background(), m); out.Kind != herald.OutcomeSent {
				b.Errorf("Send = %v (%s)", out.Kind, out.Detail)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sends/s")
}
