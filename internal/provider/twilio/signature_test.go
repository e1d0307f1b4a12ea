package twilio_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/twilio"
)

// TestSignaturePublishedVector checks Twilio's published example
// (https://www.twilio.com/docs/usage/security#validating-requests).
func TestSignaturePublishedVector(t *testing.T) {
	params := url.Values{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"},
	}
	const fullURL = "https://mycompany.com/myapp.php?foo=1&bar=2"
	if got, want := twilio.Signature("12345", fullURL, params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="; got != want {
		t.Fatalf("Signature = %q, want %q", got, want)
	}

	raw, _ := json.Marshal(map[string]any{"account_sid": accountSID, "auth_token": "12345", "from": fromNumber})
	p, err := twilio.New(raw, herald.ProviderEnv{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.VerifyCallback(fullURL, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=") {
		t.Error("the published signature does not verify")
	}
	tampered := url.Values{}
	for k, v := range params {
		tampered[k] = v
	}
	tampered.Set("Digits", "1235")
	for name, c := range map[string]struct {
		url    string
		params url.Values
		sig    string
	}{
		"empty signature": {fullURL, params, ""},
		"other signature": {fullURL, params, "1/KCTR6DLpKmkAf8muzZqo1nDgQ="},
		"other parameter": {fullURL, tampered, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
		"other URL":       {"https://mycompany.com/myapp.php?foo=1&bar=3", params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
	} {
		if p.VerifyCallback(c.url, c.params, c.sig) {
			t.Errorf("%s: verifies", name)
		}
	}
}
