package apns_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/apns"
	"github.com/heraldhq/herald/internal/provider/providertest"
	"github.com/heraldhq/herald/internal/provider/providertest/apnsfake"
)

const (
	teamID = "TEAM123456"
	keyID  = "KEY9876543"
	device = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
)

// clock is a settable clock shared by the provider and the fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newKey returns a fresh ES256 key and its .p8 PEM.
func newKey(t testing.TB) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// fixture is a fake APNs that trusts one key, and the settings that use it.
type fixture struct {
	srv      *apnsfake.Server
	clock    *clock
	settings map[string]any
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	key, p8 := newKey(t)
	c := newClock()
	srv := apnsfake.New(t, apnsfake.WithKey(teamID, keyID, &key.PublicKey), apnsfake.WithClock(c.Now))
	return &fixture{srv: srv, clock: c, settings: map[string]any{
		"team_id": teamID, "key_id": keyID, "private_key": p8,
		"topic": apnsfake.DefaultTopic, "endpoint": srv.URL(), "ca_pem": srv.CAPEM(),
	}}
}

func (f *fixture) provider(t testing.TB) *apns.Provider {
	t.Helper()
	raw, err := json.Marshal(f.settings)
	if err != nil {
		t.Fatal(err)
	}
	p, err := apns.New(raw, herald.ProviderEnv{Now: f.clock.Now, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatalf("apns.New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func message(id string) herald.Message {
	return herald.Message{
		AppID: "app_1", NotificationID: "ntf_1", DeliveryID: id,
		Channel: herald.ChannelPush, Platform: herald.PlatformIOS, To: device,
		Priority: herald.PriorityHigh,
		Content:  herald.Content{Title: "Your order shipped", Body: "It is on its way."},
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
	p8 := f.settings["private_key"].(string)
	block, _ := pem.Decode([]byte(p8))
	if block == nil {
		t.Fatal("the fixture's private key is not PEM")
	}
	providertest.Run(t, providertest.Suite{
		Kind:     apns.Kind,
		New:      func(t *testing.T) herald.Provider { return f.provider(t) },
		Message:  func() herald.Message { return message("dlv_x") },
		Received: func(*testing.T) int { return f.srv.Received() },
		// Each fault is scripted with FailNext(1, ...), so it hits only the
		// next request. 400 BadDeviceToken stands for an unregistered token
		// (Unregister would stick to the device for every later send), and
		// 403 InvalidProviderToken for bad credentials (ExpiredProviderToken
		// makes the adapter mint a new token and post again).
		Fault: func(_ *testing.T, k herald.OutcomeKind) bool {
			switch k {
			case herald.OutcomeRetry:
				f.srv.FailNext(1, http.StatusServiceUnavailable, "ServiceUnavailable", "")
			case herald.OutcomePermanent:
				f.srv.FailNext(1, http.StatusBadRequest, "PayloadEmpty", "")
			case herald.OutcomeInvalidRecipient:
				f.srv.FailNext(1, http.StatusBadRequest, "BadDeviceToken", "")
			case herald.OutcomeConfigError:
				f.srv.FailNext(1, http.StatusForbidden, "InvalidProviderToken", "")
			default: // APNs has no opt-out answer.
				return false
			}
			return true
		},
		Hang: func(*testing.T) { f.srv.Hang() },
		NewWithLogger: func(t *testing.T, logger *slog.Logger) herald.Provider {
			raw, err := json.Marshal(f.settings)
			if err != nil {
				t.Fatal(err)
			}
			p, err := apns.New(raw, herald.ProviderEnv{Now: f.clock.Now, HTTPClient: &http.Client{Timeout: 10 * time.Second}, Logger: logger})
			if err != nil {
				t.Fatalf("apns.New: %v", err)
			}
			t.Cleanup(func() { _ = p.Close() })
			return p
		},
		Secrets: []string{p8, base64.StdEncoding.EncodeToString(block.Bytes)},
	})
}

func TestSendAlert(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t)
	const id = "0190C5A3-7B1E-7C4D-8E2F-0123456789AB"
	m := message(id)
	m.Content.URL = "https://example.com/orders/42"
	m.Content.Data = map[string]string{"order_id": "42"}
	out := send(t, p, m)
	if out.Kind != herald.OutcomeSent {
		t.Fatalf("Send = %v (%s), want sent", out.Kind, out.Detail)
	}
	reqs := f.srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the fake answered %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	wantID := strings.ToLower(id)
	if out.ProviderMessageID != wantID {
		t.Errorf("ProviderMessageID = %q, want the delivery id as a lowercase UUID %q", out.ProviderMessageID, wantID)
	}
	if r.ProtoMajor != 2 || r.DeviceToken != device {
		t.Errorf("request proto %d, device %q; want HTTP/2 to %q", r.ProtoMajor, r.DeviceToken, device)
	}
	headers := map[string]string{
		"apns-topic": apnsfake.DefaultTopic, "apns-push-type": "alert", "apns-priority": "10",
		"apns-collapse-id": id, "apns-id": wantID,
		"apns-expiration": strconv.FormatInt(f.clock.Now().Add(apns.Expiration).Unix(), 10),
	}
	for name, want := range headers {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	want := map[string]any{
		"aps":      map[string]any{"alert": map[string]any{"title": "Your order shipped", "body": "It is on its way."}, "sound": "default"},
		"url":      "https://example.com/orders/42",
		"order_id": "42",
	}
	if diff := cmp.Diff(want, r.Payload); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
}

func TestSendBackgroundAndNormalPriority(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t)

	m := message("dlv_bg")
	m.Content = herald.Content{Data: map[string]string{"sync": "1"}}
	if out := send(t, p, m); out.Kind != herald.OutcomeSent {
		t.Fatalf("background Send = %v (%s), want sent", out.Kind, out.Detail)
	}
	m = message("dlv_normal")
	m.Priority = herald.PriorityNormal
	if out := send(t, p, m); out.Kind != herald.OutcomeSent {
		t.Fatalf("normal Send = %v (%s), want sent", out.Kind, out.Detail)
	}

	reqs := f.srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("the fake answered %d requests, want 2", len(reqs))
	}
	bg := reqs[0]
	if got, want := bg.Header.Get("apns-push-type")+"/"+bg.Header.Get("apns-priority"), "background/5"; got != want {
		t.Errorf("background push type/priority = %s, want %s", got, want)
	}
	if bg.Header.Get("apns-id") != "" {
		t.Errorf("apns-id = %q for a delivery id that is not a UUID, want none", bg.Header.Get("apns-id"))
	}
	if diff := cmp.Diff(map[string]any{"aps": map[string]any{"content-available": float64(1)}, "sync": "1"}, bg.Payload); diff != "" {
		t.Errorf("background payload (-want +got):\n%s", diff)
	}
	if got := reqs[1].Header.Get("apns-priority"); got != "5" {
		t.Errorf("normal-priority alert has apns-priority %q, want 5", got)
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status     int
		reason     string
		retryAfter string
		want       herald.OutcomeKind
		wantAfter  time.Duration
	}{
		{410, "ExpiredToken", "", herald.OutcomeInvalidRecipient, 0},
		{400, "BadDeviceToken", "", herald.OutcomeInvalidRecipient, 0},
		{400, "DeviceTokenNotForTopic", "", herald.OutcomeInvalidRecipient, 0},
		{429, "TooManyRequests", "30", herald.OutcomeRetry, 30 * time.Second},
		{429, "TooManyRequests", "", herald.OutcomeRetry, 0},
		{500, "InternalServerError", "", herald.OutcomeRetry, 0},
		{503, "ServiceUnavailable", "7", herald.OutcomeRetry, 7 * time.Second},
		{503, "Shutdown", "", herald.OutcomeRetry, 0},
		{400, "IdleTimeout", "", herald.OutcomeRetry, 0},
		{403, "InvalidProviderToken", "", herald.OutcomeConfigError, 0},
		{403, "MissingProviderToken", "", herald.OutcomeConfigError, 0},
		{403, "BadCertificate", "", herald.OutcomeConfigError, 0},
		{403, "BadCertificateEnvironment", "", herald.OutcomeConfigError, 0},
		{403, "Forbidden", "", herald.OutcomeConfigError, 0},
		{403, "UnrelatedKeyIdInToken", "", herald.OutcomeConfigError, 0},
		{403, "BadEnvironmentKeyIdInToken", "", herald.OutcomeConfigError, 0},
		{403, "BadEnvironmentKeyInToken", "", herald.OutcomeConfigError, 0},
		{400, "BadTopic", "", herald.OutcomeConfigError, 0},
		{400, "TopicDisallowed", "", herald.OutcomeConfigError, 0},
		{400, "MissingTopic", "", herald.OutcomeConfigError, 0},
		{429, "TooManyProviderTokenUpdates", "", herald.OutcomeConfigError, 0},
		{400, "BadCollapseId", "", herald.OutcomePermanent, 0},
		{400, "BadExpirationDate", "", herald.OutcomePermanent, 0},
		{400, "BadMessageId", "", herald.OutcomePermanent, 0},
		{400, "BadPriority", "", herald.OutcomePermanent, 0},
		{400, "DuplicateHeaders", "", herald.OutcomePermanent, 0},
		{400, "InvalidPushType", "", herald.OutcomePermanent, 0},
		{400, "PayloadEmpty", "", herald.OutcomePermanent, 0},
		{404, "BadPath", "", herald.OutcomePermanent, 0},
		{405, "MethodNotAllowed", "", herald.OutcomePermanent, 0},
		{413, "PayloadTooLarge", "", herald.OutcomePermanent, 0},
	}
	f := newFixture(t)
	p := f.provider(t)
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status)+"_"+tt.reason, func(t *testing.T) {
			f.srv.FailNext(1, tt.status, tt.reason, tt.retryAfter)
			out := send(t, p, message("dlv_"+tt.reason))
			if out.Kind != tt.want || out.RetryAfter != tt.wantAfter {
				t.Errorf("Send = %v after %v (%s), want %v after %v", out.Kind, out.RetryAfter, out.Detail, tt.want, tt.wantAfter)
			}
			if !strings.Contains(out.Detail, tt.reason) || !strings.Contains(out.Detail, strconv.Itoa(tt.status)) {
				t.Errorf("Detail %q does not name status %d and reason %s", out.Detail, tt.status, tt.reason)
			}
		})
	}
}

