package sink_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/bench/sink"
	"github.com/heraldhq/herald/internal/provider/apns"
	"github.com/heraldhq/herald/internal/provider/fcm"
	"github.com/heraldhq/herald/internal/provider/sendgrid"
	"github.com/heraldhq/herald/internal/provider/smtp"
	"github.com/heraldhq/herald/internal/provider/twilio"
	"github.com/heraldhq/herald/internal/provider/webpush"
)

func startSink(t *testing.T, opts sink.Options) *sink.Sink {
	t.Helper()
	opts.Addr, opts.SMTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	s, err := sink.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

// providers builds Herald's real adapters, pointed at s.
func providers(t *testing.T, s *sink.Sink) map[string]herald.Provider {
	t.Helper()
	settings, err := sink.ProviderSettings(s.URL(), s.SMTPAddr(), s.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	env := herald.ProviderEnv{HTTPClient: &http.Client{Timeout: 5 * time.Second}, Now: time.Now,
		PublicURL: "http://127.0.0.1:1", AllowPrivateTargets: true}
	build := map[string]func(json.RawMessage, herald.ProviderEnv) (herald.Provider, error){
		sink.KindAPNs:     func(r json.RawMessage, e herald.ProviderEnv) (herald.Provider, error) { return apns.New(r, e) },
		sink.KindFCM:      func(r json.RawMessage, e herald.ProviderEnv) (herald.Provider, error) { return fcm.New(r, e) },
		sink.KindTwilio:   func(r json.RawMessage, e herald.ProviderEnv) (herald.Provider, error) { return twilio.New(r, e) },
		sink.KindSendGrid: func(r json.RawMessage, e herald.ProviderEnv) (herald.Provider, error) { return sendgrid.New(r, e) },
		sink.KindSMTP:     func(r json.RawMessage, e herald.ProviderEnv) (herald.Provider, error) { return smtp.New(r, e) },
		sink.KindWebPush:  func(r json.RawMessage, e herald.ProviderEnv) (herald.Provider, error) { return webpush.New(r, e) },
	}
	out := map[string]herald.Provider{}
	for kind, b := range build {
		p, err := b(settings[kind], env)
		if err != nil {
			t.Fatalf("%s settings: %v", kind, err)
		}
		out[kind] = p
	}
	return out
}

// message is a message of the channel a kind serves, carrying ref in its text.
func message(s *sink.Sink, kind, ref string) herald.Message {
	m := herald.Message{AppID: "app", NotificationID: uuid.NewString(), DeliveryID: uuid.NewString(), Attempt: 1,
		Content: herald.Content{Title: "Hi", Body: "bench " + ref, Subject: "Bench"}}
	switch kind {
	case sink.KindAPNs:
		m.Channel, m.Platform, m.To = herald.ChannelPush, herald.PlatformIOS, strings.Repeat("ab", 32)
	case sink.KindFCM:
		m.Channel, m.Platform, m.To = herald.ChannelPush, herald.PlatformAndroid, "fcm-token-1"
	case sink.KindTwilio:
		m.Channel, m.To = herald.ChannelSMS, "+14155550100"
	case sink.KindWebPush:
		sub := s.Subscription()
		m.Channel, m.Platform, m.Subscription = herald.ChannelPush, herald.PlatformWeb, &sub
	default:
		m.Channel, m.To = herald.ChannelEmail, "ada@example.com"
	}
	return m
}

// TestAdaptersSendToSink runs each real Herald adapter against the sink: a
// send succeeds, and the sink records it with the delivery id the wire
// carries (Twilio carries none: the text's ref identifies it).
func TestAdaptersSendToSink(t *testing.T) {
	s := startSink(t, sink.Options{Latency: time.Millisecond, Jitter: time.Millisecond})
	ps := providers(t, s)
	want := map[string]herald.Message{}
	for i, kind := range sink.Kinds {
		m := message(s, kind, "hb-"+string(rune('1'+i)))
		out := ps[kind].Send(context.Background(), m)
		if out.Kind != herald.OutcomeSent {
			t.Errorf("%s: outcome %v (%s), want sent", kind, out.Kind, out.Detail)
		}
		if out.ProviderMessageID == "" {
			t.Errorf("%s: no provider message id", kind)
		}
		want[kind] = m
	}
	st := s.Stats()
	for _, kind := range sink.Kinds {
		if st.Received[kind] != 1 || st.Errors[kind] != 0 {
			t.Errorf("%s: received %d, errors %d; want 1, 0", kind, st.Received[kind], st.Errors[kind])
		}
	}
	if st.Tokens < 1 {
		t.Errorf("FCM took %d tokens from the sink's token endpoint", st.Tokens)
	}

	// The same arrivals, read over HTTP as a load generator would.
	res, err := s.Client().Get(s.URL() + "/arrivals?since=0")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var page sink.ArrivalsPage
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if page.Next != len(sink.Kinds) || len(page.Arrivals) != len(sink.Kinds) {
		t.Fatalf("arrivals page = %+v, want %d arrivals", page, len(sink.Kinds))
	}
	for _, a := range page.Arrivals {
		m := want[a.Kind]
		switch {
		case a.Kind == sink.KindTwilio || a.Kind == sink.KindWebPush:
			if a.ID != "" || !strings.Contains(m.Content.Body, a.Ref) || a.Ref == "" {
				t.Errorf("%s arrival %+v, want ref from %q", a.Kind, a, m.Content.Body)
			}
		case a.ID != m.DeliveryID:
			t.Errorf("%s arrival id %q, want delivery id %q", a.Kind, a.ID, m.DeliveryID)
		}
		switch a.Kind {
		case sink.KindWebPush:
			// The decrypted payload, as the service worker would get it.
			if want := `{"title":"Hi","body":"bench ` + a.Ref + `"}`; a.Text != want {
				t.Errorf("webpush arrival text %q, want %q", a.Text, want)
			}
		case sink.KindSMTP:
			if a.Text != "Bench" {
				t.Errorf("smtp arrival text %q, want the subject %q", a.Text, "Bench")
			}
		default:
			if a.Text != "" {
				t.Errorf("%s arrival text %q, want none", a.Kind, a.Text)
			}
		}
		if a.At <= 0 || a.At > time.Now().UnixNano() {
			t.Errorf("%s arrival at %d", a.Kind, a.At)
		}
	}

	res, err = s.Client().Get(s.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `herald_sink_received_total{kind="apns"} 1`) {
		t.Errorf("metrics:\n%s", body)
	}
}

// TestErrorsAreRetryable: with every send failing, each adapter sees the
// documented transient errors (503, 429 with Retry-After, 500; SMTP 421/451)
// and classifies them as worth a retry; the sink records no arrival.
func TestErrorsAreRetryable(t *testing.T) {
	s := startSink(t, sink.Options{ErrorRate: 1})
	ps := providers(t, s)
	for _, kind := range sink.Kinds {
		for i := range 3 {
			out := ps[kind].Send(context.Background(), message(s, kind, ""))
			if out.Kind != herald.OutcomeRetry {
				t.Errorf("%s send %d: outcome %v (%s), want retry", kind, i, out.Kind, out.Detail)
			}
		}
	}
	st := s.Stats()
	for _, kind := range sink.Kinds {
		if st.Received[kind] != 0 || st.Errors[kind] < 3 {
			t.Errorf("%s: received %d, errors %d; want 0, at least 3", kind, st.Received[kind], st.Errors[kind])
		}
	}
	if st.Arrivals != 0 {
		t.Errorf("%d arrivals recorded for failed sends", st.Arrivals)
	}
}

func TestNewRejectsBadErrorRate(t *testing.T) {
	if _, err := sink.New(sink.Options{ErrorRate: 1.5}); err == nil {
		t.Fatal("error rate 1.5 accepted")
	}
}

// TestKeepDropsTheOldest: past Keep arrivals the oldest are dropped and
// reading from an early position resumes at the oldest one held.
func TestKeepDropsTheOldest(t *testing.T) {
	s := startSink(t, sink.Options{Keep: 4})
	p := providers(t, s)[sink.KindSendGrid]
	var ids []string
	for range 6 {
		m := message(s, sink.KindSendGrid, "")
		if out := p.Send(context.Background(), m); out.Kind != herald.OutcomeSent {
			t.Fatalf("send: %v %s", out.Kind, out.Detail)
		}
		ids = append(ids, m.DeliveryID)
	}
	st := s.Stats()
	if st.Arrivals != 6 || st.Dropped != 2 || st.Received[sink.KindSendGrid] != 6 {
		t.Fatalf("stats = %+v; want 6 arrivals, 2 dropped", st)
	}
	got, next := s.Arrivals(0, 100)
	if next != 6 || len(got) != 4 || got[0].ID != ids[2] || got[3].ID != ids[5] {
		t.Fatalf("Arrivals(0) = %d arrivals, next %d; want the last 4, next 6", len(got), next)
	}
	if got, next := s.Arrivals(5, 100); next != 6 || len(got) != 1 || got[0].ID != ids[5] {
		t.Errorf("Arrivals(5) = %+v, next %d", got, next)
	}
}

// TestWebPushRefusesWhatAPushServiceWould: the sink's push endpoint
// answers like a push service to a request Herald's adapter would never
// make: an unknown subscription, no or a forged VAPID token, no TTL, and a
// body that does not decrypt. None is recorded.
func TestWebPushRefusesWhatAPushServiceWould(t *testing.T) {
	s := startSink(t, sink.Options{})
	sub := s.Subscription()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKey.Bytes()
	k := base64.RawURLEncoding.EncodeToString(pub)
	token := func(aud string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"aud": aud, "sub": "mailto:a@example.com",
			"exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := "vapid t=" + token(s.URL()) + ", k=" + k
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherPub, _ := other.PublicKey.Bytes()
	for _, tc := range []struct {
		name, endpoint, auth, ttl string
		want                      int
	}{
		{"unknown subscription", s.URL() + "/push/nope", good, "60", http.StatusNotFound},
		{"no authorization", sub.Endpoint, "", "60", http.StatusUnauthorized},
		{"another origin's token", sub.Endpoint, "vapid t=" + token("https://push.example.com") + ", k=" + k, "60", http.StatusForbidden},
		{"token not signed by k", sub.Endpoint, "vapid t=" + token(s.URL()) + ", k=" + base64.RawURLEncoding.EncodeToString(otherPub), "60", http.StatusForbidden},
		{"no TTL", sub.Endpoint, good, "", http.StatusBadRequest},
		{"body does not decrypt", sub.Endpoint, good, "60", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, tc.endpoint, strings.NewReader(strings.Repeat("x", 120)))
			req.Header.Set("Content-Encoding", "aes128gcm")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.ttl != "" {
				req.Header.Set("TTL", tc.ttl)
			}
			res, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("status %d (%s), want %d", res.StatusCode, body, tc.want)
			}
		})
	}
	if st := s.Stats(); st.Arrivals != 0 {
		t.Errorf("%d arrivals recorded for refused pushes", st.Arrivals)
	}

	// GET /push/subscription serves the subscription a browser would register.
	res, err := s.Client().Get(s.URL() + "/push/subscription")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got herald.WebPushSubscription
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got != sub {
		t.Errorf("GET /push/subscription = %+v, want %+v", got, sub)
	}
}
