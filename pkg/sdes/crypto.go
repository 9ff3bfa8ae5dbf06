package sdes

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Limits taken from the RFCs or chosen here; see the field docs for why.
const (
	// maxTagDigits: RFC 4568 §9.1 tag = 1*9DIGIT.
	maxTagDigits = 9
	// maxMKILen: RFC 4568 §9.2 mki-length range 1..128 bytes.
	maxMKILen = 128
	// MinLifetime is the smallest key lifetime (in packets) a parsed
	// MasterKey keeps. Lifetimes are never enforced (D25: accepted and
	// ignored); shorter ones are dropped while parsing. 2^31 is the whole
	// SRTCP index space (RFC 3711 §3.4), so for any real call such a
	// lifetime never expires anyway.
	MinLifetime uint64 = 1 << 31
	// maxLifetimeExp: the suites' SRTP maximum lifetime is 2^48 packets
	// (RFC 4568 §6.2.1, RFC 7714 §14.2); a larger value is malformed.
	maxLifetimeExp = 48
	// Replay window bounds. RFC 3711 §3.3.2 requires at least 64; the WSH
	// session parameter (RFC 4568 §6.3.7) may ask for more, which we grant
	// up to maxWindow to bound per-SSRC memory.
	minWindow = 64
	maxWindow = 1024
)

// MasterKey is one key-param of a crypto attribute (RFC 4568 §9.1
// "inline:" key-salt ["|" lifetime] ["|" MKI ":" length]).
type MasterKey struct {
	// KeySalt is master key ‖ master salt, exactly Suite.MaterialLen bytes
	// (bytes a peer sends beyond that are dropped, PROTOCOL §15).
	KeySalt []byte
	// Lifetime is the key lifetime in packets, 0 when the line gave none or
	// one below MinLifetime. It is informational: never enforced (D25).
	Lifetime uint64
	// MKI is the master key identifier value; meaningful when MKILen > 0.
	MKI uint64
	// MKILen is the MKI field length in bytes carried in every SRTP and
	// SRTCP packet (RFC 3711 §3.1); 0 means no MKI.
	MKILen int
}

// Crypto is a parsed a=crypto attribute value (RFC 4568 §9.1):
//
//	<tag> <crypto-suite> inline:<key||salt>[|lifetime][|MKI:len][;inline:…] [session-params]
type Crypto struct {
	// Tag identifies the attribute within an offer; an answer echoes the tag
	// of the offer line it accepts (RFC 4568 §5.1.2).
	Tag uint32
	// Suite is the crypto-suite.
	Suite Suite
	// Keys holds one or more master keys. With more than one, every key has
	// an MKI of the same length so a receiver can tell them apart.
	Keys []MasterKey
	// SessionParams are the accepted session parameters, verbatim. Only
	// "WSH=<n>" (window size hint, honoured) and "FEC_ORDER=…" (moot: we never
	// use FEC) are accepted; every other parameter is rejected by ParseCrypto.
	SessionParams []string
}

// ParseCrypto parses the value of an a=crypto attribute: the text after
// "a=crypto:" (a leading "a=crypto:" is tolerated and skipped).
//
// The error names the problem, e.g. `crypto: unknown suite "FOO"`. Lifetime,
// MKI and session parameters are either honoured or rejected, never half
// applied (issue 5).
func ParseCrypto(value string) (Crypto, error) {
	v := strings.TrimSpace(value)
	if len(v) >= len("a=crypto:") && strings.EqualFold(v[:len("a=crypto:")], "a=crypto:") {
		v = v[len("a=crypto:"):]
	}
	fields := strings.Fields(v)
	if len(fields) < 3 {
		return Crypto{}, fmt.Errorf("crypto: %q: want \"<tag> <suite> inline:<key>\"", value)
	}
	var c Crypto
	tag, err := parseTag(fields[0])
	if err != nil {
		return Crypto{}, err
	}
	c.Tag = tag
	if c.Suite, err = ParseSuite(fields[1]); err != nil {
		return Crypto{}, err
	}
	if c.Keys, err = parseKeyParams(c.Suite, fields[2]); err != nil {
		return Crypto{}, err
	}
	for _, p := range fields[3:] {
		if err := checkSessionParam(p); err != nil {
			return Crypto{}, err
		}
		c.SessionParams = append(c.SessionParams, p)
	}
	return c, nil
}

