// Package secret seals credentials at rest (provider settings, webhook
// secrets) with AES-256-GCM, so a copy of the database alone reveals nothing.
package secret

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// version1 prefixes every sealed value, so the format can change later
// (another cipher, key rotation with a key id) without guessing.
const version1 byte = 1

// ErrOpen is returned (wrapped) by Open when a sealed value was tampered
// with, was sealed with another key or associated data, or is not a sealed
// value at all. The causes are deliberately indistinguishable.
var ErrOpen = errors.New("secret: cannot open sealed value")

// Box seals and opens values with one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a Box for a KeySize-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: new cipher: %w", err)
	}
	// A random 96-bit nonce per value: keys seal far fewer than the 2^32
	// values after which random nonces become a collision risk.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("secret: new GCM: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext bound to associatedData (for example the app id
// and provider kind, so a sealed value cannot be moved to another row).
// The result is version byte || nonce || ciphertext || tag.
func (b *Box) Seal(plaintext, associatedData []byte) ([]byte, error) {
	out := make([]byte, 1, 1+b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	out[0] = version1
	// The version byte is authenticated too, so it cannot be rewritten.
	return b.aead.Seal(out, nil, plaintext, withVersion(version1, associatedData)), nil
}

// Open decrypts a value made by Seal with the same key and associatedData.
// Any mismatch or tampering returns an error wrapping ErrOpen.
func (b *Box) Open(sealed, associatedData []byte) ([]byte, error) {
	if len(sealed) < 1+b.aead.NonceSize()+b.aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("%w: unknown version %d", ErrOpen, sealed[0])
	}
	plain, err := b.aead.Open(nil, nil, sealed[1:], withVersion(sealed[0], associatedData))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

func withVersion(v byte, ad []byte) []byte {
	out := make([]byte, 0, 1+len(ad))
	return append(append(out, v), ad...)
}

// ParseKey decodes a key given as standard base64 of KeySize bytes, the
// form of HERALD_SECRET_KEY and of the key file.
func ParseKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("secret: parse key: not base64: %w", err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: parse key: %d bytes, want %d", len(key), KeySize)
	}
	return key, nil
}

// LoadOrCreateKey reads the base64 key file at path, or creates it with a
// new random key (mode 0600) when it does not exist. Creation is atomic:
// the file appears complete or not at all, and when two processes race the
// first one's key wins and both return it.
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}

	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("secret: create key %q: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".herald-key-*") // CreateTemp makes it 0600
	if err != nil {
		return nil, fmt.Errorf("secret: create key %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("secret: create key %q: %w", path, werr)
	}
	// Link, unlike Rename, never replaces a key another process created
	// meanwhile: replacing it would orphan everything sealed with it.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKey(path)
		}
		return nil, fmt.Errorf("secret: create key %q: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new name durable; best effort on filesystems that refuse
		_ = d.Close()
	}
	return key, nil
}

func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret: read key %q: %w", path, err)
	}
	key, err := ParseKey(string(bytes.TrimSpace(b)))
	if err != nil {
		return nil, fmt.Errorf("secret: key file %q: %w", path, err)
	}
	return key, nil
}

// Derive returns a 32-byte key for one purpose ("tracking-links"), derived
// from the deployment's key with HMAC-SHA256, so that every process sharing
// HERALD_SECRET_KEY derives the same one and no use ever sees the key
// that seals credentials.
func Derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("herald derived key\x00" + purpose))
	return m.Sum(nil)
}
