package sink

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/webpushua"
)

// KindWebPush is the sink's Web Push service: one subscription, whose
// private key the sink holds, so that it can show what a browser would.
const KindWebPush = "webpush"

// maxPushBody is the largest push message body accepted; RFC 8030 §7.2
// has push services take at least 4096 bytes, and this one takes no more.
const maxPushBody = 4096

// pushReceiver is the browser's side of the sink's one subscription.
type pushReceiver struct {
	id   string // the last path segment of the endpoint
	key  *ecdh.PrivateKey
	auth []byte
}

func newPushReceiver() (*pushReceiver, error) {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth) // never fails (crypto/rand)
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	return &pushReceiver{id: base64.RawURLEncoding.EncodeToString(id), key: key, auth: auth}, nil
}

// Subscription is the Web Push subscription the sink accepts messages for,
// as a browser's PushSubscription.toJSON() gives it: register it as a web
// device of a user to have Herald push to the sink.
func (s *Sink) Subscription() herald.WebPushSubscription {
	var sub herald.WebPushSubscription
	sub.Endpoint = s.URL() + "/push/" + s.push.id
	sub.Keys.P256dh = base64.RawURLEncoding.EncodeToString(s.push.key.PublicKey().Bytes())
	sub.Keys.Auth = base64.RawURLEncoding.EncodeToString(s.push.auth)
	return sub
}

// webpush answers as a push service (RFC 8030): it checks the VAPID
// authorization (RFC 8292), the TTL, Content-Encoding, Urgency and Topic
// headers, decrypts the aes128gcm body (RFC 8291) with the subscription's
// private key and records the plaintext.
func (s *Sink) webpush(w http.ResponseWriter, r *http.Request) {
	at := time.Now().UnixNano()
	if r.PathValue("id") != s.push.id {
		http.Error(w, "no such subscription", http.StatusNotFound)
		return
	}
	if status, err := checkVAPID(r.Header.Get("Authorization"), s.URL(), time.Now()); err != nil {
		http.Error(w, "vapid: "+err.Error(), status)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get("TTL"))
	if err != nil || ttl < 0 {
		http.Error(w, "the TTL header is required: a number of seconds (RFC 8030 §5.2)", http.StatusBadRequest)
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		http.Error(w, fmt.Sprintf("Content-Encoding %q: only aes128gcm is accepted (RFC 8291 §4)", ce), http.StatusBadRequest)
		return
	}
	switch u := r.Header.Get("Urgency"); u {
	case "", "very-low", "low", "normal", "high":
	default:
		http.Error(w, fmt.Sprintf("Urgency %q is not very-low, low, normal or high (RFC 8030 §5.3)", u), http.StatusBadRequest)
		return
	}
	if t := r.Header.Get("Topic"); t != "" && !webpushua.ValidTopic(t) {
		http.Error(w, "Topic must be at most 32 URL-safe base64 characters (RFC 8030 §5.4)", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPushBody+1))
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxPushBody {
		http.Error(w, "payload over 4096 bytes", http.StatusRequestEntityTooLarge)
		return
	}
	plain, err := webpushua.Decrypt(body, s.push.key, s.push.auth)
	if err != nil {
		http.Error(w, "the body does not decrypt: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.delay(r.Context())
	if code := s.failure(); code != 0 {
		s.errs[KindWebPush].Add(1)
		retryAfter(w, code)
		http.Error(w, http.StatusText(code), code)
		return
	}
	s.record(Arrival{Kind: KindWebPush, Ref: ref(string(plain)), Text: string(plain), At: at})
	w.Header().Set("Location", s.URL()+"/push/message/"+strconv.FormatInt(at, 36))
	w.Header().Set("TTL", strconv.Itoa(ttl))
	w.WriteHeader(http.StatusCreated)
}

// checkVAPID verifies an "Authorization: vapid t=…, k=…" header (RFC 8292
// §3) against the key k it names: its ES256 signature, aud (the sink's
// origin), exp (in the future, at most 24 hours ahead) and sub. It returns
// the status to answer when it fails: 401 without the header, else 403.
func checkVAPID(h, origin string, now time.Time) (int, error) {
	scheme, params, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "vapid") {
		return http.StatusUnauthorized, errors.New("an Authorization header with the vapid scheme is required")
	}
	var t, k string
	for p := range strings.SplitSeq(params, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(name) {
		case "t":
			t = value
		case "k":
			k = value
		}
	}
	if t == "" || k == "" {
		return http.StatusUnauthorized, errors.New("the vapid authorization needs t and k")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k, "="))
	if err != nil {
		return http.StatusForbidden, errors.New("k is not base64url")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return http.StatusForbidden, fmt.Errorf("k: %w", err)
	}
	var claims jwt.RegisteredClaims
	_, err = jwt.ParseWithClaims(t, &claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(), jwt.WithAudience(origin))
	if err != nil {
		return http.StatusForbidden, err
	}
	if claims.ExpiresAt.After(now.Add(24 * time.Hour)) {
		return http.StatusForbidden, errors.New("exp is more than 24 hours ahead (RFC 8292 §2)")
	}
	if claims.Subject == "" {
		return http.StatusForbidden, errors.New("sub is required")
	}
	return 0, nil
}
