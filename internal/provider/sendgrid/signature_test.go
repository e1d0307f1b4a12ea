package sendgrid_test

import (
	"encoding/json"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/sendgrid"
)

// The vector constants (vectorKey, …) are sendgrid-go's published ones, in sendgrid_test.go.

func TestVerifyEventsPublishedVector(t *testing.T) {
	raw, _ := json.Marshal(map[string]any{"api_key": "SG.x", "from": "noreply@example.com", "webhook_public_key": vectorKey})
	p, err := sendgrid.New(raw, herald.ProviderEnv{})
	if err != nil {
		t.Fatal(err)
	}
	key := p.WebhookPublicKey()
	if !sendgrid.VerifyEvents(key, vectorTimestamp, []byte(vectorPayload), vectorSignature) {
		t.Fatal("the published signature does not verify")
	}
	for name, c := range map[string]struct{ ts, body, sig string }{
		"no timestamp prefix": {"", vectorPayload, vectorSignature},
		"other timestamp":     {"1588788368", vectorPayload, vectorSignature},
		"other body":          {vectorTimestamp, vectorPayload + " ", vectorSignature},
		"not base64":          {vectorTimestamp, vectorPayload, "%%%"},
		"other signature":     {vectorTimestamp, vectorPayload, "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2k/0="},
	} {
		if sendgrid.VerifyEvents(key, c.ts, []byte(c.body), c.sig) {
			t.Errorf("%s: verifies", name)
		}
	}
	if sendgrid.VerifyEvents(nil, vectorTimestamp, []byte(vectorPayload), vectorSignature) {
		t.Error("verifies without a key")
	}
}
