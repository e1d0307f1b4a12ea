package sendgrid_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/sendgrid"
)

// FuzzVerifyEvents: a signature over a timestamp and body verifies for
// exactly the bytes it signed (the timestamp followed by the body, as
// SendGrid's scheme has it) and for nothing else, and no string passed as
// a signature makes an unsigned body verify under the published key.
func FuzzVerifyEvents(f *testing.F) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"api_key": "SG.x", "from": "noreply@example.com", "webhook_public_key": vectorKey})
	p, err := sendgrid.New(raw, herald.ProviderEnv{})
	if err != nil {
		f.Fatal(err)
	}
	published := p.WebhookPublicKey()

	f.Add(vectorTimestamp, vectorPayload, vectorTimestamp, vectorPayload, vectorSignature)
	f.Add(vectorTimestamp, vectorPayload, vectorTimestamp, vectorPayload+" ", vectorSignature[:len(vectorSignature)-2]+"8=")
	f.Add("1", "2[]", "12", "[]", "MAYCAQECAQE=")
	f.Add("", "", "", "", "")
	f.Add("1588788367", "[]", "1588788367", "[{}]", "%%%")
	f.Fuzz(func(t *testing.T, ts1, body1, ts2, body2, sig string) {
		if ts1 != "" {
			sum := sha256.Sum256([]byte(ts1 + body1))
			der, err := ecdsa.SignASN1(rand.Reader, priv, sum[:])
			if err != nil {
				t.Fatal(err)
			}
			good := base64.StdEncoding.EncodeToString(der)
			if !sendgrid.VerifyEvents(&priv.PublicKey, ts1, []byte(body1), good) {
				t.Fatalf("our signature of %q %q does not verify", ts1, body1)
			}
			same := ts2 != "" && ts1+body1 == ts2+body2
			if got := sendgrid.VerifyEvents(&priv.PublicKey, ts2, []byte(body2), good); got != same {
				t.Fatalf("signature of %q %q verifies for %q %q: %v, want %v", ts1, body1, ts2, body2, got, same)
			}
		}
		if sendgrid.VerifyEvents(published, ts2, []byte(body2), sig) && ts2+body2 != vectorTimestamp+vectorPayload {
			t.Fatalf("%q verifies %q %q under the published key", sig, ts2, body2)
		}
		if sendgrid.VerifyEvents(nil, ts2, []byte(body2), sig) {
			t.Fatal("verifies without a key")
		}
	})
}
