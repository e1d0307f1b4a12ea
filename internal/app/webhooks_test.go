package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/app"
)

// receiver is a webhook endpoint: a real HTTP server that records every
// post and answers from a script (then 200).
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []post
	// answers are the statuses of the first posts; later ones get 200.
	answers []int
}

type post struct {
	id, timestamp, signature string
	body                     []byte
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	t.Helper()
	r := &receiver{answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, post{id: req.Header.Get("webhook-id"), timestamp: req.Header.Get("webhook-timestamp"),
			signature: req.Header.Get("webhook-signature"), body: body})
		status := 200
		if len(r.answers) > 0 {
			status, r.answers = r.answers[0], r.answers[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) posts() []post {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]post(nil), r.got...)
}

// waitPosts polls until the receiver has n posts and returns them.
func (r *receiver) waitPosts(t *testing.T, n int) []post {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := r.posts()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver got %d posts in 30s, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verify checks a post as a receiver following the Standard Webhooks spec
// would: the signature is "v1," + base64(HMAC-SHA256(key, id.timestamp.body))
// with the key the base64 after "whsec_", and the timestamp is recent.
func verify(t *testing.T, secret string, p post) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if !strings.HasPrefix(secret, "whsec_") || err != nil || len(key) == 0 {
		t.Fatalf("secret %q is not whsec_<base64>", secret)
	}
	ts, err := strconv.ParseInt(p.timestamp, 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		t.Errorf("webhook-timestamp %q is not a recent Unix time", p.timestamp)
	}
	if !strings.HasPrefix(p.id, "msg_") {
		t.Errorf("webhook-id = %q", p.id)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(p.id + "." + p.timestamp + "."))
	m.Write(p.body)
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	ok := false
	for _, sig := range strings.Fields(p.signature) {
		v, s, found := strings.Cut(sig, ",")
		ok = ok || (found && v == "v1" && hmac.Equal([]byte(s), []byte(want)))
	}
	if !ok {
		t.Errorf("webhook-signature %q does not verify (want v1,%s)", p.signature, want)
	}
}

type webhookPayload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      struct {
		NotificationID string `json:"notification_id"`
		DeliveryID     string `json:"delivery_id"`
		UserID         string `json:"user_id"`
		Channel        string `json:"channel"`
		Status         string `json:"status"`
		Reason         string `json:"reason"`
		Attempt        int    `json:"attempt"`
		Provider       string `json:"provider"`
		Detail         string `json:"detail"`
	} `json:"data"`
}

func decodePayload(t *testing.T, p post) webhookPayload {
	t.Helper()
	var w webhookPayload
	if err := json.Unmarshal(p.body, &w); err != nil {
		t.Fatalf("payload %s: %v", p.body, err)
	}
	return w
}

type createdWebhook struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret"`
	Status string   `json:"status"`
}

func createWebhook(t *testing.T, c *api, url string, events ...string) createdWebhook {
	t.Helper()
	var w createdWebhook
	c.must(201, "POST", "/v1/webhooks", map[string]any{"url": url, "events": events}).decode(t, &w)
	return w
}

func webhookConfig(t *testing.T) app.Config {
	cfg := testConfig(t)
	cfg.MaxAttempts = 3
	cfg.RetryBackoff = 10 * time.Millisecond
	cfg.WebhookRetryBase = 50 * time.Millisecond
	return cfg
}

