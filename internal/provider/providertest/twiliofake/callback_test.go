package twiliofake_test

import (
	"net/url"
	"testing"

	"github.com/heraldhq/herald/internal/provider/providertest/twiliofake"
)

// TestSignPublishedVector: Twilio's published example signature.
func TestSignPublishedVector(t *testing.T) {
	params := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"}}
	got := twiliofake.Sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)
	if want := "0/KCTR6DLpKmkAf8muzZqo1nDgQ="; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}
