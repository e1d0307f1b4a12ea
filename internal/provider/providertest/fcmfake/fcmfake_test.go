package fcmfake

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const project = "herald-test"

// validToken is a registration token of a realistic shape.
var testToken = "dQw4w9WgXcQ:APA91b" + strings.Repeat("Fk3_x-Z9", 17)

type key struct {
	Email, KeyID, TokenURI string
	Private                *rsa.PrivateKey
}

func parseAccount(t *testing.T, raw []byte) key {
	t.Helper()
	var sa struct {
		ClientEmail  string `json:"client_email"`
		PrivateKey   string `json:"private_key"`
		PrivateKeyID string `json:"private_key_id"`
		TokenURI     string `json:"token_uri"`
		Type         string `json:"type"`
	}
	if err := json.Unmarshal(raw, &sa); err != nil {
		t.Fatal(err)
	}
	if sa.Type != "service_account" {
		t.Fatalf("type = %q", sa.Type)
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatal("private_key is not a PKCS #8 PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key{Email: sa.ClientEmail, KeyID: sa.PrivateKeyID, TokenURI: sa.TokenURI, Private: k.(*rsa.PrivateKey)}
}

func sign(t *testing.T, k *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	in := enc(header) + "." + enc(claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func client(t *testing.T, s *Server) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(s.CAPEM())) {
		t.Fatal("CAPEM holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func claims(k key) map[string]any {
	now := time.Now().Unix()
	return map[string]any{"iss": k.Email, "aud": k.TokenURI, "scope": ScopeMessaging, "iat": now, "exp": now + 3600}
}

func fetchToken(t *testing.T, c *http.Client, k key, assertion string) (int, map[string]any) {
	t.Helper()
	resp, err := c.PostForm(k.TokenURI, url.Values{"grant_type": {grantType}, "assertion": {assertion}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestToken(t *testing.T) {
	s := New(t)
	c := client(t, s)
	k := parseAccount(t, s.ServiceAccountJSON(project))
	if k.TokenURI != s.URL()+"/token" {
		t.Fatalf("token_uri = %q", k.TokenURI)
	}
	other := parseAccount(t, s.ServiceAccountJSON(project))
	hdr := map[string]any{"alg": "RS256", "typ": "JWT", "kid": k.KeyID}
	with := func(mod func(map[string]any)) map[string]any {
		c := claims(k)
		mod(c)
		return c
	}
	now := time.Now().Unix()
	for _, tc := range []struct {
		name      string
		assertion string
		status    int
		errCode   string
	}{
		{"valid", sign(t, k.Private, hdr, claims(k)), 200, ""},
		{"cloud-platform scope", sign(t, k.Private, hdr, with(func(c map[string]any) { c["scope"] = ScopeCloudPlatform })), 200, ""},
		{"signed by another key", sign(t, other.Private, hdr, claims(k)), 400, "invalid_grant"},
		{"unknown issuer", sign(t, k.Private, hdr, with(func(c map[string]any) { c["iss"] = "x@y.iam.gserviceaccount.com" })), 400, "invalid_grant"},
		{"wrong audience", sign(t, k.Private, hdr, with(func(c map[string]any) { c["aud"] = "https://oauth2.googleapis.com/token" })), 400, "invalid_grant"},
		{"no scope", sign(t, k.Private, hdr, with(func(c map[string]any) { c["scope"] = "https://www.googleapis.com/auth/userinfo.email" })), 400, "invalid_scope"},
		{"too long", sign(t, k.Private, hdr, with(func(c map[string]any) { c["exp"] = now + 7200 })), 400, "invalid_grant"},
		{"expired", sign(t, k.Private, hdr, with(func(c map[string]any) { c["iat"], c["exp"] = now-7200, now-3600 })), 400, "invalid_grant"},
		{"HS256", sign(t, k.Private, map[string]any{"alg": "HS256"}, claims(k)), 400, "invalid_grant"},
		{"garbage", "not.a.jwt", 400, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := fetchToken(t, c, k, tc.assertion)
			if status != tc.status {
				t.Fatalf("status = %d (%v), want %d", status, body, tc.status)
			}
			if tc.status == 200 {
				if body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) || body["access_token"] == "" {
					t.Fatalf("body = %v", body)
				}
				return
			}
			if body["error"] != tc.errCode {
				t.Fatalf("error = %v, want %s", body["error"], tc.errCode)
			}
		})
	}
	if got := s.TokensIssued(); got != 2 {
		t.Fatalf("TokensIssued = %d, want 2", got)
	}

	t.Run("wrong grant type", func(t *testing.T) {
		resp, err := c.PostForm(k.TokenURI, url.Values{"grant_type": {"client_credentials"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
}

// harness posts messages:send bodies with a valid token.
type harness struct {
	t     *testing.T
	s     *Server
	c     *http.Client
	token string
}

func newHarness(t *testing.T) *harness {
	s := New(t)
	c := client(t, s)
	k := parseAccount(t, s.ServiceAccountJSON(project))
	status, body := fetchToken(t, c, k, sign(t, k.Private, map[string]any{"alg": "RS256", "typ": "JWT"}, claims(k)))
	if status != 200 {
		t.Fatalf("token: %d %v", status, body)
	}
	return &harness{t: t, s: s, c: c, token: body["access_token"].(string)}
}

type gErr struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type      string `json:"@type"`
			ErrorCode string `json:"errorCode"`
		} `json:"details"`
	} `json:"error"`
}

func (h *harness) send(projectID, token, body string) (*http.Response, gErr, []byte) {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.s.URL()+"/v1/projects/"+projectID+"/messages:send", strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e gErr
	_ = json.Unmarshal(raw, &e)
	return resp, e, raw
}

func (e gErr) fcmCode() string {
	for _, d := range e.Error.Details {
		if d.Type == "type.googleapis.com/google.firebase.fcm.v1.FcmError" {
			return d.ErrorCode
		}
	}
	return ""
}

func msg(inner string) string {
	return `{"message":{"token":"` + testToken + `"` + inner + `}}`
}

func TestSendValidation(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name   string
		body   string
		status int
		want   string // substring of error.message
	}{
		{"minimal", msg(``), 200, ""},
		{"full snake_case", msg(`,"notification":{"title":"t","body":"b"},"data":{"k":"v"},
			"android":{"priority":"HIGH","collapse_key":"c","ttl":"3600s","notification":{"notification_count":3}},
			"apns":{"headers":{"apns-priority":"10","apns-collapse-id":"c"},"payload":{"aps":{"badge":1}}},
			"webpush":{"fcm_options":{"link":"https://example.com/x"}}`), 200, ""},
		{"camelCase", msg(`,"android":{"collapseKey":"c","directBootOk":true},"fcmOptions":{"analyticsLabel":"a"}`), 200, ""},
		{"validate_only", `{"validate_only":true,` + msg(``)[1:], 200, ""},
		{"unknown top field", `{"message":{"token":"` + testToken + `"},"extra":1}`, 400, `Unknown name "extra"`},
		{"unknown message field", msg(`,"priority":"high"`), 400, `Unknown name "priority" at 'message'`},
		{"unknown android field", msg(`,"android":{"time_to_live":60}`), 400, `Unknown name "time_to_live" at 'message.android'`},
		{"unknown notification field", msg(`,"notification":{"title":"t","sound":"x"}`), 400, `Unknown name "sound"`},
		{"data not string", msg(`,"data":{"n":42}`), 400, "TYPE_STRING"},
		{"bad enum", msg(`,"android":{"priority":"URGENT"}`), 400, "TYPE_ENUM"},
		{"ttl not a duration", msg(`,"android":{"ttl":"3600"}`), 400, "duration"},
		{"ttl too long", msg(`,"android":{"ttl":"2419201s"}`), 400, "TTL"},
		{"bool mistyped", msg(`,"android":{"direct_boot_ok":"yes"}`), 400, "TYPE_BOOL"},
		{"notification not object", msg(`,"notification":"hi"`), 400, "Invalid value"},
		{"two targets", `{"message":{"token":"` + testToken + `","topic":"news"}}`, 400, "Exactly one"},
		{"no target", `{"message":{"notification":{"title":"x"}}}`, 400, "Recipient"},
		{"reserved data key", msg(`,"data":{"from":"x"}`), 400, "Invalid data payload key"},
		{"too big", msg(`,"notification":{"body":"` + strings.Repeat("x", 4097) + `"}`), 400, "too big"},
		{"bad apns-priority", msg(`,"apns":{"headers":{"apns-priority":"7"}}`), 400, "apns-priority"},
		{"http link", msg(`,"webpush":{"fcm_options":{"link":"http://example.com"}}`), 400, "HTTPS"},
		{"not json", `{"message":`, 400, "Invalid JSON"},
		{"bad token", `{"message":{"token":"short"}}`, 400, "not a valid FCM registration token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, e, raw := h.send(project, h.token, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, raw, tc.status)
			}
			if tc.status == 200 {
				var ok struct{ Name string }
				if err := json.Unmarshal(raw, &ok); err != nil || !strings.HasPrefix(ok.Name, "projects/"+project+"/messages/") {
					t.Fatalf("body = %s", raw)
				}
				return
			}
			if e.Error.Code != 400 || e.Error.Status != "INVALID_ARGUMENT" || e.fcmCode() != "INVALID_ARGUMENT" {
				t.Fatalf("error = %s", raw)
			}
			if !strings.Contains(e.Error.Message, tc.want) {
				t.Fatalf("message = %q, want it to contain %q", e.Error.Message, tc.want)
			}
		})
	}
	// validate_only is not a delivery.
	if got, want := h.s.Received(), 3; got != want {
		t.Fatalf("Received = %d, want %d", got, want)
	}
	reqs := h.s.Requests()
	if reqs[0].Proto != "HTTP/2.0" {
		t.Fatalf("Proto = %q, want HTTP/2.0", reqs[0].Proto)
	}
	if reqs[0].Message["token"] != testToken || reqs[0].Status != 200 || reqs[0].Name == "" {
		t.Fatalf("request 0 = %+v", reqs[0])
	}
}

func TestSendAuthAndFaults(t *testing.T) {
	h := newHarness(t)
	check := func(t *testing.T, projectID, token string, status int, canonical, fcmCode string) *http.Response {
		t.Helper()
		resp, e, raw := h.send(projectID, token, msg(``))
		if resp.StatusCode != status || e.Error.Status != canonical || e.fcmCode() != fcmCode {
			t.Fatalf("got %d %s, want %d %s/%s", resp.StatusCode, raw, status, canonical, fcmCode)
		}
		return resp
	}
	t.Run("no token", func(t *testing.T) { check(t, project, "", 401, "UNAUTHENTICATED", "") })
	t.Run("unknown token", func(t *testing.T) { check(t, project, "ya29.nope", 401, "UNAUTHENTICATED", "") })
	t.Run("other project", func(t *testing.T) { check(t, "someone-else", h.token, 403, "PERMISSION_DENIED", "") })
	t.Run("FailNext", func(t *testing.T) {
		h.s.FailNext(2, 429, "QUOTA_EXCEEDED", 30*time.Second)
		for range 2 {
			resp := check(t, project, h.token, 429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")
			if got := resp.Header.Get("Retry-After"); got != "30" {
				t.Fatalf("Retry-After = %q", got)
			}
		}
		check(t, project, h.token, 200, "", "")
		h.s.FailNext(1, 403, "PERMISSION_DENIED", 0)
		check(t, project, h.token, 403, "PERMISSION_DENIED", "")
	})
	t.Run("Unregister", func(t *testing.T) {
		h.s.Unregister(testToken)
		check(t, project, h.token, 404, "NOT_FOUND", "UNREGISTERED")
	})
	t.Run("ExpireTokens", func(t *testing.T) {
		h.s.ExpireTokens()
		check(t, project, h.token, 401, "UNAUTHENTICATED", "")
	})
}

func TestHang(t *testing.T) {
	h := newHarness(t)
	h.s.Hang()
	req, _ := http.NewRequest("POST", h.s.URL()+"/v1/projects/"+project+"/messages:send", bytes.NewReader([]byte(msg(``))))
	req.Header.Set("Authorization", "Bearer "+h.token)
	c := *h.c
	c.Timeout = 200 * time.Millisecond
	start := time.Now()
	if _, err := c.Do(req); err == nil {
		t.Fatal("a hung request succeeded")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
	if h.s.Received() != 0 {
		t.Fatal("a hung request was counted as received")
	}
}

func TestSchemaNames(t *testing.T) {
	for in, want := range map[string]string{"collapse_key": "collapseKey", "fcm_options": "fcmOptions", "token": "token"} {
		if got := camel(in); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
		if got := snake(want); got != in {
			t.Errorf("snake(%q) = %q, want %q", want, got, in)
		}
	}
}