// TestDeadDeliveryPostsOneSignedWebhook: a delivery that goes dead reaches
// the endpoint subscribed to delivery.dead exactly once, signed, with the
// delivery's data; an endpoint subscribed to something else gets none of it.
func TestDeadDeliveryPostsOneSignedWebhook(t *testing.T) {
	c, _, twiliod := smsSetup(t, webhookConfig(t))
	dead, sent := newReceiver(t), newReceiver(t)
	hook := createWebhook(t, c, dead.srv.URL+"/hooks", "delivery.dead")
	if hook.Secret == "" || hook.Status != "active" || len(hook.Events) != 1 {
		t.Fatalf("created webhook = %+v", hook)
	}
	sentHook := createWebhook(t, c, sent.srv.URL, "delivery.sent")

	n := deadSMS(t, c, twiliod, 3)
	got := dead.waitPosts(t, 1)
	verify(t, hook.Secret, got[0])
	p := decodePayload(t, got[0])
	d := n.Deliveries[0]
	if p.Type != "delivery.dead" || p.Data.NotificationID != n.ID || p.Data.DeliveryID != d.ID || p.Data.UserID != "ada" ||
		p.Data.Channel != "sms" || p.Data.Status != "dead" || p.Data.Reason != "retries_exhausted" || p.Data.Attempt != 3 ||
		p.Data.Provider != "twilio" || p.Data.Detail == "" || p.Timestamp.IsZero() {
		t.Errorf("payload = %s", got[0].body)
	}

	// A later delivery that is sent reaches the other endpoint; by then the
	// dead one's events have all been matched: still exactly one post.
	sendSMS(t, c)
	sp := sent.waitPosts(t, 1)
	verify(t, sentHook.Secret, sp[0])
	if pt := decodePayload(t, sp[0]); pt.Type != "delivery.sent" || pt.Data.Status != "sent" {
		t.Errorf("the delivery.sent endpoint got %s", sp[0].body)
	}
	if all := dead.posts(); len(all) != 1 {
		t.Errorf("the delivery.dead endpoint got %d posts, want exactly 1", len(all))
	}
	if all := sent.posts(); len(all) != 1 {
		t.Errorf("the delivery.sent endpoint got %d posts, want 1 (the dead delivery was never sent)", len(all))
	}

	// The list shows both endpoints, without secrets.
	var list struct {
		Data []map[string]any `json:"data"`
	}
	c.must(200, "GET", "/v1/webhooks", nil).decode(t, &list)
	if len(list.Data) != 2 || list.Data[0]["id"] != hook.ID || list.Data[0]["secret"] != nil {
		t.Errorf("GET /v1/webhooks = %+v", list.Data)
	}
}

// TestWebhookRetriesKeepTheirID: a receiver failing twice gets the same
// webhook-id on each of the three attempts, each signature valid.
func TestWebhookRetriesKeepTheirID(t *testing.T) {
	c, _, _ := smsSetup(t, webhookConfig(t))
	r := newReceiver(t, 500, 503)
	hook := createWebhook(t, c, r.srv.URL, "delivery.sent")
	sendSMS(t, c)
	got := r.waitPosts(t, 3)
	for _, p := range got {
		verify(t, hook.Secret, p)
		if p.id != got[0].id || string(p.body) != string(got[0].body) {
			t.Errorf("attempt with webhook-id %q and body %s, want %q and the first body", p.id, p.body, got[0].id)
		}
	}
	waitMetricLine(t, c, `herald_webhook_posts_total{outcome="delivered"} 1`)
	if m := string(c.must(200, "GET", "/metrics", nil).body); !strings.Contains(m, `herald_webhook_posts_total{outcome="failed"} 2`) {
		t.Errorf("metrics:\n%s", grepLines(m, "herald_webhook_posts_total"))
	}

}