func parseTag(s string) (uint32, error) {
	if s == "" || len(s) > maxTagDigits || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("crypto: bad tag %q: want 1 to 9 decimal digits", s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil { // cannot happen for ≤ 9 digits; kept for safety
		return 0, fmt.Errorf("crypto: bad tag %q: %w", s, err)
	}
	return uint32(n), nil
}

// parseKeyParams parses key-params = key-param *(";" key-param).
func parseKeyParams(suite Suite, s string) ([]MasterKey, error) {
	parts := strings.Split(s, ";")
	keys := make([]MasterKey, 0, len(parts))
	for _, p := range parts {
		k, err := parseKeyParam(suite, p, len(parts) > 1)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := checkMKIs(keys); err != nil {
		return nil, err
	}
	return keys, nil
}

// checkMKIs enforces that several master keys can be told apart: RFC 3711
// §3.1 selects the key of a packet by its MKI, so with more than one key all
// need an MKI, of one length (pion/srtp needs that too), with distinct values.
func checkMKIs(keys []MasterKey) error {
	if len(keys) == 0 {
		return errors.New("crypto: no key")
	}
	if len(keys) == 1 {
		return nil
	}
	seen := make(map[uint64]bool, len(keys))
	for i, k := range keys {
		if k.MKILen == 0 {
			return fmt.Errorf("crypto: %d keys but key %d has no MKI: several keys need an MKI each (RFC 3711 §3.1)", len(keys), i+1)
		}
		if k.MKILen != keys[0].MKILen {
			return fmt.Errorf("crypto: MKI lengths differ (%d and %d bytes): all keys of a line must use one MKI length", keys[0].MKILen, k.MKILen)
		}
		if seen[k.MKI] {
			return fmt.Errorf("crypto: MKI %d used by two keys", k.MKI)
		}
		seen[k.MKI] = true
	}
	return nil
}

// parseKeyParam parses one key-param. What follows the key after "|" is
// accepted and, where it cannot be used, ignored (PROTOCOL.md §13.1, D25): SIP
// peers send lifetimes such as 2^20 that rtpbridge has no reason to enforce
// (it never rekeys on expiry), and a lifetime that is malformed, out of order
// or repeated costs nothing to skip. A well-formed lifetime of 2^31..2^48 is
// kept for String. A single key's MKI is kept when well formed and then
// honoured with or without the field in packets (see rxCtx); a malformed one
// is ignored. Only a line of several keys, which needs its MKIs to tell the
// keys apart (multi), refuses a bad or missing MKI.
func parseKeyParam(suite Suite, s string, multi bool) (MasterKey, error) {
	method, info, ok := strings.Cut(s, ":")
	if !ok {
		return MasterKey{}, fmt.Errorf("crypto: missing inline: in key parameter %q", s)
	}
	// "inline" is an ABNF literal, hence case-insensitive (RFC 5234 §2.3).
	if !strings.EqualFold(method, "inline") {
		return MasterKey{}, fmt.Errorf("crypto: unsupported key method %q (only inline, RFC 4568 §6.1)", method)
	}
	parts := strings.Split(info, "|")
	var k MasterKey
	material, err := decodeKey(suite, parts[0])
	if err != nil {
		return MasterKey{}, err
	}
	k.KeySalt = material
	haveLifetime, haveMKI := false, false
	for _, p := range parts[1:] {
		if !strings.Contains(p, ":") {
			// RFC 4568 §9.1 puts the lifetime before the MKI; anything else is skipped.
			if !haveLifetime && !haveMKI {
				haveLifetime = true
				if n, err := parseLifetime(p); err == nil {
					k.Lifetime = n
				}
			}
			continue
		}
		if haveMKI {
			if multi {
				return MasterKey{}, fmt.Errorf("crypto: two MKI fields in one key parameter")
			}
			continue
		}
		haveMKI = true
		v, l, err := parseMKI(p)
		if err != nil {
			if multi {
				return MasterKey{}, err
			}
			continue
		}
		k.MKI, k.MKILen = v, l
	}
	return k, nil
}

// decodeKey decodes the base64 key-salt, padded or unpadded standard
// alphabet (RFC 4568 §6.1 says base64; peers differ on padding). The result
// must be at least the suite's key+salt length; extra bytes are ignored as
// PROTOCOL §15 requires.
func decodeKey(suite Suite, s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("crypto: empty inline key")
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		var err2 error
		if raw, err2 = base64.RawStdEncoding.DecodeString(s); err2 != nil {
			return nil, fmt.Errorf("crypto: bad base64 key: %w", err)
		}
	}
	need := suite.MaterialLen()
	if len(raw) < need {
		return nil, fmt.Errorf("crypto: key for %s decodes to %d bytes, need %d (%d-byte master key + %d-byte salt)",
			suite, len(raw), need, suite.KeyLen(), suite.SaltLen())
	}
	return raw[:need:need], nil
}

// parseLifetime parses lifetime = ["2^"] 1*DIGIT (RFC 4568 §9.1).
func parseLifetime(s string) (uint64, error) {
	var n uint64
	if rest, ok := strings.CutPrefix(s, "2^"); ok {
		e, err := parseDigits(rest)
		if err != nil || e > maxLifetimeExp {
			return 0, fmt.Errorf("crypto: bad lifetime %q: want 2^N with N ≤ %d or a decimal count", s, maxLifetimeExp)
		}
		n = 1 << e
	} else {
		v, err := parseDigits(s)
		if err != nil || v == 0 || v > 1<<maxLifetimeExp {
			return 0, fmt.Errorf("crypto: bad lifetime %q: want 2^N with N ≤ %d or a decimal count 1..2^%d", s, maxLifetimeExp, maxLifetimeExp)
		}
		n = v
	}
	if n < MinLifetime {
		return 0, fmt.Errorf("crypto: key lifetime %s packets is below 2^31", s)
	}
	return n, nil
}

// parseMKI parses mki = mki-value ":" mki-length (RFC 4568 §9.1). The value
// is decimal; we hold it in 64 bits, which covers every MKI seen in practice.
func parseMKI(s string) (uint64, int, error) {
	vs, ls, _ := strings.Cut(s, ":")
	v, err := parseDigits(vs)
	if err != nil {
		return 0, 0, fmt.Errorf("crypto: bad MKI value %q: want a decimal number below 2^64", vs)
	}
	l, err := parseDigits(ls)
	if err != nil || len(ls) > 3 || l < 1 || l > maxMKILen {
		return 0, 0, fmt.Errorf("crypto: bad MKI length %q: want 1..%d bytes", ls, maxMKILen)
	}
	if l < 8 && bits.Len64(v) > int(l)*8 {
		return 0, 0, fmt.Errorf("crypto: MKI value %d does not fit in %d bytes", v, l)
	}
	return v, int(l), nil
}

func parseDigits(s string) (uint64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a decimal number: %q", s)
	}
	return strconv.ParseUint(s, 10, 64)
}

