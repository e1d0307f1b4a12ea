// Package apikey makes and recognises Herald API keys. A key looks like
// hrd_a_<32 base62 characters> (a: admin, s: send) so that it is easy to
// spot in logs and secret scanners; only its SHA-256 hash is stored.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"regexp"

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

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var shape = regexp.MustCompile(`^hrd_[as]_[0-9A-Za-z]{32}$`)

// Generate makes a new key of the given scope and returns it with its
// prefix and hash. The key itself must be shown to the caller once and
// never stored.
func Generate(scope herald.Scope) (key, prefix string, hash []byte, err error) {
	return generate(rand.Reader, scope)
}

func generate(r io.Reader, scope herald.Scope) (key, prefix string, hash []byte, err error) {
	var tag byte
	switch scope {
	case herald.ScopeAdmin:
		tag = 'a'
	case herald.ScopeSend:
		tag = 's'
	default:
		return "", "", nil, fmt.Errorf("apikey: unknown scope %q", scope)
	}
	b := make([]byte, 0, 6+randomLength)
	b = append(b, "hrd_"...)
	b = append(b, tag, '_')
	var buf [64]byte
	for len(b) < cap(b) {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", "", nil, fmt.Errorf("apikey: read random bytes: %w", err)
		}
		for _, c := range buf {
			// Rejection sampling: 248 is the largest multiple of 62 below
			// 256, so every character is equally likely.
			if c >= 248 || len(b) == cap(b) {
				continue
			}
			b = append(b, base62[c%62])
		}
	}
	key = string(b)
	return key, key[:PrefixLength], Hash(key), nil
}

// Hash returns the SHA-256 of the whole key, which is what the store keeps
// and looks keys up by. A fast hash is enough: keys are random, not passwords.
func Hash(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// LooksLike reports whether key has the shape of a Herald key, so that
// obviously wrong credentials are refused without a store lookup.
func LooksLike(key string) bool {
	return shape.MatchString(key)
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