// TestWebhookGoneDisablesTheEndpoint: a 410 disables the endpoint; later
// events are not posted to it.
func TestWebhookGoneDisablesTheEndpoint(t *testing.T) {
	c, _, _ := smsSetup(t, webhookConfig(t))
	gone, other := newReceiver(t, 410), newReceiver(t)
	hook := createWebhook(t, c, gone.srv.URL, "delivery.sent")
	sendSMS(t, c)
	gone.waitPosts(t, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var list struct{ Data []createdWebhook }
		c.must(200, "GET", "/v1/webhooks", nil).decode(t, &list)
		if len(list.Data) == 1 && list.Data[0].ID == hook.ID && list.Data[0].Status == "disabled" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a 410 the endpoint is %+v, want disabled", list.Data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	createWebhook(t, c, other.srv.URL, "delivery.sent")
	sendSMS(t, c)
	other.waitPosts(t, 1)
	if n := len(gone.posts()); n != 1 {
		t.Errorf("the disabled endpoint got %d posts, want only the first", n)
	}
	waitMetricLine(t, c, `herald_webhook_posts_total{outcome="gone"} 1`)
}

// TestWebhookPrivateTargetRefused: without HERALD_ALLOW_PRIVATE_TARGETS a
// loopback IP is refused at creation, and a name resolving to loopback is
// refused when the post is made (the receiver sees nothing).
func TestWebhookPrivateTargetRefused(t *testing.T) {
	cfg := webhookConfig(t)
	cfg.AllowPrivateTargets = false // Twilio is not a recipient-chosen target: its fake on loopback still works
	c, _, _ := smsSetup(t, cfg)
	r := newReceiver(t)
	res := c.do("POST", "/v1/webhooks", map[string]any{"url": r.srv.URL, "events": []string{"delivery.sent"}})
	if res.status != 422 || !strings.Contains(string(res.body), `"field":"url"`) {
		t.Fatalf("a loopback IP target: %d %s, want 422 naming url", res.status, res.body)
	}
	port := r.srv.URL[strings.LastIndex(r.srv.URL, ":")+1:]
	createWebhook(t, c, "http://localhost:"+port+"/hook", "delivery.sent")
	sendSMS(t, c)
	waitMetricLine(t, c, `herald_webhook_posts_total{outcome="refused"} 1`)
	if n := len(r.posts()); n != 0 {
		t.Errorf("the private receiver got %d posts, want 0", n)
	}
}

// TestInvalidContactPostsContactInvalid: a number Twilio calls invalid
// fails the delivery and disables the contact, and the endpoint subscribed
// to contact.invalid hears of it.
func TestInvalidContactPostsContactInvalid(t *testing.T) {
	c, _, twiliod := smsSetup(t, webhookConfig(t))
	r := newReceiver(t)
	hook := createWebhook(t, c, r.srv.URL, "contact.invalid")
	twiliod.FailNext(1, 400, 21211, 0) // invalid 'To' phone number
	id := sendSMS(t, c)
	got := r.waitPosts(t, 1)
	verify(t, hook.Secret, got[0])
	p := decodePayload(t, got[0])
	if p.Type != "contact.invalid" || p.Data.NotificationID != id || p.Data.UserID != "ada" || p.Data.Channel != "sms" ||
		p.Data.Status != "failed" || p.Data.Reason != "invalid_recipient" {
		t.Errorf("payload = %s", got[0].body)
	}
}

// TestWebhookValidation: unknown events are named by their place.
func TestWebhookValidation(t *testing.T) {
	a := start(t, testConfig(t))
	c := newAPI(t, a, newApp(t, a, "shop"))
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"url": "https://hooks.example.com", "events": []string{"delivery.dead", "device.invalid", "delivery.bogus"}}, "events[2]"},
		{map[string]any{"url": "ftp://hooks.example.com", "events": []string{"delivery.dead"}}, "url"},
		{map[string]any{"url": "https://hooks.example.com", "events": []string{}}, "events"},
	} {
		res := c.do("POST", "/v1/webhooks", tc.body)
		var p struct {
			Errors []struct{ Field string } `json:"errors"`
		}
		res.decode(t, &p)
		if res.status != 422 || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("POST %v: %d %s, want 422 naming %s", tc.body, res.status, res.body, tc.field)
		}
	}
	hook := createWebhook(t, c, "https://hooks.example.com/h", "delivery.failed", "contact.invalid", "user.unsubscribed")
	c.must(204, "DELETE", "/v1/webhooks/"+hook.ID, nil)
	c.must(404, "DELETE", "/v1/webhooks/"+hook.ID, nil)
}

// waitMetricLine polls /metrics until it holds line.
func waitMetricLine(t *testing.T, c *api, line string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := string(c.must(200, "GET", "/metrics", nil).body)
		if strings.Contains(m, line) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %s:\n%s", line, grepLines(m, strings.SplitN(line, "{", 2)[0]))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
