package twilio_test

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/provider/twilio"
)

// signedText is what Twilio's scheme signs: the URL, then every
// parameter's name and value in name order. Two callbacks with the same
// text carry the same signature by design of the scheme.
func signedText(fullURL string, params url.Values) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range names {
		for _, v := range params[k] {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	return b.String()
}

// FuzzVerifyCallback: the signature of a callback verifies for that
// callback, and for another one only when the scheme signs the same text
// for both; a signature string verifies only when it is exactly ours.
func FuzzVerifyCallback(f *testing.F) {
	raw, _ := json.Marshal(map[string]any{"account_sid": accountSID, "auth_token": "12345", "from": fromNumber})
	p, err := twilio.New(raw, herald.ProviderEnv{})
	if err != nil {
		f.Fatal(err)
	}
	const u = "https://herald.example.com/hooks/twilio/status"
	form := "MessageSid=SM1&MessageStatus=delivered&AccountSid=" + accountSID
	f.Add(u, form, u, form, "")
	f.Add(u, form, u, form+"&ErrorCode=30003", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
	f.Add(u, "a=bc", u, "ab=c", "x")
	f.Add(u, "a=1&a=2", u, "a=2&a=1", "")
	f.Add(u+"?x=1", form, u+"?x=2", form, "")
	f.Add("", "", "", "", "==")
	f.Fuzz(func(t *testing.T, url1, form1, url2, form2, sig string) {
		q1, err1 := url.ParseQuery(form1)
		q2, err2 := url.ParseQuery(form2)
		if err1 != nil || err2 != nil {
			return
		}
		good := twilio.Signature("12345", url1, q1)
		if !p.VerifyCallback(url1, q1, good) {
			t.Fatalf("our signature of %q %v does not verify", url1, q1)
		}
		same := signedText(url1, q1) == signedText(url2, q2)
		if got := p.VerifyCallback(url2, q2, good); got != same {
			t.Fatalf("signature of %q %v verifies for %q %v: %v, want %v", url1, q1, url2, q2, got, same)
		}
		if p.VerifyCallback(url1, q1, sig) && sig != good {
			t.Fatalf("signature %q verifies, ours is %q", sig, good)
		}
	})
}
