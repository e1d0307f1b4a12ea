package app_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/provider/providertest/apnsfake"
	"github.com/heraldhq/herald/internal/provider/providertest/fcmfake"
	"github.com/heraldhq/herald/internal/provider/providertest/sendgridfake"
	"github.com/heraldhq/herald/internal/provider/providertest/twiliofake"
	"github.com/heraldhq/herald/internal/provider/providertest/webpushfake"
)

// TestEveryChannel: a user with an iPhone, an Android phone, a browser
// subscription, a phone number and an email address gets one notification
// on every channel, through providers configured over the API and the
// providers' fakes, which check each request as the real services do.
// Then APNs reports the iPhone gone: it is disabled, visible in the API,
// and the next push to it is suppressed as invalid_recipient.
func TestEveryChannel(t *testing.T) {
	const teamID, keyID = "TEAM123456", "KEY1234567"
	apnsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(apnsKey)
	vapid, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vapidPub := base64.RawURLEncoding.EncodeToString(vapid.PublicKey().Bytes())
	const twilioSID, twilioToken, sendgridKey = "AC0123456789abcdef0123456789abcdef", "twilio-secret", "SG.test-key"

	apnsd := apnsfake.New(t, apnsfake.WithKey(teamID, keyID, &apnsKey.PublicKey))
	fcmd := fcmfake.New(t)
	webd := webpushfake.New(t, webpushfake.RequireVAPID(vapidPub))
	twiliod := twiliofake.New(t, twiliofake.WithAccount(twilioSID, twilioToken))
	sendgridd := sendgridfake.New(t, sendgridfake.WithAPIKey(sendgridKey))

	a := start(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	c.must(200, "PUT", "/v1/providers/push", []map[string]any{
		{"kind": "apns", "settings": map[string]any{"team_id": teamID, "key_id": keyID, "topic": apnsfake.DefaultTopic,
			"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})),
			"endpoint":    apnsd.URL(), "ca_pem": apnsd.CAPEM()}},
		{"kind": "fcm", "settings": map[string]any{"project_id": "herald-demo",
			"service_account": string(fcmd.ServiceAccountJSON("herald-demo")), "endpoint": fcmd.URL(), "ca_pem": fcmd.CAPEM()}},
		{"kind": "webpush", "settings": map[string]any{"vapid_public_key": vapidPub,
			"vapid_private_key": base64.RawURLEncoding.EncodeToString(vapid.Bytes()),
			"subject":           "mailto:ops@example.com", "ca_pem": webd.CAPEM()}},
	})
	c.must(200, "PUT", "/v1/providers/sms", []map[string]any{{"kind": "twilio", "settings": map[string]any{
		"account_sid": twilioSID, "auth_token": twilioToken, "from": "+15005550006",
		"endpoint": twiliod.URL(), "ca_pem": twiliod.CAPEM()}}})
	c.must(200, "PUT", "/v1/providers/email", []map[string]any{{"kind": "sendgrid", "settings": map[string]any{
		"api_key": sendgridKey, "from": "shop@example.com", "endpoint": sendgridd.URL(), "ca_pem": sendgridd.CAPEM()}}})

	c.must(201, "PUT", "/v1/users/ada", map[string]any{"email": "ada@example.com", "phone": "+14155550100"})
	iosToken := strings.Repeat("a1", 32)
	var iphone struct{ ID string }
	c.must(201, "POST", "/v1/users/ada/devices", map[string]any{"platform": "ios", "token": iosToken}).decode(t, &iphone)
	c.must(201, "POST", "/v1/users/ada/devices", map[string]any{"platform": "android", "token": "fcm:" + strings.Repeat("Ab9_-", 30)})
	sub := webd.NewSubscription()
	c.must(201, "POST", "/v1/users/ada/devices", map[string]any{"platform": "web", "subscription": sub})

	send := func() notificationView {
		var acc struct{ ID string }
		c.must(202, "POST", "/v1/notifications", map[string]any{"to": []any{map[string]any{"user_id": "ada"}},
			"content": map[string]any{"title": "Your order shipped", "body": "It arrives Tuesday.", "subject": "Shipped",
				"url": "https://shop.example/orders/42", "data": map[string]any{"order": "42"}}}).decode(t, &acc)
		return c.waitDone(acc.ID, 30*time.Second)
	}
	n := send()
	byProvider := map[string]int{}
	for _, d := range n.Deliveries {
		if d.Status != "sent" {
			t.Errorf("%s delivery via %q: %s %s (%+v)", d.Channel, d.Provider, d.Status, d.Reason, d.Timeline)
		}
		byProvider[d.Provider]++
	}
	want := map[string]int{"apns": 1, "fcm": 1, "webpush": 1, "twilio": 1, "sendgrid": 1}
	for k, v := range want {
		if byProvider[k] != v {
			t.Errorf("deliveries by provider = %v, want one each of %v", byProvider, want)
			break
		}
	}
	for name, got := range map[string]int{"APNs": apnsd.Received(), "FCM": fcmd.Received(), "Twilio": twiliod.Received(),
		"SendGrid": sendgridd.Received(), "Web Push": len(webd.Requests())} {
		if got != 1 {
			t.Errorf("the %s fake accepted %d requests, want 1", name, got)
		}
	}
	if reqs := webd.Requests(); len(reqs) == 1 {
		var payload map[string]any
		if err := json.Unmarshal(reqs[0].Payload, &payload); err != nil || payload["title"] != "Your order shipped" {
			t.Errorf("the browser decrypted %s (%v)", reqs[0].Payload, err)
		}
	}

	// Apple says the iPhone's token is gone.
	apnsd.Unregister(iosToken)
	n = send()
	for _, d := range n.Deliveries {
		if d.Provider == "apns" && (d.Status != "failed" || d.Reason != "invalid_recipient") {
			t.Errorf("APNs delivery to an unregistered token: %s %s", d.Status, d.Reason)
		}
	}
	var devices struct{ Data []struct{ ID, Status string } }
	c.must(200, "GET", "/v1/users/ada/devices", nil).decode(t, &devices)
	for _, d := range devices.Data {
		if d.ID == iphone.ID && d.Status != "invalid" {
			t.Errorf("the unregistered iPhone shows status %q, want invalid", d.Status)
		}
	}
	n = send()
	suppressed := 0
	for _, d := range n.Deliveries {
		if d.Status == "suppressed" && d.Reason == "invalid_recipient" {
			suppressed++
		}
	}
	if suppressed != 1 || apnsd.Received() != 1 {
		t.Errorf("after the iPhone was disabled: %d suppressed as invalid_recipient, APNs got %d; want 1 and 1",
			suppressed, apnsd.Received())
	}
}
