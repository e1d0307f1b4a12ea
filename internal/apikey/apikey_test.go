package apikey

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		scope herald.Scope
		start string
	}{{herald.ScopeAdmin, "hrd_a_"}, {herald.ScopeSend, "hrd_s_"}} {
		key, prefix, err := New(tt.scope)
		if err != nil {
			t.Fatalf("New(%s): %v", tt.scope, err)
		}
		if !strings.HasPrefix(key, tt.start) || len(key) != 44 {
			t.Errorf("New(%s) key = %q, want %s + 38 characters", tt.scope, key, tt.start)
		}
		if !LooksLike(key) || Legacy(key) {
			t.Errorf("LooksLike(%q) = %v, Legacy = %v; want a current key", key, LooksLike(key), Legacy(key))
		}
		if prefix != key[:12] {
			t.Errorf("prefix = %q, want %q", prefix, key[:12])
		}
		if s, ok := ScopeOf(key); !ok || s != tt.scope {
			t.Errorf("ScopeOf(%q) = %q, %v; want %q", key, s, ok, tt.scope)
		}
	}
}

func TestGenerateReturnsLegacyHash(t *testing.T) {
	t.Parallel()
	key, _, hash, err := Generate(herald.ScopeSend)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(key))
	if !bytes.Equal(hash, want[:]) || !bytes.Equal(LegacyHash(key), want[:]) {
		t.Errorf("hash is not the SHA-256 of the key")
	}
}

func TestNewUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		key, _, err := New(herald.ScopeSend)
		if err != nil {
			t.Fatal(err)
		}
		if seen[key] {
			t.Fatalf("duplicate key %q", key)
		}
		seen[key] = true
	}
}

func TestNewUnknownScope(t *testing.T) {
	t.Parallel()
	if _, _, err := New("root"); err == nil {
		t.Fatal("New(root) succeeded, want an error")
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestGenerateRandomFailure(t *testing.T) {
	t.Parallel()
	if _, _, err := generate(failingReader{}, herald.ScopeAdmin); err == nil {
		t.Fatal("generate with a failing reader succeeded")
	}
}

// The sampler must skip bytes >= 248 instead of folding them onto the
// first characters.
func TestGenerateRejectsBiasedBytes(t *testing.T) {
	t.Parallel()
	src := bytes.NewReader(append(bytes.Repeat([]byte{255}, 64), bytes.Repeat([]byte{61}, 64)...))
	key, _, err := generate(src, herald.ScopeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if want := "hrd_a_" + strings.Repeat("z", 32); key[:LegacyLength] != want {
		t.Errorf("key = %q, want %q and a checksum", key, want)
	}
}

func TestLooksLike(t *testing.T) {
	t.Parallel()
	legacy := "hrd_s_" + strings.Repeat("aZ09", 8)
	current := string(appendChecksum([]byte(legacy), []byte(legacy)))
	for _, tt := range []struct {
		key string
		ok  bool
	}{
		{legacy, true},
		{current, true},
		{"", false},
		{legacy[:37], false},
		{legacy + "a", false},
		{current[:43], false},
		{current + "a", false},
		{"hrd_x_" + strings.Repeat("aZ09", 8), false},
		{"hrd_s_" + strings.Repeat("aZ0-", 8), false},
		{"hrd_s_" + strings.Repeat("aZ0-", 8) + current[38:], false},
		{"Bearer " + legacy, false},
		// A legacy-length body with another key's checksum.
		{legacy[:37] + "b" + current[38:], false},
	} {
		if got := LooksLike(tt.key); got != tt.ok {
			t.Errorf("LooksLike(%q) = %v, want %v", tt.key, got, tt.ok)
		}
	}
}

// Every change of one character of a key, checksum included, makes a
// string that LooksLike refuses: a mistyped key never reaches the store.
func TestChecksumCatchesEveryOneCharacterTypo(t *testing.T) {
	t.Parallel()
	for range 20 {
		key, _, err := New(herald.ScopeAdmin)
		if err != nil {
			t.Fatal(err)
		}
		b := []byte(key)
		for i := headLength; i < len(b); i++ {
			orig := b[i]
			for j := range len(base62) {
				if base62[j] == orig {
					continue
				}
				b[i] = base62[j]
				if LooksLike(string(b)) {
					t.Fatalf("LooksLike(%q) = true: the typo at %d of %q went unnoticed", b, i, key)
				}
			}
			b[i] = orig
		}
		// Two neighbours swapped.
		for i := headLength; i+1 < len(b); i++ {
			if b[i] == b[i+1] {
				continue
			}
			b[i], b[i+1] = b[i+1], b[i]
			if LooksLike(string(b)) {
				t.Fatalf("LooksLike(%q) = true: the swap at %d of %q went unnoticed", b, i, key)
			}
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
}

func TestHasher(t *testing.T) {
	t.Parallel()
	if _, err := NewHasher(make([]byte, 16)); err == nil {
		t.Error("NewHasher accepted a 16-byte key")
	}
	k1 := bytes.Repeat([]byte{1}, 32)
	h1, err := NewHasher(k1)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := NewHasher(bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := New(herald.ScopeSend)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, k1)
	m.Write([]byte(key))
	if got := h1.Sum(key); !bytes.Equal(got, m.Sum(nil)) {
		t.Errorf("Sum is not HMAC-SHA256 under the hasher's key")
	}
	if Equal(h1.Sum(key), h2.Sum(key)) {
		t.Error("two hash keys gave the same hash")
	}
	if Equal(h1.Sum(key), LegacyHash(key)) {
		t.Error("the keyed hash equals the legacy hash")
	}
	if !Equal(h1.Sum(key), h1.Sum(key)) {
		t.Error("Equal of the same hash is false")
	}
}