func TestUnregistered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t)
	f.srv.Unregister(device)
	out := send(t, p, message("dlv_gone"))
	if out.Kind != herald.OutcomeInvalidRecipient {
		t.Fatalf("Send = %v (%s), want invalid_recipient", out.Kind, out.Detail)
	}
	if !strings.Contains(out.Detail, "410 Unregistered") || !strings.Contains(out.Detail, "invalid since") {
		t.Errorf("Detail %q lacks the reason and the timestamp", out.Detail)
	}
}

func TestInvalidDeviceTokenNotSent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t)
	for _, to := range []string{"", "not-hex", "abc", "../../admin"} {
		m := message("dlv_bad")
		m.To = to
		if out := send(t, p, m); out.Kind != herald.OutcomeInvalidRecipient {
			t.Errorf("Send to %q = %v (%s), want invalid_recipient", to, out.Kind, out.Detail)
		}
	}
	if n := len(f.srv.Requests()); n != 0 {
		t.Errorf("the fake answered %d requests, want 0", n)
	}
}

func TestTokenCachedAndRefreshed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t)
	for i := range 50 {
		if out := send(t, p, message("dlv_"+strconv.Itoa(i))); out.Kind != herald.OutcomeSent {
			t.Fatalf("send %d = %v (%s), want sent", i, out.Kind, out.Detail)
		}
		f.clock.Add(time.Second)
	}
	if got := f.srv.DistinctTokens(); got != 1 {
		t.Fatalf("50 sends used %d provider tokens, want 1", got)
	}
	f.clock.Add(50 * time.Minute)
	if out := send(t, p, message("dlv_later")); out.Kind != herald.OutcomeSent {
		t.Fatalf("send after 50 minutes = %v (%s), want sent", out.Kind, out.Detail)
	}
	if got := f.srv.DistinctTokens(); got != 2 {
		t.Fatalf("after 50 minutes, %d provider tokens were used, want 2", got)
	}
	if got := len(f.srv.Requests()); got != 51 {
		t.Errorf("the fake answered %d requests, want 51 (no token was rejected)", got)
	}
}

func TestExpiredProviderTokenRefreshedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t)
	if out := send(t, p, message("dlv_1")); out.Kind != herald.OutcomeSent {
		t.Fatalf("first Send = %v (%s), want sent", out.Kind, out.Detail)
	}
	f.srv.FailNext(1, http.StatusForbidden, "ExpiredProviderToken", "")
	if out := send(t, p, message("dlv_2")); out.Kind != herald.OutcomeSent {
		t.Fatalf("Send after ExpiredProviderToken = %v (%s), want sent", out.Kind, out.Detail)
	}
	reqs := f.srv.Requests()
	if len(reqs) != 3 || reqs[1].Reason != "ExpiredProviderToken" || reqs[2].Status != http.StatusOK {
		t.Fatalf("requests = %+v, want sent, expired, sent", reqs)
	}
	if reqs[2].Token == reqs[1].Token {
		t.Error("the retry reused the rejected provider token")
	}
	if got := f.srv.DistinctTokens(); got != 2 {
		t.Errorf("%d provider tokens were used, want 2", got)
	}
	// The fresh token is cached in turn.
	if out := send(t, p, message("dlv_3")); out.Kind != herald.OutcomeSent {
		t.Fatalf("third Send = %v (%s), want sent", out.Kind, out.Detail)
	}
	if got := f.srv.DistinctTokens(); got != 2 {
		t.Errorf("%d provider tokens were used after one more send, want 2", got)
	}
}

