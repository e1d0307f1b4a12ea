package twiliofake

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
)

// Sign returns the X-Twilio-Signature Twilio puts on a callback to
// fullURL with the form params: base64(HMAC-SHA1(authToken, fullURL +
// the params' names and values, sorted by name)). It is written apart
// from the adapter's own check, so that each tests the other.
func Sign(authToken, fullURL string, params url.Values) string {
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range params {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range params[k] {
			b.WriteString(k + v)
		}
	}
	m := hmac.New(sha1.New, []byte(authToken))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// StatusCallback returns the form Twilio posts to a message's
// StatusCallback: MessageSid, AccountSid, MessageStatus and, when code is
// not empty, ErrorCode.
func StatusCallback(accountSID, messageSID, status, code string) url.Values {
	v := url.Values{"MessageSid": {messageSID}, "SmsSid": {messageSID}, "AccountSid": {accountSID},
		"MessageStatus": {status}, "SmsStatus": {status}, "ApiVersion": {"2010-04-01"}}
	if code != "" {
		v.Set("ErrorCode", code)
	}
	return v
}
