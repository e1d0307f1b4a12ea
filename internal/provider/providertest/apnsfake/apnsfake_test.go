package apnsfake_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald/internal/provider/providertest/apnsfake"
)

const (
	teamID = "TEAM123456"
	keyID  = "KEY9876543"
	device = "00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0"
	valid  = `{"aps":{"alert":{"title":"Hi","body":"There"}}}`
)

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t *testing.T, key any, method jwt.SigningMethod, kid, iss string, iat time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims{"iss": iss, "iat": iat.Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// client trusts srv and speaks HTTP/2, or HTTP/1.1 only when h1.
func client(t *testing.T, srv *apnsfake.Server, h1 bool) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(srv.CAPEM())) {
		t.Fatal("CAPEM holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: !h1}
	if h1 {
		var p http.Protocols
		p.SetHTTP1(true)
		tr.Protocols = &p
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

type answer struct {
	status    int
	reason    string
	timestamp int64
	header    http.Header
}

func do(t *testing.T, c *http.Client, method, url string, header map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Reason    string `json:"reason"`
		Timestamp int64  `json:"timestamp"`
	}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("error body %q is not JSON: %v", raw, err)
		}
	} else if len(raw) != 0 {
		t.Errorf("200 answer has body %q, want empty", raw)
	}
	return answer{status: resp.StatusCode, reason: e.Reason, timestamp: e.Timestamp, header: resp.Header}
}

func TestChecks(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	now := time.Now()
	srv := apnsfake.New(t, apnsfake.WithKey(teamID, keyID, &key.PublicKey), apnsfake.WithClock(func() time.Time { return now }))
	c := client(t, srv, false)
	good := sign(t, key, jwt.SigningMethodES256, keyID, teamID, now)
	headers := func(edit func(map[string]string)) map[string]string {
		h := map[string]string{
			"authorization": "bearer " + good, "apns-topic": apnsfake.DefaultTopic,
			"apns-push-type": "alert", "apns-priority": "10",
		}
		if edit != nil {
			edit(h)
		}
		return h
	}
	path := srv.URL() + "/3/device/" + device
	tests := []struct {
		name       string
		method     string
		url        string
		header     map[string]string
		body       string
		wantStatus int
		wantReason string
	}{
		{"valid", "POST", path, headers(nil), valid, 200, ""},
		{"GET", "GET", path, headers(nil), "", 405, "MethodNotAllowed"},
		{"bad path", "POST", srv.URL() + "/3/devices/" + device, headers(nil), valid, 404, "BadPath"},
		{"no device", "POST", srv.URL() + "/3/device/", headers(nil), valid, 400, "MissingDeviceToken"},
		{"non-hex device", "POST", srv.URL() + "/3/device/xyz", headers(nil), valid, 400, "BadDeviceToken"},
		{"no token", "POST", path, headers(func(h map[string]string) { delete(h, "authorization") }), valid, 403, "MissingProviderToken"},
		{"not bearer", "POST", path, headers(func(h map[string]string) { h["authorization"] = "Basic x" }), valid, 403, "InvalidProviderToken"},
		{"other key", "POST", path, headers(func(h map[string]string) {
			h["authorization"] = "bearer " + sign(t, newKey(t), jwt.SigningMethodES256, keyID, teamID, now)
		}), valid, 403, "InvalidProviderToken"},
		{"unknown kid", "POST", path, headers(func(h map[string]string) {
			h["authorization"] = "bearer " + sign(t, key, jwt.SigningMethodES256, "OTHERKEY00", teamID, now)
		}), valid, 403, "InvalidProviderToken"},
		{"wrong iss", "POST", path, headers(func(h map[string]string) {
			h["authorization"] = "bearer " + sign(t, key, jwt.SigningMethodES256, keyID, "OTHERTEAM0", now)
		}), valid, 403, "InvalidProviderToken"},
		{"HS256", "POST", path, headers(func(h map[string]string) {
			h["authorization"] = "bearer " + sign(t, []byte("secret"), jwt.SigningMethodHS256, keyID, teamID, now)
		}), valid, 403, "InvalidProviderToken"},
		{"iat over an hour old", "POST", path, headers(func(h map[string]string) {
			h["authorization"] = "bearer " + sign(t, key, jwt.SigningMethodES256, keyID, teamID, now.Add(-61*time.Minute))
		}), valid, 403, "ExpiredProviderToken"},
		{"iat 59 minutes old", "POST", path, headers(func(h map[string]string) {
			h["authorization"] = "bearer " + sign(t, key, jwt.SigningMethodES256, keyID, teamID, now.Add(-59*time.Minute))
		}), valid, 200, ""},
		{"no topic", "POST", path, headers(func(h map[string]string) { delete(h, "apns-topic") }), valid, 400, "MissingTopic"},
		{"other topic", "POST", path, headers(func(h map[string]string) { h["apns-topic"] = "com.other" }), valid, 400, "TopicDisallowed"},
		{"bad push type", "POST", path, headers(func(h map[string]string) { h["apns-push-type"] = "loud" }), valid, 400, "InvalidPushType"},
		{"bad priority", "POST", path, headers(func(h map[string]string) { h["apns-priority"] = "7" }), valid, 400, "BadPriority"},
		{"background at 10", "POST", path, headers(func(h map[string]string) { h["apns-push-type"] = "background" }), valid, 400, "BadPriority"},
		{"bad apns-id", "POST", path, headers(func(h map[string]string) { h["apns-id"] = "dlv_1" }), valid, 400, "BadMessageId"},
		{"uppercase apns-id", "POST", path, headers(func(h map[string]string) {
			h["apns-id"] = "0190C5A3-7B1E-7C4D-8E2F-0123456789AB"
		}), valid, 400, "BadMessageId"},
		{"bad expiration", "POST", path, headers(func(h map[string]string) { h["apns-expiration"] = "tomorrow" }), valid, 400, "BadExpirationDate"},
		{"long collapse id", "POST", path, headers(func(h map[string]string) { h["apns-collapse-id"] = strings.Repeat("c", 65) }), valid, 400, "BadCollapseId"},
		{"empty payload", "POST", path, headers(nil), "", 400, "PayloadEmpty"},
		{"payload too large", "POST", path, headers(nil), `{"aps":{},"x":"` + strings.Repeat("x", apnsfake.MaxPayload) + `"}`, 413, "PayloadTooLarge"},
		{"payload not JSON", "POST", path, headers(nil), "hello", 400, "BadPayload"},
		{"payload without aps", "POST", path, headers(nil), `{"alert":"x"}`, 400, "BadPayload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, c, tt.method, tt.url, tt.header, tt.body)
			if got.status != tt.wantStatus || got.reason != tt.wantReason {
				t.Errorf("answer = %d %q, want %d %q", got.status, got.reason, tt.wantStatus, tt.wantReason)
			}
			if got.status == 200 && got.header.Get("apns-id") == "" {
				t.Error("200 answer without apns-id")
			}
		})
	}
	if got := srv.Received(); got != 2 {
		t.Errorf("Received = %d, want 2", got)
	}
	reqs := srv.Requests()
	if len(reqs) != len(tests) {
		t.Fatalf("Requests has %d entries, want %d", len(reqs), len(tests))
	}
	first := reqs[0]
	if first.DeviceToken != device || first.Token != good || first.Status != 200 || first.ProtoMajor != 2 {
		t.Errorf("first request recorded as %+v", first)
	}
	if _, ok := first.Payload["aps"].(map[string]any); !ok {
		t.Errorf("recorded payload %v lacks aps", first.Payload)
	}
}

