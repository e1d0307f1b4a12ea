package webpushfake

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/webpushua"
)

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The RFC 8291 Appendix A vector, as the receiver sees it (PROVIDERS.md §3.5).
const (
	rfcUAPrivate = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
	rfcAuth      = "BTBZMqHH6r4Tts7J_aSIgg"
	rfcBody      = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
	rfcPlain     = "When I grow up, I want to be a watermelon"
)

// TestDecryptRFC8291Vector checks the decryption the fake (and the bench
// sink) open pushes with against the RFC's own vector.
func TestDecryptRFC8291Vector(t *testing.T) {
	t.Parallel()
	key, err := ecdh.P256().NewPrivateKey(b64(t, rfcUAPrivate))
	if err != nil {
		t.Fatal(err)
	}
	got, err := webpushua.Decrypt(b64(t, rfcBody), key, b64(t, rfcAuth))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != rfcPlain {
		t.Fatalf("webpushua.Decrypt = %q, want %q", got, rfcPlain)
	}
	tampered := b64(t, rfcBody)
	tampered[len(tampered)-1] ^= 1
	if _, err := webpushua.Decrypt(tampered, key, b64(t, rfcAuth)); err == nil {
		t.Fatal("a tampered body decrypted")
	}
	wrongAuth := b64(t, rfcAuth)
	wrongAuth[0] ^= 1
	if _, err := webpushua.Decrypt(b64(t, rfcBody), key, wrongAuth); err == nil {
		t.Fatal("the body decrypted with the wrong auth secret")
	}
}

// rfcServer is a fake with a subscription holding the RFC 8291 receiver
// keys at /push/rfc, so the vector's body can be posted to it.
func rfcServer(t *testing.T, opts ...Option) (*Server, string) {
	t.Helper()
	s := New(t, opts...)
	key, err := ecdh.P256().NewPrivateKey(b64(t, rfcUAPrivate))
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.subs["/push/rfc"] = &receiver{key: key, auth: b64(t, rfcAuth)}
	s.mu.Unlock()
	return s, s.URL() + "/push/rfc"
}

