// Package apikey makes and recognises Herald API keys. A key looks like
// hrd_a_<32 random base62 characters><6 base62 checksum characters>
// (a: admin, s: send), so that it is easy to spot in logs and secret
// scanners, and a mistyped or truncated key is told apart from a real one
// without a store lookup. Keys issued before the checksum existed (the
// same without its last six characters) are still accepted.
//
// The store keeps a keyed hash of each key (HMAC-SHA256 under a key
// derived from the deployment's secret), so a copy of the database alone
// does not let anyone check guesses offline. Keys stored by older
// versions carry the plain SHA-256 (LegacyHash) until their first use.
package apikey

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/heraldhq/herald"
)

// PrefixLength is how many leading characters of a key are kept in the
// clear (as herald.APIKey.Prefix) to recognise it in lists: "hrd_a_" and
// six random characters.
const PrefixLength = 12

// randomLength is the number of base62 characters after the scope tag:
// 32 of them carry about 190 bits, so a hash lookup without rate limiting
// is still safe.
const randomLength = 32

// checksumLength is the number of base62 characters of the checksum, a
// CRC32 of everything before it: 62^6 exceeds 2^32, so every value fits.
const checksumLength = 6

// headLength is "hrd_" and the scope tag with its underscore.
const headLength = 6

// Lengths of a whole key, with and without the checksum.
const (
	Length       = headLength + randomLength + checksumLength
	LegacyLength = headLength + randomLength
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// New makes a new key of the given scope and returns it with its prefix.
// The key itself must be shown to the caller once and never stored: the
// store keeps Hasher.Sum of it.
func New(scope herald.Scope) (key, prefix string, err error) {
	return generate(rand.Reader, scope)
}

// Generate makes a new key as New does and returns it with its
// LegacyHash, for callers that have no Hasher; the key is rehashed with
// the keyed hash on its first use.
func Generate(scope herald.Scope) (key, prefix string, hash []byte, err error) {
	key, prefix, err = New(scope)
	if err != nil {
		return "", "", nil, err
	}
	return key, prefix, LegacyHash(key), nil
}

func generate(r io.Reader, scope herald.Scope) (key, prefix string, err error) {
	var tag byte
	switch scope {
	case herald.ScopeAdmin:
		tag = 'a'
	case herald.ScopeSend:
		tag = 's'
	default:
		return "", "", fmt.Errorf("apikey: unknown scope %q", scope)
	}
	b := make([]byte, 0, Length)
	b = append(b, "hrd_"...)
	b = append(b, tag, '_')
	var buf [64]byte
	for len(b) < LegacyLength {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", "", fmt.Errorf("apikey: read random bytes: %w", err)
		}
		for _, c := range buf {
			// Rejection sampling: 248 is the largest multiple of 62 below
			// 256, so every character is equally likely.
			if c >= 248 || len(b) == LegacyLength {
				continue
			}
			b = append(b, base62[c%62])
		}
	}
	b = appendChecksum(b, b)
	key = string(b)
	return key, key[:PrefixLength], nil
}

// appendChecksum appends the checksum of body to dst.
func appendChecksum(dst, body []byte) []byte {
	sum := uint64(crc32.ChecksumIEEE(body))
	var c [checksumLength]byte
	for i := checksumLength - 1; i >= 0; i-- {
		c[i] = base62[sum%62]
		sum /= 62
	}
	return append(dst, c[:]...)
}

// LooksLike reports whether key has the shape of a Herald key, with a
// checksum that matches, or the shape of a key issued before checksums;
// obviously wrong credentials are refused without a store lookup.
func LooksLike(key string) bool {
	switch len(key) {
	case Length:
		if !wellFormed(key) {
			return false
		}
		var buf [Length]byte
		want := appendChecksum(buf[:0], []byte(key[:LegacyLength]))
		return subtle.ConstantTimeCompare(want, []byte(key[LegacyLength:])) == 1
	case LegacyLength:
		return wellFormed(key)
	}
	return false
}

// Legacy reports whether key has the shape of a key issued before
// checksums (which LooksLike accepts too).
func Legacy(key string) bool { return len(key) == LegacyLength && wellFormed(key) }

// wellFormed checks the head and that the rest is base62.
func wellFormed(key string) bool {
	if key[:4] != "hrd_" || (key[4] != 'a' && key[4] != 's') || key[5] != '_' {
		return false
	}
	for i := headLength; i < len(key); i++ {
		c := key[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// ScopeOf returns the scope the key's tag claims. The stored key's scope is
// authoritative; this is for display and logs.
func ScopeOf(key string) (herald.Scope, bool) {
	if !LooksLike(key) {
		return "", false
	}
	if key[4] == 'a' {
		return herald.ScopeAdmin, true
	}
	return herald.ScopeSend, true
}

// LegacyHash returns the plain SHA-256 of the whole key, which older
// versions stored; lookups fall back to it for keys stored then.
func LegacyHash(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// Hash is LegacyHash, kept for callers written before the keyed hash.
func Hash(key string) []byte { return LegacyHash(key) }

// Hasher computes the keyed hash of keys that the store keeps and looks
// keys up by. It is safe for concurrent use.
type Hasher struct {
	key []byte
}

// NewHasher returns a Hasher under a key of at least 32 bytes, derived
// for this purpose alone from the deployment's secret (secret.Derive(key,
// "api-keys")), so every process sharing the secret computes the same hashes.
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("apikey: hash key of %d bytes, want at least 32", len(key))
	}
	return &Hasher{key: append([]byte(nil), key...)}, nil
}

// Sum returns HMAC-SHA256 of the whole key. A fast MAC is enough: keys are
// random, not passwords; the key of the MAC makes a stolen table useless
// for testing guesses.
func (h *Hasher) Sum(key string) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(key))
	return m.Sum(nil)
}

// Equal compares two hashes in constant time.
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
