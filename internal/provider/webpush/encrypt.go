package webpush

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

// Sizes of the aes128gcm content coding (RFC 8188) as Web Push uses it
// (RFC 8291 §4).
const (
	recordSize = 4096 // rs: the one record may be at most this long, and so the whole body
	saltLen    = 16
	authLen    = 16 // the subscription's auth secret
	keyLen     = 65 // an uncompressed P-256 point
	headerLen  = saltLen + 4 + 1 + keyLen
	tagLen     = 16
	// maxPlaintext is what fits in the one record: the body is at most
	// recordSize, less the header, the 0x02 delimiter and the AEAD tag.
	maxPlaintext = recordSize - headerLen - 1 - tagLen
)

// encrypt seals plaintext for the subscriber whose public key is uaPublic
// and whose auth secret is auth, per RFC 8291 with the aes128gcm coding.
// The ephemeral key as and the 16-byte salt must be fresh for every
// message; they are parameters so the RFC's test vector can be reproduced.
// The result is the whole request body: header, then the single record.
func encrypt(plaintext []byte, uaPublic *ecdh.PublicKey, auth []byte, as *ecdh.PrivateKey, salt []byte) ([]byte, error) {
	if len(plaintext) > maxPlaintext {
		return nil, fmt.Errorf("payload of %d bytes is over the %d that fit in one %d-byte record", len(plaintext), maxPlaintext, recordSize)
	}
	if len(salt) != saltLen {
		return nil, fmt.Errorf("salt is %d bytes, want %d", len(salt), saltLen)
	}
	secret, err := as.ECDH(uaPublic)
	if err != nil {
		return nil, fmt.Errorf("ecdh: %w", err)
	}
	asPublic := as.PublicKey().Bytes()
	cek, nonce, err := deriveKeys(secret, auth, uaPublic.Bytes(), asPublic, salt)
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

	body := make([]byte, headerLen, headerLen+len(plaintext)+1+tagLen)
	copy(body, salt)
	binary.BigEndian.PutUint32(body[saltLen:], recordSize)
	body[saltLen+4] = keyLen
	copy(body[saltLen+5:], asPublic)
	// The record is the plaintext, the last-record delimiter 0x02 and no
	// padding; it is sealed in place after the header.
	record := append(body[headerLen:], plaintext...)
	record = append(record, 0x02)
	return gcm.Seal(body[:headerLen], nonce, record, nil), nil
}

// deriveKeys computes the content encryption key and the nonce of the
// first (and only) record: RFC 8291 §3.3–3.4 and RFC 8188 §2.2–2.3.
func deriveKeys(ecdhSecret, auth, uaPublic, asPublic, salt []byte) (cek, nonce []byte, err error) {
	if len(auth) != authLen {
		return nil, nil, errors.New("auth secret is not 16 bytes")
	}
	info := make([]byte, 0, 14+2*keyLen)
	info = append(info, "WebPush: info\x00"...)
	info = append(info, uaPublic...)
	info = append(info, asPublic...)
	ikm, err := hkdf.Key(sha256.New, ecdhSecret, auth, string(info), 32)
	if err != nil {
		return nil, nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, nil, err
	}
	if cek, err = hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16); err != nil {
		return nil, nil, err
	}
	if nonce, err = hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12); err != nil {
		return nil, nil, err
	}
	return cek, nonce, nil
}