// checkSessionParam accepts the SRTP session parameters we honour and
// rejects the rest with the reason (RFC 4568 §6.3).
func checkSessionParam(p string) error {
	name, val, _ := strings.Cut(p, "=")
	switch strings.ToUpper(name) {
	case "WSH":
		// Window size hint (§6.3.7): honoured as our replay window for this
		// key, raised to at least 64 and capped at 1024.
		if _, err := parseDigits(val); err != nil {
			return fmt.Errorf("crypto: bad session parameter %q: WSH wants a decimal window size", p)
		}
		return nil
	case "FEC_ORDER":
		// §6.3.6: order of FEC and SRTP processing. rtpbridge never uses FEC,
		// so either order describes exactly what we do.
		if !strings.EqualFold(val, "FEC_SRTP") && !strings.EqualFold(val, "SRTP_FEC") {
			return fmt.Errorf("crypto: bad session parameter %q: FEC_ORDER wants FEC_SRTP or SRTP_FEC", p)
		}
		return nil
	case "KDR":
		return fmt.Errorf("crypto: session parameter %q not supported: pion/srtp derives session keys once (key derivation rate 0, RFC 3711 §4.3.1)", p)
	case "UNENCRYPTED_SRTP", "UNENCRYPTED_SRTCP", "UNAUTHENTICATED_SRTP":
		return fmt.Errorf("crypto: session parameter %q not supported: rtpbridge always encrypts and authenticates", p)
	case "FEC_KEY":
		return fmt.Errorf("crypto: session parameter %q not supported: rtpbridge does not use FEC", p)
	default:
		return fmt.Errorf("crypto: unknown session parameter %q", p)
	}
}

