package sdes

import (
	"fmt"
	"strings"

	"github.com/pion/srtp/v3"
)

// Suite is an SDES crypto-suite (RFC 4568 §6.2, RFC 7714 §14.2) that
// rtpbridge can run. The zero value is not a valid suite.
type Suite uint8

// The suites rtpbridge supports, in the order it offers them (PROTOCOL §29:
// AES_CM_128_HMAC_SHA1_80 first because it is the one every SDES peer has).
const (
	// SuiteAESCM128HMACSHA1_80 is AES_CM_128_HMAC_SHA1_80 (RFC 4568 §6.2.1):
	// AES-128 counter mode, HMAC-SHA1 tag truncated to 80 bits.
	SuiteAESCM128HMACSHA1_80 Suite = iota + 1
	// SuiteAESCM128HMACSHA1_32 is AES_CM_128_HMAC_SHA1_32 (RFC 4568 §6.2.2):
	// as above with a 32-bit SRTP tag (SRTCP keeps 80 bits, RFC 3711 §5.2).
	SuiteAESCM128HMACSHA1_32
	// SuiteAEADAES128GCM is AEAD_AES_128_GCM (RFC 7714 §14.2).
	SuiteAEADAES128GCM
	// SuiteAEADAES256GCM is AEAD_AES_256_GCM (RFC 7714 §14.2).
	SuiteAEADAES256GCM
)

// suiteInfo is the constant per-suite table: SDP name, pion profile and the
// master key / master salt lengths that the key-salt of an inline key
// carries (RFC 4568 §6.1: key and salt are concatenated, key first).
type suiteInfo struct {
	name    string
	profile srtp.ProtectionProfile
	keyLen  int
	saltLen int
}

// suites is indexed by Suite; entry 0 is the invalid zero value.
var suites = [...]suiteInfo{
	{},
	{"AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 14},
	{"AES_CM_128_HMAC_SHA1_32", srtp.ProtectionProfileAes128CmHmacSha1_32, 16, 14},
	{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm, 16, 12},
	{"AEAD_AES_256_GCM", srtp.ProtectionProfileAeadAes256Gcm, 32, 12},
}

// OfferOrder lists every supported suite in the order rtpbridge offers them
// (PROTOCOL §29). Tags in OfferCryptos follow this order starting at 1.
var OfferOrder = [...]Suite{
	SuiteAESCM128HMACSHA1_80,
	SuiteAESCM128HMACSHA1_32,
	SuiteAEADAES128GCM,
	SuiteAEADAES256GCM,
}

// Valid reports whether s is one of the supported suites.
func (s Suite) Valid() bool { return s > 0 && int(s) < len(suites) }

// String returns the SDP name of the suite, e.g. "AES_CM_128_HMAC_SHA1_80".
func (s Suite) String() string {
	if !s.Valid() {
		return fmt.Sprintf("Suite(%d)", uint8(s))
	}
	return suites[s].name
}

// Profile returns the pion/srtp protection profile implementing the suite
// (0 for an invalid suite).
func (s Suite) Profile() srtp.ProtectionProfile {
	if !s.Valid() {
		return 0
	}
	return suites[s].profile
}

// KeyLen is the master key length in bytes.
func (s Suite) KeyLen() int {
	if !s.Valid() {
		return 0
	}
	return suites[s].keyLen
}

// SaltLen is the master salt length in bytes.
func (s Suite) SaltLen() int {
	if !s.Valid() {
		return 0
	}
	return suites[s].saltLen
}

// MaterialLen is the length of the decoded inline key-salt: KeyLen+SaltLen.
func (s Suite) MaterialLen() int { return s.KeyLen() + s.SaltLen() }

// ParseSuite maps an SDP crypto-suite name to a Suite. Names are matched
// case-insensitively because RFC 4568 §9.2 defines them as ABNF quoted
// strings, which are case-insensitive (RFC 5234 §2.3).
func ParseSuite(name string) (Suite, error) {
	for i := 1; i < len(suites); i++ {
		if strings.EqualFold(name, suites[i].name) {
			return Suite(i), nil
		}
	}
	return 0, fmt.Errorf("crypto: unknown suite %q", name)
}