func TestHTTP1Refused(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	srv := apnsfake.New(t, apnsfake.WithKey(teamID, keyID, &key.PublicKey))
	h := map[string]string{
		"authorization": "bearer " + sign(t, key, jwt.SigningMethodES256, keyID, teamID, time.Now()),
		"apns-topic":    apnsfake.DefaultTopic,
	}
	got := do(t, client(t, srv, true), "POST", srv.URL()+"/3/device/"+device, h, valid)
	if got.status != http.StatusHTTPVersionNotSupported {
		t.Errorf("HTTP/1.1 request answered %d %q, want 505", got.status, got.reason)
	}
	if srv.Received() != 0 {
		t.Error("an HTTP/1.1 request was accepted")
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	srv := apnsfake.New(t, apnsfake.WithKey(teamID, keyID, &key.PublicKey))
	c := client(t, srv, false)
	h := map[string]string{
		"authorization": "bearer " + sign(t, key, jwt.SigningMethodES256, keyID, teamID, time.Now()),
		"apns-topic":    apnsfake.DefaultTopic,
	}
	url := srv.URL() + "/3/device/" + device

	srv.FailNext(2, http.StatusServiceUnavailable, "ServiceUnavailable", "5")
	for i := range 2 {
		got := do(t, c, "POST", url, h, valid)
		if got.status != 503 || got.reason != "ServiceUnavailable" || got.header.Get("Retry-After") != "5" {
			t.Errorf("scripted failure %d = %d %q Retry-After %q", i, got.status, got.reason, got.header.Get("Retry-After"))
		}
	}
	if got := do(t, c, "POST", url, h, valid); got.status != 200 {
		t.Errorf("after the scripted failures: %d %q, want 200", got.status, got.reason)
	}

	before := time.Now()
	srv.Unregister(device)
	got := do(t, c, "POST", url, h, valid)
	if got.status != http.StatusGone || got.reason != "Unregistered" {
		t.Errorf("unregistered device answered %d %q, want 410 Unregistered", got.status, got.reason)
	}
	if got.timestamp < before.Add(-time.Second).UnixMilli() || got.timestamp > time.Now().UnixMilli() {
		t.Errorf("timestamp %d is not the unregistration time in milliseconds", got.timestamp)
	}

	other := strings.Repeat("ab", 32)
	srv.Latency(150 * time.Millisecond)
	start := time.Now()
	if got := do(t, c, "POST", srv.URL()+"/3/device/"+other, h, valid); got.status != 200 {
		t.Errorf("with latency: %d %q, want 200", got.status, got.reason)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("answer came after %v, want at least 150ms", took)
	}

	srv.Hang()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL()+"/3/device/"+other, strings.NewReader(valid))
	for k, v := range h {
		req.Header.Set(k, v)
	}
	if resp, err := c.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("a hanging server answered %d", resp.StatusCode)
	}
	if got := srv.Received(); got != 2 {
		t.Errorf("Received = %d, want 2", got)
	}
	if got := srv.DistinctTokens(); got != 1 {
		t.Errorf("DistinctTokens = %d, want 1", got)
	}
	if got := srv.Connections(); got != 1 {
		t.Errorf("Connections = %d, want 1", got)
	}
}