// windowSize returns the SRTP replay window for the key described by c:
// 64 (RFC 3711 §3.3.2, PROTOCOL §15) or the WSH hint if larger, capped.
func (c Crypto) windowSize() uint {
	w := uint64(minWindow)
	for _, p := range c.SessionParams {
		name, val, _ := strings.Cut(p, "=")
		if !strings.EqualFold(name, "WSH") {
			continue
		}
		if n, err := parseDigits(val); err == nil && n > w {
			w = min(n, maxWindow)
		}
	}
	return uint(w)
}

// Validate checks that c is usable for a context: known suite, at least one
// key of the right length, MKIs consistent, lifetimes and session
// parameters acceptable. ParseCrypto, NewKey and OfferCryptos only return
// valid values; Validate guards hand-built ones.
func (c Crypto) Validate() error {
	if !c.Suite.Valid() {
		return fmt.Errorf("crypto: unknown suite %s", c.Suite)
	}
	for i, k := range c.Keys {
		if len(k.KeySalt) != c.Suite.MaterialLen() {
			return fmt.Errorf("crypto: key %d is %d bytes, %s needs %d", i+1, len(k.KeySalt), c.Suite, c.Suite.MaterialLen())
		}
		if k.Lifetime != 0 && (k.Lifetime < MinLifetime || k.Lifetime > 1<<maxLifetimeExp) {
			return fmt.Errorf("crypto: key %d lifetime %d not supported (want 2^31..2^48)", i+1, k.Lifetime)
		}
		if k.MKILen < 0 || k.MKILen > maxMKILen || (k.MKILen > 0 && k.MKILen < 8 && bits.Len64(k.MKI) > k.MKILen*8) {
			return fmt.Errorf("crypto: key %d has a bad MKI (%d:%d)", i+1, k.MKI, k.MKILen)
		}
	}
	if err := checkMKIs(c.Keys); err != nil {
		return err
	}
	for _, p := range c.SessionParams {
		if err := checkSessionParam(p); err != nil {
			return err
		}
	}
	return nil
}

// String formats c as an a=crypto value (without "a=crypto:"): keys in
// padded standard base64, a lifetime that is a power of two as "2^N".
func (c Crypto) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(c.Tag), 10))
	b.WriteByte(' ')
	b.WriteString(c.Suite.String())
	b.WriteByte(' ')
	for i, k := range c.Keys {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString("inline:")
		b.WriteString(base64.StdEncoding.EncodeToString(k.KeySalt))
		if k.Lifetime != 0 {
			b.WriteByte('|')
			if bits.OnesCount64(k.Lifetime) == 1 {
				b.WriteString("2^")
				b.WriteString(strconv.Itoa(bits.TrailingZeros64(k.Lifetime)))
			} else {
				b.WriteString(strconv.FormatUint(k.Lifetime, 10))
			}
		}
		if k.MKILen > 0 {
			b.WriteByte('|')
			b.WriteString(strconv.FormatUint(k.MKI, 10))
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(k.MKILen))
		}
	}
	for _, p := range c.SessionParams {
		b.WriteByte(' ')
		b.WriteString(p)
	}
	return b.String()
}

// mkiBytes renders the MKI as the big-endian field of MKILen bytes that goes
// into packets (RFC 3711 §3.1); nil without an MKI.
func (k MasterKey) mkiBytes() []byte {
	if k.MKILen == 0 {
		return nil
	}
	out := make([]byte, k.MKILen)
	v := k.MKI
	for i := len(out) - 1; i >= 0 && v != 0; i-- {
		out[i] = byte(v)
		v >>= 8
	}
	return out
}

