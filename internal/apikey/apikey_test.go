package apikey

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

func TestGenerate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		scope herald.Scope
		start string
	}{{herald.ScopeAdmin, "hrd_a_"}, {herald.ScopeSend, "hrd_s_"}} {
		key, prefix, hash, err := Generate(tt.scope)
		if err != nil {
			t.Fatalf("Generate(%s): %v", tt.scope, err)
		}
		if !strings.HasPrefix(key, tt.start) || len(key) != 38 {
			t.Errorf("Generate(%s) key = %q, want %s + 32 characters", tt.scope, key, tt.start)
		}
		if !LooksLike(key) {
			t.Errorf("LooksLike(%q) = false for a generated key", key)
		}
		if prefix != key[:12] {
			t.Errorf("prefix = %q, want %q", prefix, key[:12])
		}
		want := sha256.Sum256([]byte(key))
		if !bytes.Equal(hash, want[:]) || !bytes.Equal(Hash(key), want[:]) {
			t.Errorf("hash is not the SHA-256 of the key")
		}
		if s, ok := ScopeOf(key); !ok || s != tt.scope {
			t.Errorf("ScopeOf(%q) = %q, %v; want %q", key, s, ok, tt.scope)
		}
	}
}

func TestGenerateUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		key, _, _, err := Generate(herald.ScopeSend)
		if err != nil {
			t.Fatal(err)
		}
		if seen[key] {
			t.Fatalf("duplicate key %q", key)
		}
		seen[key] = true
	}
}

func TestGenerateUnknownScope(t *testing.T) {
	t.Parallel()
	if _, _, _, err := Generate("root"); err == nil {
		t.Fatal("Generate(root) succeeded, want an error")
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestGenerateRandomFailure(t *testing.T) {
	t.Parallel()
	if _, _, _, err := generate(failingReader{}, herald.ScopeAdmin); err == nil {
		t.Fatal("generate with a failing reader succeeded")
	}
}

// The sampler must skip bytes >= 248 instead of folding them onto the
// first characters.
func TestGenerateRejectsBiasedBytes(t *testing.T) {
	t.Parallel()
	src := bytes.NewReader(append(bytes.Repeat([]byte{255}, 64), bytes.Repeat([]byte{61}, 64)...))
	key, _, _, err := generate(src, herald.ScopeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if want := "hrd_a_" + strings.Repeat("z", 32); key != want {
		t.Errorf("key = %q, want %q", key, want)
	}
}

func TestLooksLike(t *testing.T) {
	t.Parallel()
	good := "hrd_s_" + strings.Repeat("aZ09", 8)
	for _, tt := range []struct {
		key string
		ok  bool
	}{
		{good, true},
		{"", false},
		{good[:37], false},
		{good + "a", false},
		{"hrd_x_" + strings.Repeat("aZ09", 8), false},
		{"hrd_s_" + strings.Repeat("aZ0-", 8), false},
		{"Bearer " + good, false},
	} {
		if got := LooksLike(tt.key); got != tt.ok {
			t.Errorf("LooksLike(%q) = %v, want %v", tt.key, got, tt.ok)
		}
	}
}
