package app_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/provider/providertest/fcmfake"
)

// TestSecretsAreWriteOnly: after every kind of secret is set (provider
// credentials of every kind, a webhook's signing secret, API keys), no GET
// of any readable object — and no other answer an operator or a sending
// service can read — shows any of them.
func TestSecretsAreWriteOnly(t *testing.T) {
	unique := func(prefix string) string {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		return prefix + hex.EncodeToString(b)
	}
	apnsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(apnsKey)
	vapid, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fcmd := fcmfake.New(t)
	serviceAccount := fcmd.ServiceAccountJSON("herald-demo")
	var sa struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(serviceAccount, &sa); err != nil || sa.PrivateKey == "" {
		t.Fatalf("service account %s: %v", serviceAccount, err)
	}

	secrets := map[string]string{
		"apns private_key":          base64.StdEncoding.EncodeToString(p8)[:40],
		"fcm service_account":       strings.Split(sa.PrivateKey, "\n")[1],
		"webpush vapid_private_key": base64.RawURLEncoding.EncodeToString(vapid.Bytes()),
		"twilio auth_token":         unique("twtok"),
		"sendgrid api_key":          unique("SG."),
		"smtp password":             unique("smtppw"),
	}
	a := start(t, testConfig(t))
	adminKey := newApp(t, a, "shop")
	secrets["initial API key"] = adminKey
	c := newAPI(t, a, adminKey)

	c.must(200, "PUT", "/v1/providers/push", []map[string]any{
		{"kind": "apns", "settings": map[string]any{"team_id": "TEAM123456", "key_id": "KEY1234567", "topic": "com.example.app",
			"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}))}},
		{"kind": "fcm", "settings": map[string]any{"project_id": "herald-demo", "service_account": string(serviceAccount),
			"endpoint": fcmd.URL(), "ca_pem": fcmd.CAPEM()}},
		{"kind": "webpush", "settings": map[string]any{"vapid_public_key": base64.RawURLEncoding.EncodeToString(vapid.PublicKey().Bytes()),
			"vapid_private_key": secrets["webpush vapid_private_key"], "subject": "mailto:ops@example.com"}},
	})
	c.must(200, "PUT", "/v1/providers/sms", []map[string]any{{"kind": "twilio", "settings": map[string]any{
		"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": secrets["twilio auth_token"], "from": "+15005550006"}}})
	c.must(200, "PUT", "/v1/providers/email", []map[string]any{
		{"kind": "sendgrid", "settings": map[string]any{"api_key": secrets["sendgrid api_key"], "from": "shop@example.com"}},
		{"kind": "smtp", "settings": map[string]any{"endpoint": "127.0.0.1:1", "from": "shop@example.com",
			"username": "shop", "password": secrets["smtp password"]}},
	})
	var hook createdWebhook
	c.must(201, "POST", "/v1/webhooks", map[string]any{"url": "https://hooks.example.com/herald",
		"events": []string{"delivery.dead"}}).decode(t, &hook)
	secrets["webhook secret"] = strings.TrimPrefix(hook.Secret, "whsec_")
	var sendKey struct{ Key string }
	c.must(201, "POST", "/v1/keys", map[string]any{"name": "billing", "scope": "send"}).decode(t, &sendKey)
	secrets["send API key"] = sendKey.Key
	for name, v := range secrets {
		if len(v) < 16 {
			t.Fatalf("secret %s = %q: too short to search for", name, v)
		}
	}

	// Something in every list.
	c.must(200, "PUT", "/v1/app", map[string]any{"sms_daily_budget": 100})
	c.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com", "phone": "+14155550100"})
	c.must(201, "POST", "/v1/users/ada/devices", map[string]any{"platform": "ios", "token": strings.Repeat("a1", 32)})
	c.must(200, "PUT", "/v1/users/ada/preferences", map[string]any{"channels": map[string]bool{"push": true}})
	c.must(201, "PUT", "/v1/templates/welcome", map[string]any{"email": map[string]any{"subject": "Hi", "text": "Hello {{.name}}"}})
	c.must(201, "PUT", "/v1/categories/news", map[string]any{"critical": false})
	c.must(200, "PUT", "/v1/topics/news/subscribers", map[string]any{"add": []string{"ada"}})
	var acc struct{ ID string }
	c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
		"content": map[string]any{"body": "hello", "subject": "hi", "title": "hi"}}).decode(t, &acc)
	// The providers cannot be reached: wait until every delivery has a
	// failed attempt in its timeline, whose detail is the provider's error.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var n notificationView
		c.must(200, "GET", "/v1/notifications/"+acc.ID, nil).decode(t, &n)
		tried := len(n.Deliveries) == 3
		for _, d := range n.Deliveries {
			tried = tried && d.Attempts >= 1
		}
		if tried {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries not tried: %+v", n)
		}
	}

	reads := []string{"/v1/app", "/v1/keys", "/v1/providers/push", "/v1/providers/sms", "/v1/providers/email", "/v1/webhooks",
		"/v1/users/ada", "/v1/users/ada/devices", "/v1/users/ada/preferences", "/v1/templates", "/v1/templates/welcome",
		"/v1/categories", "/v1/categories/news", "/v1/topics/news", "/v1/topics/news/subscribers",
		"/v1/notifications", "/v1/notifications/" + acc.ID, "/v1/dead-letters", "/v1/analytics", "/v1/stats",
		"/metrics", "/readyz", "/admin/"}
	sender := newAPI(t, a, sendKey.Key)
	for _, path := range reads {
		for _, client := range []*api{c, sender} {
			r := client.do("GET", path, nil)
			if client == c && r.status != 200 {
				t.Errorf("GET %s: %d %s", path, r.status, r.body)
			}
			for name, v := range secrets {
				if strings.Contains(string(r.body), v) {
					t.Errorf("GET %s shows the %s", path, name)
				}
			}
		}
	}
	// Creating a second endpoint shows only its own secret, and a repeated
	// PUT of providers answers the kinds alone.
	r := c.must(200, "PUT", "/v1/providers/sms", []map[string]any{{"kind": "twilio", "settings": map[string]any{
		"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": secrets["twilio auth_token"], "from": "+15005550006"}}})
	r2 := c.must(201, "POST", "/v1/webhooks", map[string]any{"url": "https://hooks.example.com/other", "events": []string{"delivery.sent"}})
	for name, v := range secrets {
		if strings.Contains(string(r.body), v) || strings.Contains(string(r2.body), v) {
			t.Errorf("a write's answer shows the %s", name)
		}
	}
}
