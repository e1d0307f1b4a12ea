package secret_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/heraldhq/herald/internal/secret"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	key := make([]byte, secret.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

func newBox(t *testing.T, key []byte) *secret.Box {
	t.Helper()
	b, err := secret.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b := newBox(t, newKey(t))
	for _, plain := range [][]byte{nil, []byte("x"), []byte(`{"api_key":"SG.secret"}`), bytes.Repeat([]byte("a"), 1<<16)} {
		sealed, err := b.Seal(plain, []byte("app1/email/0"))
		if err != nil {
			t.Fatal(err)
		}
		if len(plain) >= 8 && bytes.Contains(sealed, plain) {
			t.Fatalf("sealed value contains the plaintext")
		}
		got, err := b.Open(sealed, []byte("app1/email/0"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("Open = %q, want %q", got, plain)
		}
	}
}

func TestSealIsRandomised(t *testing.T) {
	t.Parallel()
	b := newBox(t, newKey(t))
	s1, _ := b.Seal([]byte("same"), nil)
	s2, _ := b.Seal([]byte("same"), nil)
	if bytes.Equal(s1, s2) {
		t.Fatal("two seals of the same plaintext are equal; the nonce is not random")
	}
	if s1[0] != 1 {
		t.Fatalf("version byte = %d, want 1", s1[0])
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	b := newBox(t, key)
	ad := []byte("app1/sms/0")
	sealed, err := b.Seal([]byte("auth-token"), ad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name   string
		box    *secret.Box
		sealed []byte
		ad     []byte
	}{
		{"tampered version", b, flip(0), ad},
		{"tampered nonce", b, flip(1), ad},
		{"tampered ciphertext", b, flip(len(sealed) / 2), ad},
		{"tampered tag", b, flip(len(sealed) - 1), ad},
		{"truncated", b, sealed[:len(sealed)-1], ad},
		{"too short", b, sealed[:5], ad},
		{"empty", b, nil, ad},
		{"wrong associated data", b, sealed, []byte("app2/sms/0")},
		{"missing associated data", b, sealed, nil},
		{"wrong key", newBox(t, newKey(t)), sealed, ad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.box.Open(tt.sealed, tt.ad)
			if !errors.Is(err, secret.ErrOpen) {
				t.Fatalf("Open = %q, %v; want ErrOpen", got, err)
			}
		})
	}
}

func TestNewBoxKeySize(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := secret.NewBox(make([]byte, n)); err == nil {
			t.Errorf("NewBox(%d-byte key) succeeded, want error", n)
		}
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	enc := base64.StdEncoding.EncodeToString(key)
	got, err := secret.ParseKey(" " + enc + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, key) {
		t.Fatal("ParseKey returned another key")
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(key[:16])} {
		if _, err := secret.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded, want error", bad)
		}
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret.key")

	k1, err := secret.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != secret.KeySize {
		t.Fatalf("key is %d bytes", len(k1))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode = %o, want 600", perm)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := secret.ParseKey(string(content)); !bytes.Equal(got, k1) {
		t.Fatal("the file does not hold the returned key as base64")
	}

	k2, err := secret.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("second LoadOrCreateKey returned a new key; want the stored one")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the key file (temp file left behind?)", len(entries))
	}
}

func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret.key")
	const n = 16
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = secret.LoadOrCreateKey(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatal("concurrent callers got different keys")
		}
	}
}

func TestLoadOrCreateKeyRejectsBadFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := secret.LoadOrCreateKey(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadOrCreateKey(bad file) = %v, want an error naming the file", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "short" {
		t.Fatal("a bad key file was overwritten")
	}
}

func TestDerive(t *testing.T) {
	k1, k2 := make([]byte, secret.KeySize), make([]byte, secret.KeySize)
	k2[0] = 1
	a, b := secret.Derive(k1, "tracking-links"), secret.Derive(k1, "tracking-links")
	if len(a) != 32 || !bytes.Equal(a, b) {
		t.Fatalf("Derive is not a stable 32-byte key: %x %x", a, b)
	}
	if bytes.Equal(a, secret.Derive(k1, "other")) || bytes.Equal(a, secret.Derive(k2, "tracking-links")) || bytes.Equal(a, k1) {
		t.Error("Derive gives the same key for another purpose or key, or the key itself")
	}
}
