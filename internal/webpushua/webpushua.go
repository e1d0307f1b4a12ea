// Package webpushua is the receiving end of Web Push as a browser (the
// user agent) has it: opening an RFC 8291 aes128gcm message and checking an
// RFC 8030 Topic. The test fake of a push service and the bench sink both
// check what Herald sends with it. It is written from the RFCs, apart from
// the adapter's encryption, so that a mistake in one is not mirrored in the
// other.
package webpushua

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Decrypt opens an RFC 8291 aes128gcm body as the user agent holding key
// and auth would: it reads the header, runs ECDH with the sender's key from
// keyid, derives the key and nonce, opens the single record and strips its
// padding and 0x02 delimiter.
func Decrypt(body []byte, key *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("body shorter than the aes128gcm header")
	}
	salt := body[:16]
	rs := binary.BigEndian.Uint32(body[16:20])
	idlen := int(body[20])
	if rs < 18 {
		return nil, fmt.Errorf("record size %d is under 18", rs)
	}
	if idlen != 65 || len(body) < 21+idlen {
		return nil, fmt.Errorf("keyid is %d bytes, want the sender's 65-byte public key", idlen)
	}
	senderBytes := body[21 : 21+idlen]
	record := body[21+idlen:]
	if len(record) > int(rs) {
		return nil, fmt.Errorf("record of %d bytes is over the record size %d: more than one record", len(record), rs)
	}
	sender, err := ecdh.P256().NewPublicKey(senderBytes)
	if err != nil {
		return nil, fmt.Errorf("keyid: %w", err)
	}
	secret, err := key.ECDH(sender)
	if err != nil {
		return nil, err
	}
	// RFC 8291 §3.4: PRK_key = HMAC(auth, ecdh), IKM = HMAC(PRK_key, key_info || 1).
	keyInfo := append([]byte("WebPush: info\x00"), key.PublicKey().Bytes()...)
	keyInfo = append(keyInfo, senderBytes...)
	prkKey, err := hkdf.Extract(sha256.New, secret, auth)
	if err != nil {
		return nil, err
	}
	ikm, err := hkdf.Expand(sha256.New, prkKey, string(keyInfo), 32)
	if err != nil {
		return nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	padded, err := gcm.Open(nil, nonce, record, nil)
	if err != nil {
		return nil, fmt.Errorf("aes-128-gcm: %w", err)
	}
	i := len(padded) - 1
	for i >= 0 && padded[i] == 0 {
		i--
	}
	if i < 0 || padded[i] != 0x02 {
		return nil, errors.New("the record does not end with the last-record delimiter 0x02")
	}
	return padded[:i], nil
}

// ValidTopic is RFC 8030 §5.4: at most 32 characters of URL-safe base64.
func ValidTopic(t string) bool {
	if len(t) > 32 {
		return false
	}
	for _, r := range t {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
