// Package validate checks the syntax of the contact data Herald accepts:
// email addresses, phone numbers, timezones, locales, push tokens and web
// push subscriptions. Errors are plain messages; the caller names the field.
package validate

import (
	"crypto/ecdh"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/language"
)

// MaxEmailLength is the longest address SMTP can carry (RFC 5321 path limit
// minus the angle brackets).
const MaxEmailLength = 254

// MaxEndpointLength bounds a web push endpoint; real ones are a few hundred bytes.
const MaxEndpointLength = 2048

// Email accepts a bare address ("a@example.com"), never a display name or
// angle brackets, because the value is sent to providers as the address.
func Email(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if len(s) > MaxEmailLength {
		return fmt.Errorf("must be at most %d characters", MaxEmailLength)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return errors.New("must be a bare email address like name@example.com")
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return errors.New("must be a bare email address like name@example.com")
	}
	return nil
}

// Phone accepts a valid number given in international form ("+14155550100";
// separators such as spaces are tolerated) and returns it normalized to
// E.164, which is how numbers are stored and compared.
func Phone(s string) (string, error) {
	if !strings.HasPrefix(s, "+") {
		return "", errors.New("must be in E.164 form, starting with + and the country code")
	}
	if len(s) > 32 {
		return "", errors.New("is too long for a phone number")
	}
	// libphonenumber reads far more than a number: it turns letters into
	// digits (1-800-FLOWERS), drops an extension (";ext=1", " x12") and
	// skips a second plus. A number sent to must be the digits given, so
	// only digits and separators may follow the plus.
	if strings.Trim(s[1:], "0123456789 -.()") != "" {
		return "", errors.New("must hold only digits after the +, with spaces, '-', '.' or parentheses as separators")
	}
	n, err := phonenumbers.Parse(s, "")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", errors.New("is not a valid phone number")
	}
	e164 := phonenumbers.Format(n, phonenumbers.E164)
	// libphonenumber takes some national plans' longest numbers past
	// E.164's 15 digits, which no SMS provider accepts.
	if len(e164) > 16 {
		return "", errors.New("has more than the 15 digits E.164 allows")
	}
	// It also drops a national trunk prefix written after the country
	// code ("+49 0201…", "+1 1 201…"). Only the customary "(0)" is taken
	// as one; otherwise the digits given must be the number, so that what
	// is stored is what was written.
	if digits(s) != e164[1:] && digits(strings.Replace(s, "(0)", "", 1)) != e164[1:] {
		return "", errors.New("must be the number in international form, without a national prefix after the country code")
	}
	return e164, nil
}

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// PhoneRegion returns the ISO 3166 alpha-2 region of an E.164 number
// ("US" for +14155550100), or "" when libphonenumber cannot tell (a
// number shared by several regions that matches none of their patterns).
func PhoneRegion(e164 string) string {
	n, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return ""
	}
	return phonenumbers.GetRegionCodeForNumber(n)
}

// SMSCountry accepts an ISO 3166 alpha-2 code that has a telephone
// country code ("DE", "us") and returns it in upper case.
func SMSCountry(s string) (string, error) {
	u := strings.ToUpper(s)
	if len(u) != 2 || phonenumbers.GetCountryCodeForRegion(u) == 0 {
		return "", errors.New("must be an ISO 3166 alpha-2 country code with a telephone country code, like DE or US")
	}
	return u, nil
}

// Timezone accepts an IANA zone name ("Europe/Berlin", "UTC") or the empty
// string. "Local" is refused: it names the server's zone, not the user's.
func Timezone(s string) error {
	if s == "" {
		return nil
	}
	if s == "Local" || len(s) > 64 {
		return errors.New("must be an IANA timezone name like Europe/Berlin")
	}
	if _, err := time.LoadLocation(s); err != nil {
		return errors.New("must be an IANA timezone name like Europe/Berlin")
	}
	return nil
}

// Locale accepts a BCP 47 language tag ("de", "en-US", "zh-Hant-TW") or the
// empty string.
func Locale(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 35 {
		return errors.New("must be a BCP 47 language tag like en-US")
	}
	if _, err := language.Parse(s); err != nil {
		return errors.New("must be a BCP 47 language tag like en-US")
	}
	return nil
}

var (
	hexToken = regexp.MustCompile(`^[0-9a-fA-F]+$`)
	fcmToken = regexp.MustCompile(`^[A-Za-z0-9_:-]+$`)
)

