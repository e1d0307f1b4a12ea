package sendgrid

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
)

// Event Webhook signature headers.
const (
	SignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	TimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// VerifyEvents reports whether signature (base64 of an ASN.1 DER ECDSA
// signature, as SendGrid sends it) is key's signature of SHA-256 over the
// timestamp header's bytes followed by the raw request body.
func VerifyEvents(key *ecdsa.PublicKey, timestamp string, body []byte, signature string) bool {
	if key == nil || timestamp == "" || signature == "" {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return false
	}
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	return ecdsa.VerifyASN1(key, h.Sum(nil), sig)
}
