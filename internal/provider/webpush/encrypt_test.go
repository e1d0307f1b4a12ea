package webpush

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"testing"
)

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

func TestEncryptRFC8291Vector(t *testing.T) {
	t.Parallel()
	// The test vector of RFC 8291 Appendix A (PROVIDERS.md §3.5).
	v := struct {
		plaintext, asPrivate, asPublic, uaPublic, salt, auth, cek, nonce, body string
	}{
		plaintext: "V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24",
		asPrivate: "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
		asPublic:  "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
		uaPublic:  "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
		salt:      "DGv6ra1nlYgDCS1FRnbzlw",
		auth:      "BTBZMqHH6r4Tts7J_aSIgg",
		cek:       "oIhVW04MRdy2XN9CiKLxTg",
		nonce:     "4h_95klXJ5E_qnoN",
		body:      "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
	}
	as, err := ecdh.P256().NewPrivateKey(b64(t, v.asPrivate))
	if err != nil {
		t.Fatal(err)
	}
	if got := as.PublicKey().Bytes(); !bytes.Equal(got, b64(t, v.asPublic)) {
		t.Fatalf("as_public = %x, want the vector's", got)
	}
	ua, err := ecdh.P256().NewPublicKey(b64(t, v.uaPublic))
	if err != nil {
		t.Fatal(err)
	}

	secret, err := as.ECDH(ua)
	if err != nil {
		t.Fatal(err)
	}
	cek, nonce, err := deriveKeys(secret, b64(t, v.auth), ua.Bytes(), as.PublicKey().Bytes(), b64(t, v.salt))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := base64.RawURLEncoding.EncodeToString(cek), v.cek; got != want {
		t.Errorf("CEK = %s, want %s", got, want)
	}
	if got, want := base64.RawURLEncoding.EncodeToString(nonce), v.nonce; got != want {
		t.Errorf("NONCE = %s, want %s", got, want)
	}

	body, err := encrypt(b64(t, v.plaintext), ua, b64(t, v.auth), as, b64(t, v.salt))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(body); got != v.body {
		t.Fatalf("body =\n%s\nwant\n%s", got, v.body)
	}
	if len(body) != 144 {
		t.Fatalf("body is %d bytes, want 144", len(body))
	}
}

func TestEncryptSizeLimit(t *testing.T) {
	t.Parallel()
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	as, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth, salt := make([]byte, 16), make([]byte, 16)

	body, err := encrypt(make([]byte, maxPlaintext), ua.PublicKey(), auth, as, salt)
	if err != nil {
		t.Fatalf("encrypt %d bytes: %v", maxPlaintext, err)
	}
	if len(body) != recordSize {
		t.Fatalf("the largest payload encrypts to %d bytes, want exactly %d", len(body), recordSize)
	}
	if _, err := encrypt(make([]byte, maxPlaintext+1), ua.PublicKey(), auth, as, salt); err == nil {
		t.Fatalf("encrypt %d bytes succeeded, want an error", maxPlaintext+1)
	}
}

func TestTopic(t *testing.T) {
	t.Parallel()
	a, b := Topic("dlv_1"), Topic("dlv_2")
	if len(a) != 32 {
		t.Fatalf("Topic is %d characters, want 32", len(a))
	}
	if a != Topic("dlv_1") || a == b {
		t.Fatalf("Topic must be stable per delivery and differ between deliveries: %q %q", a, b)
	}
	for _, r := range a {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			t.Fatalf("Topic %q has %q, outside URL-safe base64", a, r)
		}
	}
}

func BenchmarkEncrypt(b *testing.B) {
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	plain := bytes.Repeat([]byte("x"), 256)
	b.ReportAllocs()
	for b.Loop() {
		// A fresh ephemeral key and salt per message, as Send does.
		as, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		salt := make([]byte, saltLen)
		_, _ = rand.Read(salt)
		if _, err := encrypt(plain, ua.PublicKey(), auth, as, salt); err != nil {
			b.Fatal(err)
		}
	}
}