// NewKey returns a crypto attribute for suite with tag 1 and a fresh random
// master key and salt from crypto/rand, no lifetime, MKI or session
// parameters. Set Tag before use when another tag is needed.
func NewKey(suite Suite) (Crypto, error) {
	if !suite.Valid() {
		return Crypto{}, fmt.Errorf("crypto: cannot make a key for unknown suite %s", suite)
	}
	material := make([]byte, suite.MaterialLen())
	if _, err := rand.Read(material); err != nil {
		return Crypto{}, fmt.Errorf("crypto: reading random key material: %w", err)
	}
	return Crypto{Tag: 1, Suite: suite, Keys: []MasterKey{{KeySalt: material}}}, nil
}

// OfferCryptos returns one fresh crypto attribute per supported suite in
// OfferOrder with tags 1..4, for our own offers. Each has its own key;
// after the answer, MatchAnswer picks the one the peer accepted.
func OfferCryptos() ([]Crypto, error) {
	out := make([]Crypto, 0, len(OfferOrder))
	for i, s := range OfferOrder {
		c, err := NewKey(s)
		if err != nil {
			return nil, err
		}
		c.Tag = uint32(i + 1)
		out = append(out, c)
	}
	return out, nil
}

// ErrNoUsableCrypto is wrapped by SelectAnswer when no offered line is usable.
var ErrNoUsableCrypto = errors.New("no usable crypto attribute")

// SelectAnswer picks the first offered crypto value (in offer order) that
// parses and whose suite we support (PROTOCOL §29, RFC 4568 §7.1.2). When
// none is usable the error wraps ErrNoUsableCrypto and lists why each line
// was skipped.
func SelectAnswer(offers []string) (Crypto, error) {
	if len(offers) == 0 {
		return Crypto{}, fmt.Errorf("crypto: %w: none offered", ErrNoUsableCrypto)
	}
	reasons := make([]string, 0, len(offers))
	for i, o := range offers {
		c, err := ParseCrypto(o)
		if err == nil {
			return c, nil
		}
		reasons = append(reasons, fmt.Sprintf("line %d: %v", i+1, err))
	}
	return Crypto{}, fmt.Errorf("crypto: %w (%s)", ErrNoUsableCrypto, strings.Join(reasons, "; "))
}

// AnswerFor returns our answer to the accepted offer line: same tag and
// suite, a fresh key of our own (never the offerer's, PROTOCOL §15), no
// lifetime, MKI or session parameters.
func AnswerFor(offer Crypto) (Crypto, error) {
	c, err := NewKey(offer.Suite)
	if err != nil {
		return Crypto{}, err
	}
	c.Tag = offer.Tag
	return c, nil
}

// MatchAnswer pairs a peer's answer value with the offered line it accepts,
// by tag (RFC 4568 §5.1.2), and checks the suite matches. It returns our
// offered crypto (the send key) and the peer's (the receive key).
func MatchAnswer(offered []Crypto, answer string) (local, remote Crypto, err error) {
	remote, err = ParseCrypto(answer)
	if err != nil {
		return Crypto{}, Crypto{}, err
	}
	for _, o := range offered {
		if o.Tag != remote.Tag {
			continue
		}
		if o.Suite != remote.Suite {
			return Crypto{}, Crypto{}, fmt.Errorf("crypto: answer tag %d has suite %s but we offered %s under that tag", remote.Tag, remote.Suite, o.Suite)
		}
		return o, remote, nil
	}
	return Crypto{}, Crypto{}, fmt.Errorf("crypto: answer tag %d matches no offered crypto attribute", remote.Tag)
}

// sameCrypto reports whether a and b are the same keying: suite, and every
// master key with its MKI, in order.
func sameCrypto(a, b Crypto) bool {
	if a.Suite != b.Suite || len(a.Keys) != len(b.Keys) {
		return false
	}
	for i := range a.Keys {
		ka, kb := a.Keys[i], b.Keys[i]
		if !bytes.Equal(ka.KeySalt, kb.KeySalt) || ka.MKI != kb.MKI || ka.MKILen != kb.MKILen {
			return false
		}
	}
	return true
}

// sameKey reports whether a and b share any master key material.
func sameKey(a, b Crypto) bool {
	for _, ka := range a.Keys {
		for _, kb := range b.Keys {
			if bytes.Equal(ka.KeySalt, kb.KeySalt) {
				return true
			}
		}
	}
	return false
}