func TestExpiredProviderTokenTwiceIsConfigError(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t)
	// APNs keeps calling the token expired, fresh or not.
	f.srv.FailNext(5, http.StatusForbidden, "ExpiredProviderToken", "")
	out := send(t, p, message("dlv_skew"))
	if out.Kind != herald.OutcomeConfigError {
		t.Fatalf("Send = %v (%s), want config_error", out.Kind, out.Detail)
	}
	if n := len(f.srv.Requests()); n != 2 {
		t.Errorf("the fake answered %d requests, want 2 (one retry only)", n)
	}
}

func TestClockSkewDetected(t *testing.T) {
	t.Parallel()
	key, p8 := newKey(t)
	ours := newClock()
	theirs := func() time.Time { return ours.Now().Add(61 * time.Minute) }
	srv := apnsfake.New(t, apnsfake.WithKey(teamID, keyID, &key.PublicKey), apnsfake.WithClock(theirs))
	raw, _ := json.Marshal(map[string]any{
		"team_id": teamID, "key_id": keyID, "private_key": p8,
		"topic": apnsfake.DefaultTopic, "endpoint": srv.URL(), "ca_pem": srv.CAPEM(),
	})
	p, err := apns.New(raw, herald.ProviderEnv{Now: ours.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	out := send(t, p, message("dlv_skew"))
	if out.Kind != herald.OutcomeConfigError || !strings.Contains(out.Detail, "ExpiredProviderToken") {
		t.Fatalf("Send = %v (%s), want config_error naming ExpiredProviderToken", out.Kind, out.Detail)
	}
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("the fake answered %d requests, want 2 (one retry only)", n)
	}
}

func TestWrongKeyIsConfigErrorWithoutSecrets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, other := newKey(t)
	f.settings["private_key"] = other
	p := f.provider(t)
	out := send(t, p, message("dlv_wrongkey"))
	if out.Kind != herald.OutcomeConfigError || !strings.Contains(out.Detail, "InvalidProviderToken") {
		t.Fatalf("Send = %v (%s), want config_error InvalidProviderToken", out.Kind, out.Detail)
	}
	reqs := f.srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the fake answered %d requests, want 1", len(reqs))
	}
	if strings.Contains(out.Detail, reqs[0].Token) || strings.Contains(out.Detail, "PRIVATE KEY") {
		t.Errorf("Detail %q leaks a credential", out.Detail)
	}
}

func TestUntrustedServerIsConfigError(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	delete(f.settings, "ca_pem")
	p := f.provider(t)
	if out := send(t, p, message("dlv_tls")); out.Kind != herald.OutcomeConfigError {
		t.Fatalf("Send = %v (%s), want config_error", out.Kind, out.Detail)
	}
}

func TestPayloadTooLargeNotSent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t)
	m := message("dlv_big")
	m.Content.Body = strings.Repeat("x", apns.MaxPayload)
	out := send(t, p, m)
	if out.Kind != herald.OutcomePermanent {
		t.Fatalf("Send = %v (%s), want permanent", out.Kind, out.Detail)
	}
	if n := len(f.srv.Requests()); n != 0 {
		t.Errorf("the fake answered %d requests, want 0", n)
	}
	// Just under the limit is sent.
	m.Content.Body = strings.Repeat("x", apns.MaxPayload-200)
	if out := send(t, p, m); out.Kind != herald.OutcomeSent {
		t.Fatalf("Send under the limit = %v (%s), want sent", out.Kind, out.Detail)
	}
}

func TestReservedDataKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t)
	m := message("dlv_aps")
	m.Content.Data = map[string]string{"aps": "x"}
	if out := send(t, p, m); out.Kind != herald.OutcomePermanent {
		t.Fatalf("Send = %v (%s), want permanent", out.Kind, out.Detail)
	}
}

func TestHangingServer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t)
	f.srv.Hang()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	out := p.Send(ctx, message("dlv_hang"))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Send took %v against a hanging server with a 300ms deadline", took)
	}
	if out.Kind != herald.OutcomeRetry {
		t.Fatalf("Send = %v (%s), want retry", out.Kind, out.Detail)
	}
}

