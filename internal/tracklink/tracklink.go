// Package tracklink builds and checks the links Herald hands out for
// tracking: click redirects (/t/c/{token}), the email open pixel
// (/t/o/{token}) and the unsubscribe page (/u/{token}), all on the public
// URL. A token names the delivery (and, for a click, the original URL)
// and carries an HMAC of it, so a link cannot be forged or pointed
// elsewhere: there is no open redirect.
package tracklink

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/heraldhq/herald"
)

// Kind says what a token is for; a token of one kind is refused as another.
type Kind byte

// Token kinds.
const (
	KindClick       Kind = 'c'
	KindOpen        Kind = 'o'
	KindUnsubscribe Kind = 'u'
)

// Paths below the public URL; each is followed by the token.
const (
	ClickPath       = "/t/c/"
	OpenPath        = "/t/o/"
	UnsubscribePath = "/u/"
)

// macSize is the length of the truncated HMAC-SHA256 a token ends with:
// 128 bits is far beyond guessing and keeps links short.
const macSize = 16

// MaxTokenLength bounds a token as it appears in a path; longer ones are
// refused before any work.
const MaxTokenLength = 4096

// MaxURLLength bounds an original URL that is wrapped in a click link.
const MaxURLLength = 2048

// Target is what a token names.
type Target struct {
	Kind       Kind
	AppID      string
	DeliveryID string
	URL        string // clicks only: where the click leads
}

// Links makes and checks tokens with one key. It is safe for concurrent use.
type Links struct {
	base string // the public URL without a trailing slash
	key  []byte
}

// New returns Links on publicURL (HERALD_PUBLIC_URL) with a key of at
// least 32 bytes, derived from the deployment's secret key so that every
// process makes and accepts the same tokens.
func New(publicURL string, key []byte) (*Links, error) {
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracklink: public URL %q is not an absolute http(s) URL", publicURL)
	}
	if len(key) < 32 {
		return nil, errors.New("tracklink: the key must be at least 32 bytes")
	}
	return &Links{base: strings.TrimSuffix(publicURL, "/"), key: bytes.Clone(key)}, nil
}

// Base returns the public URL links are built on, without a trailing slash.
func (l *Links) Base() string { return l.base }

// Token returns the URL-safe token of t.
func (l *Links) Token(t Target) string {
	p := make([]byte, 0, 1+2*binary.MaxVarintLen32+len(t.AppID)+len(t.DeliveryID)+len(t.URL)+macSize)
	p = append(p, byte(t.Kind))
	p = binary.AppendUvarint(p, uint64(len(t.AppID)))
	p = append(p, t.AppID...)
	p = binary.AppendUvarint(p, uint64(len(t.DeliveryID)))
	p = append(p, t.DeliveryID...)
	p = append(p, t.URL...)
	p = append(p, l.mac(p)...)
	return base64.RawURLEncoding.EncodeToString(p)
}

func (l *Links) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write(payload)
	return m.Sum(nil)[:macSize]
}

// ErrBadToken is returned (wrapped) for any token that is not one of ours
// of the kind asked for; the causes are deliberately not told apart.
var ErrBadToken = &herald.Error{Code: herald.CodeNotFound, Message: "no such link"}

// Parse checks token and returns what it names. The MAC is compared in
// constant time. Errors: ErrBadToken (CodeNotFound) for anything wrong.
func (l *Links) Parse(kind Kind, token string) (Target, error) {
	if token == "" || len(token) > MaxTokenLength {
		return Target{}, ErrBadToken
	}
	// A token has one spelling. The lenient decoder ignores the unused
	// low bits of the last character, and every decoder skips \r and \n,
	// so other spellings of a token would pass the MAC and a hit could not
	// be told by its token: what decodes must encode back to the token.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) < 1+macSize || base64.RawURLEncoding.EncodeToString(raw) != token {
		return Target{}, ErrBadToken
	}
	payload, sum := raw[:len(raw)-macSize], raw[len(raw)-macSize:]
	if !hmac.Equal(sum, l.mac(payload)) || Kind(payload[0]) != kind {
		return Target{}, ErrBadToken
	}
	rest := payload[1:]
	field := func() (string, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return "", false
		}
		s := string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
		return s, true
	}
	t := Target{Kind: kind}
	var ok1, ok2 bool
	t.AppID, ok1 = field()
	t.DeliveryID, ok2 = field()
	if !ok1 || !ok2 || t.AppID == "" || t.DeliveryID == "" {
		return Target{}, ErrBadToken
	}
	t.URL = string(rest)
	if kind == KindClick && !Trackable(t.URL) {
		return Target{}, ErrBadToken
	}
	if kind != KindClick && t.URL != "" {
		return Target{}, ErrBadToken
	}
	return t, nil
}

// Trackable reports whether a click on raw can go through a tracking
// link: only absolute http and https URLs of sensible length, so that a
// redirect can never lead to javascript:, data: or another scheme.
func Trackable(raw string) bool {
	if raw == "" || len(raw) > MaxURLLength || strings.ContainsAny(raw, " \t\r\n\x00") {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	return scheme == "http" || scheme == "https"
}

// ClickURL returns the tracking link of a click on target in the
// delivery, or target itself when it cannot be tracked (mailto:, tel:,
// anchors, relative or overlong URLs).
func (l *Links) ClickURL(appID, deliveryID, target string) string {
	if !Trackable(target) {
		return target
	}
	return l.base + ClickPath + l.Token(Target{Kind: KindClick, AppID: appID, DeliveryID: deliveryID, URL: target})
}

// OpenURL returns the open pixel's URL of the delivery.
func (l *Links) OpenURL(appID, deliveryID string) string {
	return l.base + OpenPath + l.Token(Target{Kind: KindOpen, AppID: appID, DeliveryID: deliveryID})
}

// UnsubscribeURL returns the delivery's unsubscribe page, which also
// takes the RFC 8058 one-click POST.
func (l *Links) UnsubscribeURL(appID, deliveryID string) string {
	return l.base + UnsubscribePath + l.Token(Target{Kind: KindUnsubscribe, AppID: appID, DeliveryID: deliveryID})
}

// Prepare returns m with its links made trackable: every http(s) href of
// an email's HTML goes through a click link and an open pixel is added;
// a push's url (content.url and data["url"]) goes through a click link.
// listUnsubscribe sets the email's unsubscribe URL (List-Unsubscribe and
// RFC 8058 one-click); critical categories go without.
func (l *Links) Prepare(m herald.Message, listUnsubscribe bool) herald.Message {
	switch m.Channel {
	case herald.ChannelEmail:
		if m.Content.HTML != "" {
			m.Content.HTML = l.RewriteHTML(m.Content.HTML, m.AppID, m.DeliveryID)
		}
		if listUnsubscribe {
			m.UnsubscribeURL = l.UnsubscribeURL(m.AppID, m.DeliveryID)
		}
	case herald.ChannelPush:
		m.Content.URL = l.ClickURL(m.AppID, m.DeliveryID, m.Content.URL)
		if u, ok := m.Content.Data["url"]; ok {
			// The map is the notification's own: change a copy.
			data := make(map[string]string, len(m.Content.Data))
			for k, v := range m.Content.Data {
				data[k] = v
			}
			data["url"] = l.ClickURL(m.AppID, m.DeliveryID, u)
			m.Content.Data = data
		}
	}
	return m
}
