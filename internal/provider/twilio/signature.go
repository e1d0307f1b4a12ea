package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"sort"
)

// SignatureHeader carries Twilio's signature of a webhook request.
const SignatureHeader = "X-Twilio-Signature"

// Signature returns the X-Twilio-Signature Twilio puts on a request to
// fullURL (scheme, host, path and query, exactly as Twilio was told)
// with the POST parameters params: the base64 of HMAC-SHA1 keyed with the
// account's auth token over the URL followed by every parameter's name
// and value, sorted by name.
func Signature(authToken, fullURL string, params url.Values) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	m := hmac.New(sha1.New, []byte(authToken))
	m.Write([]byte(fullURL))
	for _, k := range names {
		// A repeated name contributes each of its values, in order.
		for _, v := range params[k] {
			m.Write([]byte(k))
			m.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// AccountSID returns the account whose auth token signs this
// configuration's callbacks.
func (p *Provider) AccountSID() string { return p.accountSID }

// VerifyCallback reports whether signature is the auth token's signature
// of a callback to fullURL with params. The comparison takes constant time.
func (p *Provider) VerifyCallback(fullURL string, params url.Values, signature string) bool {
	want := Signature(p.authToken, fullURL, params)
	return signature != "" && subtle.ConstantTimeCompare([]byte(want), []byte(signature)) == 1
}