func post(t *testing.T, s *Server, url string, body []byte, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func TestServerChecks(t *testing.T) {
	t.Parallel()
	good := map[string]string{"TTL": "60", "Content-Encoding": "aes128gcm", "Topic": "abc_-123"}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for hk, hv := range good {
			h[hk] = hv
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	tampered := b64(t, rfcBody)
	tampered[30] ^= 1
	for _, tc := range []struct {
		name   string
		path   string
		body   []byte
		header map[string]string
		want   int
	}{
		{"valid", "/push/rfc", b64(t, rfcBody), good, http.StatusCreated},
		{"no TTL", "/push/rfc", b64(t, rfcBody), with("TTL", ""), http.StatusBadRequest},
		{"aesgcm encoding", "/push/rfc", b64(t, rfcBody), with("Content-Encoding", "aesgcm"), http.StatusBadRequest},
		{"bad urgency", "/push/rfc", b64(t, rfcBody), with("Urgency", "urgent"), http.StatusBadRequest},
		{"long topic", "/push/rfc", b64(t, rfcBody), with("Topic", strings.Repeat("a", 33)), http.StatusBadRequest},
		{"tampered", "/push/rfc", tampered, good, http.StatusBadRequest},
		{"unencrypted", "/push/rfc", []byte(`{"title":"hi"}`), good, http.StatusBadRequest},
		{"too large", "/push/rfc", make([]byte, 4097), good, http.StatusRequestEntityTooLarge},
		{"unknown subscription", "/push/nope", b64(t, rfcBody), good, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := rfcServer(t)
			resp := post(t, s, s.URL()+tc.path, tc.body, tc.header)
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.want)
			}
			reqs := s.Requests()
			if tc.want != http.StatusCreated {
				if len(reqs) != 0 {
					t.Fatalf("a refused request was recorded")
				}
				return
			}
			if resp.ProtoMajor != 2 {
				t.Errorf("protocol %s, want HTTP/2", resp.Proto)
			}
			if len(reqs) != 1 || string(reqs[0].Payload) != rfcPlain || reqs[0].TTL != 60 || reqs[0].Urgency != "normal" {
				t.Fatalf("recorded %+v", reqs)
			}
			if loc := resp.Header.Get("Location"); loc == "" || loc != reqs[0].Location {
				t.Errorf("Location = %q, recorded %q", loc, reqs[0].Location)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	headers := map[string]string{"TTL": "60", "Content-Encoding": "aes128gcm"}
	s, endpoint := rfcServer(t)
	s.FailNext(2, http.StatusTooManyRequests, 30*time.Second)
	for range 2 {
		resp := post(t, s, endpoint, b64(t, rfcBody), headers)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "30" {
			t.Fatalf("status %d, Retry-After %q; want 429, 30", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if resp := post(t, s, endpoint, b64(t, rfcBody), headers); resp.StatusCode != http.StatusCreated {
		t.Fatalf("after the failures: status %d, want 201", resp.StatusCode)
	}
	s.Gone(endpoint)
	if resp := post(t, s, endpoint, b64(t, rfcBody), headers); resp.StatusCode != http.StatusGone {
		t.Fatalf("gone subscription: status %d, want 410", resp.StatusCode)
	}
	if got := s.Attempts(); got != 4 {
		t.Fatalf("Attempts = %d, want 4", got)
	}
	if got := len(s.Requests()); got != 1 {
		t.Fatalf("Requests = %d, want 1", got)
	}
}

func TestNewSubscription(t *testing.T) {
	t.Parallel()
	s := New(t)
	a, b := s.NewSubscription(), s.NewSubscription()
	if a.Endpoint == b.Endpoint || !strings.HasPrefix(a.Endpoint, s.URL()+"/push/") {
		t.Fatalf("endpoints %q, %q", a.Endpoint, b.Endpoint)
	}
	if len(b64(t, a.Keys.P256dh)) != 65 || len(b64(t, a.Keys.Auth)) != 16 {
		t.Fatalf("keys %+v are not a 65-byte point and a 16-byte secret", a.Keys)
	}
}

// TestVAPIDRFC8292Example checks the verifier against the RFC 8292 §3
// example token, with the clock set around its exp.
func TestVAPIDRFC8292Example(t *testing.T) {
	t.Parallel()
	const (
		token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_HLGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA"
		k     = "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs"
	)
	exp := time.Unix(1453523768, 0)
	header := "vapid t=" + token + ", k=" + k
	for _, tc := range []struct {
		name     string
		now      time.Time
		origin   string
		key      string
		header   string
		wantCode int
	}{
		{"valid an hour before exp", exp.Add(-time.Hour), "https://push.example.net", k, header, 0},
		{"expired", exp.Add(time.Second), "https://push.example.net", k, header, http.StatusForbidden},
		{"exp over 24 h ahead", exp.Add(-25 * time.Hour), "https://push.example.net", k, header, http.StatusForbidden},
		{"other audience", exp.Add(-time.Hour), "https://127.0.0.1:443", k, header, http.StatusForbidden},
		{"other key", exp.Add(-time.Hour), "https://push.example.net", "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8", header, http.StatusForbidden},
		{"tampered signature", exp.Add(-time.Hour), "https://push.example.net", k, strings.Replace(header, "i3CYb7", "i3CYb8", 1), http.StatusForbidden},
		{"missing", exp.Add(-time.Hour), "https://push.example.net", k, "", http.StatusUnauthorized},
		{"bearer", exp.Add(-time.Hour), "https://push.example.net", k, "Bearer " + token, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Server{
				cfg: config{vapidKey: tc.key, now: func() time.Time { return tc.now }},
				srv: &httptest.Server{URL: tc.origin},
			}
			claims, code, err := s.checkVAPID(tc.header)
			if code != tc.wantCode {
				t.Fatalf("checkVAPID = %d (%v), want %d", code, err, tc.wantCode)
			}
			if code == 0 && (claims.Subject != "mailto:push@example.com" || !claims.Expiry.Equal(exp)) {
				t.Fatalf("claims = %+v", claims)
			}
		})
	}
}
