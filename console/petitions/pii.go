package petitions

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sealer encrypts the petitioner's personal data for the database: AES-256
// in GCM with a random nonce per value, the petition's id as additional
// data, so that a value copied to another petition's row does not open.
type Sealer struct{ aead cipher.AEAD }

// NewSealer makes a sealer of a 32-byte key (auth.Signer.Derive gives
// one that lasts as long as the server's key).
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, errors.New("petitions: the key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain for petition id.
func (s *Sealer) Seal(id, plain string) []byte {
	return s.SealBytes(id, []byte(plain))
}

// SealBytes encrypts plain with ad as the additional data: the sealed
// value opens only with the same ad. The result is nonce || ciphertext,
// allocated once (attachments are up to megabytes).
func (s *Sealer) SealBytes(ad string, plain []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, []byte(ad))
}

// ErrUnsealed is a stored value that does not open: another key, another
// petition's value, or a damaged row.
var ErrUnsealed = errors.New("petitions: personal data does not decrypt")

// Open decrypts a value sealed for petition id.
func (s *Sealer) Open(id string, sealed []byte) (string, error) {
	plain, err := s.OpenBytes(id, sealed)
	return string(plain), err
}

// OpenBytes decrypts a value sealed with SealBytes and the same ad.
func (s *Sealer) OpenBytes(ad string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, ErrUnsealed
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(ad))
	if err != nil {
		return nil, ErrUnsealed
	}
	return plain, nil
}

// MaskName keeps a name's first character: 张三丰 -> 张**.
func MaskName(name string) string {
	r, size := utf8.DecodeRuneInString(name)
	if size == 0 {
		return ""
	}
	return string(r) + strings.Repeat("*", utf8.RuneCountInString(name)-1)
}

// MaskPhone keeps the first three and last four digits: 138****5678.
func MaskPhone(phone string) string {
	if len(phone) <= 7 {
		return strings.Repeat("*", len(phone))
	}
	return phone[:3] + strings.Repeat("*", len(phone)-7) + phone[len(phone)-4:]
}

// MaskIDNumber keeps the first four and last four characters of an ID
// number: 5306**********1234.
func MaskIDNumber(id string) string {
	if len(id) <= 8 {
		return strings.Repeat("*", len(id))
	}
	return id[:4] + strings.Repeat("*", len(id)-8) + id[len(id)-4:]
}

// ValidIDNumber checks a resident identity card number (GB 11643-1999):
// 18 characters, 17 digits then a check character (0-9 or X) that the
// ISO 7064 MOD 11-2 checksum of the digits gives.
func ValidIDNumber(id string) bool {
	if len(id) != 18 {
		return false
	}
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := range 17 {
		c := id[i]
		if c < '0' || c > '9' {
			return false
		}
		sum += int(c-'0') * weights[i]
	}
	return id[17] == "10X98765432"[sum%11]
}

// ValidPhone accepts a phone number of 7 to 20 digits, with a leading + for
// an international one.
func ValidPhone(phone string) bool {
	digits := strings.TrimPrefix(phone, "+")
	if len(digits) < 7 || len(digits) > 20 {
		return false
	}
	for _, c := range digits {
		if !unicode.IsDigit(c) || c > '9' {
			return false
		}
	}
	return true
}