// Bounds of device tokens: APNs tokens are 32 bytes today (64 hex digits)
// but Apple warns they may grow; FCM tokens are about 150–200 characters.
const (
	minAPNsToken = 64
	maxAPNsToken = 200
	minFCMToken  = 100
	maxFCMToken  = 4096
)

// DeviceToken checks the token of an ios (APNs, hex) or android (FCM)
// device. Web devices have no token, only a subscription.
func DeviceToken(p herald.Platform, token string) error {
	switch p {
	case herald.PlatformIOS:
		if len(token) < minAPNsToken || len(token) > maxAPNsToken || len(token)%2 != 0 || !hexToken.MatchString(token) {
			return fmt.Errorf("must be an APNs device token: %d to %d hex digits", minAPNsToken, maxAPNsToken)
		}
	case herald.PlatformAndroid:
		if len(token) < minFCMToken || len(token) > maxFCMToken || !fcmToken.MatchString(token) {
			return fmt.Errorf("must be an FCM registration token: %d to %d characters of A-Z a-z 0-9 _ : -", minFCMToken, maxFCMToken)
		}
	case herald.PlatformWeb:
		return errors.New("web devices take a subscription, not a token")
	default:
		return errors.New("unknown platform")
	}
	return nil
}

// WebPushSubscription checks a browser push subscription as a whole. Its
// error message starts with the offending member ("endpoint", "keys.p256dh",
// "keys.auth"); callers that want to name the exact field call
// WebPushEndpoint, WebPushP256dh and WebPushAuth themselves.
func WebPushSubscription(s *herald.WebPushSubscription) error {
	if s == nil {
		return errors.New("must not be empty")
	}
	if err := WebPushEndpoint(s.Endpoint); err != nil {
		return fmt.Errorf("endpoint %w", err)
	}
	if err := WebPushP256dh(s.Keys.P256dh); err != nil {
		return fmt.Errorf("keys.p256dh %w", err)
	}
	if err := WebPushAuth(s.Keys.Auth); err != nil {
		return fmt.Errorf("keys.auth %w", err)
	}
	return nil
}

// WebPushEndpoint accepts an absolute https URL; plain http only on a
// loopback host, which is what local push services and test fakes use.
// Refusing private addresses is the sender's job (it depends on
// HERALD_ALLOW_PRIVATE_TARGETS), not a syntax check.
func WebPushEndpoint(endpoint string) error {
	if endpoint == "" {
		return errors.New("must not be empty")
	}
	if len(endpoint) > MaxEndpointLength || !utf8.ValidString(endpoint) {
		return fmt.Errorf("must be a URL of at most %d characters", MaxEndpointLength)
	}
	u, err := url.Parse(endpoint)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" || u.User != nil {
		return errors.New("must be an absolute https URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("must use https (http only for loopback hosts)")
	}
	return errors.New("must be an absolute https URL")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// WebPushP256dh accepts the base64url encoding (padded or not) of an
// uncompressed P-256 public key, which RFC 8291 encryption needs.
func WebPushP256dh(s string) error {
	b, err := decodeBase64URL(s)
	if err != nil || len(b) != 65 || b[0] != 0x04 {
		return errors.New("must be the base64url encoding of a 65-byte uncompressed P-256 point")
	}
	if _, err := ecdh.P256().NewPublicKey(b); err != nil {
		return errors.New("is not a point on the P-256 curve")
	}
	return nil
}

// WebPushAuth accepts the base64url encoding (padded or not) of the
// 16-byte authentication secret.
func WebPushAuth(s string) error {
	b, err := decodeBase64URL(s)
	if err != nil || len(b) != 16 {
		return errors.New("must be the base64url encoding of 16 bytes")
	}
	return nil
}

// decodeBase64URL accepts both padded and unpadded forms, because browsers
// give unpadded keys and some client libraries add the padding.
func decodeBase64URL(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// MaxCategoryLength bounds a category name.
const MaxCategoryLength = 64

// Category checks a notification category name (marketing, product,
// transactional, or the app's own): 1 to 64 ASCII letters, digits, '_',
// '-' or '.', so that names match exactly between sends and preferences.
func Category(name string) error {
	return plainName(name)
}

// Topic checks a topic name: the same rule as a category's, so that every
// name sits in one path segment of /v1/topics/{name}.
func Topic(name string) error { return plainName(name) }

func plainName(name string) error {
	if name == "" || len(name) > MaxCategoryLength {
		return fmt.Errorf("must be 1 to %d characters", MaxCategoryLength)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("use only letters, digits, '_', '-' and '.'")
		}
	}
	return nil
}
