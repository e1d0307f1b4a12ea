package sendgridfake

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"strconv"
	"time"
)

// The Event Webhook key pair sendgrid-go publishes in its tests
// (helpers/eventwebhook/eventwebhook_test.go, MIT; PROVIDERS.md §5.3).
// EventKey is what an app sets as its provider's webhook_public_key.
const (
	EventKey        = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
	eventPrivateKey = "MHcCAQEEIEQmZgBEh9DcU9zMl34czK3xov4AYvm9P3r7rNB2dNXtoAoGCCqGSM49AwEHoUQDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
)

// SignEvents returns the X-Twilio-Email-Event-Webhook-Timestamp and
// -Signature headers SendGrid puts on an Event Webhook post of body at
// at, signed with the published test key: base64 of the ASN.1 DER ECDSA
// signature of SHA-256(timestamp || body).
func SignEvents(at time.Time, body []byte) (timestamp, signature string) {
	der, err := base64.StdEncoding.DecodeString(eventPrivateKey)
	if err != nil {
		panic(err)
	}
	key, err := x509.ParseECPrivateKey(der)
	if err != nil {
		panic(err)
	}
	return SignEventsWith(key, at, body)
}

// SignEventsWith is SignEvents with another key.
func SignEventsWith(key *ecdsa.PrivateKey, at time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(at.Unix(), 10)
	sum := sha256.Sum256(append([]byte(timestamp), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		panic(err)
	}
	return timestamp, base64.StdEncoding.EncodeToString(sig)
}
