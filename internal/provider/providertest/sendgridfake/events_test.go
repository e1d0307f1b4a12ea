package sendgridfake_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/provider/providertest/sendgridfake"
)

// TestSignEventsVerifiesWithThePublishedKey: a fake's signature verifies
// with the published public key, over the timestamp and the body only.
func TestSignEventsVerifiesWithThePublishedKey(t *testing.T) {
	der, _ := base64.StdEncoding.DecodeString(sendgridfake.EventKey)
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`[{"event":"delivered"}]`)
	ts, sig := sendgridfake.SignEvents(time.Unix(1588788367, 0), body)
	raw, _ := base64.StdEncoding.DecodeString(sig)
	if ts != "1588788367" {
		t.Errorf("timestamp = %q", ts)
	}
	sum := sha256.Sum256(append([]byte(ts), body...))
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum[:], raw) {
		t.Error("the signature does not verify with the published key")
	}
	other := sha256.Sum256(body)
	if ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), other[:], raw) {
		t.Error("the signature verifies without the timestamp")
	}
}