func TestCanceledMidFlight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t)
	f.srv.Latency(5 * time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	out := p.Send(ctx, message("dlv_cancel"))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Send took %v after its context was canceled", took)
	}
	if out.Kind == herald.OutcomeSent {
		t.Fatal("a canceled Send reported sent")
	}
	if n := f.srv.Received(); n != 0 {
		t.Errorf("the fake accepted %d messages, want 0", n)
	}
}

func TestConcurrentSendsShareOneConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.provider(t)
	f.srv.Latency(20 * time.Millisecond) // keep streams open at the same time
	const n = 50
	outs := make([]herald.Outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { outs[i] = send(t, p, message("dlv_c"+strconv.Itoa(i))) })
	}
	wg.Wait()
	for i, out := range outs {
		if out.Kind != herald.OutcomeSent {
			t.Errorf("send %d = %v (%s), want sent", i, out.Kind, out.Detail)
		}
	}
	conns := map[string]int{}
	for _, r := range f.srv.Requests() {
		conns[r.RemoteAddr]++
	}
	if len(conns) != 1 {
		t.Errorf("50 concurrent sends used %d connections (%v), want 1", len(conns), conns)
	}
	if got := f.srv.Connections(); got != 1 {
		t.Errorf("50 concurrent sends opened %d connections, want 1", got)
	}
	if got := f.srv.DistinctTokens(); got != 1 {
		t.Errorf("50 concurrent sends used %d provider tokens, want 1", got)
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsaPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}))
	_, p8 := newKey(t)
	valid := func() map[string]any {
		return map[string]any{"team_id": teamID, "key_id": keyID, "private_key": p8, "topic": "com.example.app"}
	}
	tests := []struct {
		name  string
		edit  func(map[string]any)
		field string
	}{
		{"bad PEM", func(s map[string]any) { s["private_key"] = "not a key" }, "settings.private_key"},
		{"RSA key", func(s map[string]any) { s["private_key"] = rsaPEM }, "settings.private_key"},
		{"missing key", func(s map[string]any) { delete(s, "private_key") }, "settings.private_key"},
		{"missing topic", func(s map[string]any) { delete(s, "topic") }, "settings.topic"},
		{"missing team", func(s map[string]any) { delete(s, "team_id") }, "settings.team_id"},
		{"short key id", func(s map[string]any) { s["key_id"] = "ABC" }, "settings.key_id"},
		{"unknown field", func(s map[string]any) { s["certificate"] = "x" }, "settings.certificate"},
		{"mistyped field", func(s map[string]any) { s["topic"] = 7 }, "settings.topic"},
		{"http endpoint", func(s map[string]any) { s["endpoint"] = "http://api.push.apple.com" }, "settings.endpoint"},
		{"endpoint with path", func(s map[string]any) { s["endpoint"] = "https://api.push.apple.com/3/device" }, "settings.endpoint"},
		{"bad ca_pem", func(s map[string]any) { s["ca_pem"] = "nope" }, "settings.ca_pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.edit(s)
			raw, _ := json.Marshal(s)
			_, err := apns.New(raw, herald.ProviderEnv{})
			var herr *herald.Error
			if !errors.As(err, &herr) || herr.Code != herald.CodeInvalid {
				t.Fatalf("New = %v, want a CodeInvalid *herald.Error", err)
			}
			var fields []string
			for _, f := range herr.Fields {
				fields = append(fields, f.Field)
			}
			if len(fields) != 1 || fields[0] != tt.field {
				t.Errorf("invalid fields = %v, want [%s]", fields, tt.field)
			}
			if strings.Contains(err.Error(), "BEGIN PRIVATE KEY") || strings.Contains(err.Error(), p8[30:60]) {
				t.Errorf("error %q quotes the private key", err)
			}
		})
	}

	t.Run("valid with default endpoint", func(t *testing.T) {
		raw, _ := json.Marshal(valid())
		p, err := apns.New(raw, herald.ProviderEnv{})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if p.Kind() != apns.Kind {
			t.Errorf("Kind = %q", p.Kind())
		}
	})
	t.Run("not an object", func(t *testing.T) {
		_, err := apns.New(json.RawMessage(`["x"]`), herald.ProviderEnv{})
		if herald.ErrorCode(err) != herald.CodeInvalid {
			t.Fatalf("New = %v, want CodeInvalid", err)
		}
	})
}

func BenchmarkSend(b *testing.B) {
	f := newFixture(b)
	p := f.provider(b)
	m := message("0190c5a3-7b1e-7c4d-8e2f-0123456789ab")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if out := p.Send(ctx, m); out.Kind != herald.OutcomeSent {
				b.Errorf("Send = %v (%s)", out.Kind, out.Detail)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sends/s")
}
