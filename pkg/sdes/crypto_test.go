package sdes

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// key30 etc. are deterministic key-salts for table tests.
func keyBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

func b64(b []byte) string    { return base64.StdEncoding.EncodeToString(b) }
func b64raw(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

func TestParseCryptoEachSuiteRoundTrip(t *testing.T) {
	for _, s := range OfferOrder {
		t.Run(s.String(), func(t *testing.T) {
			c, err := NewKey(s)
			if err != nil {
				t.Fatal(err)
			}
			c.Tag = 7
			text := c.String()
			got, err := ParseCrypto(text)
			if err != nil {
				t.Fatalf("ParseCrypto(%q): %v", text, err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
			}
			if got.String() != text {
				t.Fatalf("String() = %q, want %q", got.String(), text)
			}
			if len(got.Keys[0].KeySalt) != s.MaterialLen() {
				t.Fatalf("key-salt %d bytes, want %d", len(got.Keys[0].KeySalt), s.MaterialLen())
			}
		})
	}
}

func TestParseCryptoValidVariants(t *testing.T) {
	k30 := keyBytes(30, 1)
	k28 := keyBytes(28, 2)
	k44 := keyBytes(44, 3)
	k46 := keyBytes(46, 4)
	tests := []struct {
		name, in, format string
		want             Crypto
	}{
		{
			name:   "AES_CM_80 plain",
			in:     "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k30),
			format: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k30),
			want:   Crypto{Tag: 1, Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{{KeySalt: k30}}},
		},
		{
			name:   "a=crypto prefix, CRLF, lower-case suite and method",
			in:     "a=crypto:2 aes_cm_128_hmac_sha1_32 INLINE:" + b64(k30) + "\r\n",
			format: "2 AES_CM_128_HMAC_SHA1_32 inline:" + b64(k30),
			want:   Crypto{Tag: 2, Suite: SuiteAESCM128HMACSHA1_32, Keys: []MasterKey{{KeySalt: k30}}},
		},
		{
			name:   "GCM128 unpadded base64",
			in:     "3 AEAD_AES_128_GCM inline:" + b64raw(k28),
			format: "3 AEAD_AES_128_GCM inline:" + b64(k28),
			want:   Crypto{Tag: 3, Suite: SuiteAEADAES128GCM, Keys: []MasterKey{{KeySalt: k28}}},
		},
		{
			name:   "GCM256 padded",
			in:     "4 AEAD_AES_256_GCM inline:" + b64(k44),
			format: "4 AEAD_AES_256_GCM inline:" + b64(k44),
			want:   Crypto{Tag: 4, Suite: SuiteAEADAES256GCM, Keys: []MasterKey{{KeySalt: k44}}},
		},
		{
			name:   "extra key bytes ignored (PROTOCOL §15)",
			in:     "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k46),
			format: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k46[:30]),
			want:   Crypto{Tag: 1, Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{{KeySalt: k46[:30]}}},
		},
		{
			name:   "lifetime 2^31 and MKI 1:1",
			in:     "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k30) + "|2^31|1:1",
			format: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k30) + "|2^31|1:1",
			want:   Crypto{Tag: 1, Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{{KeySalt: k30, Lifetime: 1 << 31, MKI: 1, MKILen: 1}}},
		},
		{
			name:   "decimal lifetime, MKI only",
			in:     "9 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k30) + "|3000000000",
			format: "9 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k30) + "|3000000000",
			want:   Crypto{Tag: 9, Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{{KeySalt: k30, Lifetime: 3000000000}}},
		},
		{
			name:   "decimal power of two formats as 2^N",
			in:     "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k30) + "|2147483648|258:2",
			format: "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k30) + "|2^31|258:2",
			want:   Crypto{Tag: 1, Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{{KeySalt: k30, Lifetime: 1 << 31, MKI: 258, MKILen: 2}}},
		},
		{
			name:   "two keys with MKIs, session params",
			in:     "123456789 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k30) + "|2^48|1:4;inline:" + b64(k46[:30]) + "|2:4 WSH=128 FEC_ORDER=FEC_SRTP",
			format: "123456789 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k30) + "|2^48|1:4;inline:" + b64(k46[:30]) + "|2:4 WSH=128 FEC_ORDER=FEC_SRTP",
			want: Crypto{Tag: 123456789, Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{
				{KeySalt: k30, Lifetime: 1 << 48, MKI: 1, MKILen: 4},
				{KeySalt: k46[:30], MKI: 2, MKILen: 4},
			}, SessionParams: []string{"WSH=128", "FEC_ORDER=FEC_SRTP"}},
		},
		{
			name:   "tag 0, extra spaces",
			in:     "  0   AES_CM_128_HMAC_SHA1_80    inline:" + b64(k30) + "  ",
			format: "0 AES_CM_128_HMAC_SHA1_80 inline:" + b64(k30),
			want:   Crypto{Tag: 0, Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{{KeySalt: k30}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCrypto(tc.in)
			if err != nil {
				t.Fatalf("ParseCrypto(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			if s := got.String(); s != tc.format {
				t.Fatalf("String() = %q\nwant       %q", s, tc.format)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

// TestParseCryptoIgnoresWhatItCannotUse: what follows a single key after "|" is accepted and,
// where unusable, ignored (PROTOCOL.md §13.1, D25): SIP peers send short lifetimes such as 2^20.
func TestParseCryptoIgnoresWhatItCannotUse(t *testing.T) {
	raw := keyBytes(30, 1)
	k := b64(raw)
	for _, tc := range []struct {
		name, params string
		want         MasterKey
	}{
		{"lifetime 2^20", "|2^20", MasterKey{}},
		{"lifetime 2^20 and MKI 1:32", "|2^20|1:32", MasterKey{MKI: 1, MKILen: 32}},
		{"decimal lifetime 1000", "|1000", MasterKey{}},
		{"lifetime above 2^48", "|2^49", MasterKey{}},
		{"lifetime zero", "|0", MasterKey{}},
		{"lifetime junk", "|2^x", MasterKey{}},
		{"lifetime overflow", "|99999999999999999999999", MasterKey{}},
		{"lifetime after MKI", "|1:1|2^31", MasterKey{MKI: 1, MKILen: 1}},
		{"two lifetimes", "|2^31|2^20", MasterKey{Lifetime: 1 << 31}},
		{"empty field", "||1:1", MasterKey{MKI: 1, MKILen: 1}},
		{"MKI length 0", "|1:0", MasterKey{}},
		{"MKI length 129", "|1:129", MasterKey{}},
		{"MKI value too big for length", "|256:1", MasterKey{}},
		{"MKI value junk", "|a:1", MasterKey{}},
		{"MKI value over 64 bits", "|99999999999999999999999:16", MasterKey{}},
		{"two MKIs", "|1:1|2:1", MasterKey{MKI: 1, MKILen: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCrypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + k + tc.params)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			tc.want.KeySalt = raw
			if len(got.Keys) != 1 || !reflect.DeepEqual(got.Keys[0], tc.want) {
				t.Fatalf("keys %+v, want [%+v]", got.Keys, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("parsed value does not validate: %v", err)
			}
		})
	}
}

func TestParseCryptoMalformed(t *testing.T) {
	k := b64(keyBytes(30, 1))
	k2 := b64(keyBytes(30, 9))
	tests := []struct{ name, in, want string }{
		{"empty", "", "want \"<tag> <suite> inline:<key>\""},
		{"two fields", "1 AES_CM_128_HMAC_SHA1_80", "want \"<tag>"},
		{"unknown suite", "1 FOO inline:" + k, `unknown suite "FOO"`},
		{"AES256 CM not supported", "1 AES_256_CM_HMAC_SHA1_80 inline:" + b64(keyBytes(46, 1)), `unknown suite "AES_256_CM_HMAC_SHA1_80"`},
		{"bad tag letters", "x1 AES_CM_128_HMAC_SHA1_80 inline:" + k, `bad tag "x1"`},
		{"bad tag negative", "-1 AES_CM_128_HMAC_SHA1_80 inline:" + k, `bad tag "-1"`},
		{"bad tag 10 digits", "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + k, `bad tag "1234567890"`},
		{"missing inline", "1 AES_CM_128_HMAC_SHA1_80 " + k, "missing inline:"},
		{"other key method", "1 AES_CM_128_HMAC_SHA1_80 uri:" + k, `unsupported key method "uri"`},
		{"empty key", "1 AES_CM_128_HMAC_SHA1_80 inline:", "empty inline key"},
		{"bad base64", "1 AES_CM_128_HMAC_SHA1_80 inline:@@@@not*base64", "bad base64 key"},
		{"short key", "1 AES_CM_128_HMAC_SHA1_80 inline:" + b64(keyBytes(20, 1)), "decodes to 20 bytes, need 30"},
		{"short GCM256 key", "1 AEAD_AES_256_GCM inline:" + k, "decodes to 30 bytes, need 44"},
		{"two keys, one MKI bad", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + "|1:0;inline:" + k2 + "|2:1", `bad MKI length "0"`},
		{"two keys, two MKIs in one", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + "|1:1|3:1;inline:" + k2 + "|2:1", "two MKI fields"},
		{"two keys without MKI", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + ";inline:" + k2, "has no MKI"},
		{"two keys MKI lengths differ", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + "|1:1;inline:" + k2 + "|2:2", "MKI lengths differ"},
		{"two keys same MKI", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + "|1:1;inline:" + k2 + "|1:1", "MKI 1 used by two keys"},
		{"second key bad", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + "|1:1;" + k2, "missing inline:"},
		{"KDR", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + " KDR=0", `session parameter "KDR=0" not supported`},
		{"UNENCRYPTED_SRTP", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + " UNENCRYPTED_SRTP", `"UNENCRYPTED_SRTP" not supported`},
		{"UNAUTHENTICATED_SRTP", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + " UNAUTHENTICATED_SRTP", `"UNAUTHENTICATED_SRTP" not supported`},
		{"FEC_KEY", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + " FEC_KEY=inline:" + k, `"FEC_KEY=inline:`},
		{"bad WSH", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + " WSH=big", `bad session parameter "WSH=big"`},
		{"bad FEC_ORDER", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + " FEC_ORDER=X", `bad session parameter "FEC_ORDER=X"`},
		{"unknown session param", "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + " FOO=1", `unknown session parameter "FOO=1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCrypto(tc.in)
			if err == nil {
				t.Fatalf("ParseCrypto(%q) = %+v, want error containing %q", tc.in, got, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseCrypto(%q) error %q, want it to contain %q", tc.in, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "crypto: ") {
				t.Fatalf("error %q lacks the crypto: prefix", err)
			}
		})
	}
}

func TestValidateRejectsHandBuilt(t *testing.T) {
	good := Crypto{Tag: 1, Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{{KeySalt: keyBytes(30, 1)}}}
	if err := good.Validate(); err != nil {
		t.Fatalf("good: %v", err)
	}
	bad := map[string]Crypto{
		"zero value":    {},
		"no keys":       {Suite: SuiteAESCM128HMACSHA1_80},
		"short key":     {Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{{KeySalt: keyBytes(29, 1)}}},
		"long key":      {Suite: SuiteAEADAES128GCM, Keys: []MasterKey{{KeySalt: keyBytes(30, 1)}}},
		"small life":    {Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{{KeySalt: keyBytes(30, 1), Lifetime: 5}}},
		"MKI too big":   {Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{{KeySalt: keyBytes(30, 1), MKI: 300, MKILen: 1}}},
		"bad param":     {Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{{KeySalt: keyBytes(30, 1)}}, SessionParams: []string{"KDR=1"}},
		"invalid suite": {Suite: 99, Keys: []MasterKey{{KeySalt: keyBytes(30, 1)}}},
	}
	for name, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}

func TestSuiteTable(t *testing.T) {
	want := map[Suite][3]int{ // key, salt, total
		SuiteAESCM128HMACSHA1_80: {16, 14, 30},
		SuiteAESCM128HMACSHA1_32: {16, 14, 30},
		SuiteAEADAES128GCM:       {16, 12, 28},
		SuiteAEADAES256GCM:       {32, 12, 44},
	}
	for s, w := range want {
		if s.KeyLen() != w[0] || s.SaltLen() != w[1] || s.MaterialLen() != w[2] {
			t.Errorf("%s: lengths %d+%d=%d, want %v", s, s.KeyLen(), s.SaltLen(), s.MaterialLen(), w)
		}
		// pion must agree with our table, or contexts would fail to build.
		kl, err1 := s.Profile().KeyLen()
		sl, err2 := s.Profile().SaltLen()
		if err1 != nil || err2 != nil || kl != w[0] || sl != w[1] {
			t.Errorf("%s: pion profile %v says %d+%d", s, s.Profile(), kl, sl)
		}
		back, err := ParseSuite(s.String())
		if err != nil || back != s {
			t.Errorf("ParseSuite(%q) = %v, %v", s.String(), back, err)
		}
	}
	var zero Suite
	if zero.Valid() || zero.KeyLen() != 0 || zero.Profile() != 0 || !strings.Contains(zero.String(), "Suite(0)") {
		t.Errorf("zero Suite not invalid: %v", zero)
	}
	if _, err := NewKey(zero); err == nil {
		t.Error("NewKey(0) succeeded")
	}
}

func TestOfferCryptos(t *testing.T) {
	offers, err := OfferCryptos()
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM", "AEAD_AES_256_GCM"}
	if len(offers) != len(wantNames) {
		t.Fatalf("%d offers, want %d", len(offers), len(wantNames))
	}
	seen := map[string]bool{}
	for i, c := range offers {
		if c.Tag != uint32(i+1) || c.Suite.String() != wantNames[i] {
			t.Errorf("offer %d = tag %d %s, want tag %d %s", i, c.Tag, c.Suite, i+1, wantNames[i])
		}
		if err := c.Validate(); err != nil {
			t.Errorf("offer %d invalid: %v", i, err)
		}
		k := string(c.Keys[0].KeySalt)
		if seen[k] {
			t.Errorf("offer %d reuses a key", i)
		}
		seen[k] = true
		if bytes.Equal(c.Keys[0].KeySalt, make([]byte, len(c.Keys[0].KeySalt))) {
			t.Errorf("offer %d has an all-zero key", i)
		}
		// PROTOCOL §15: padded standard base64 in our own SDP.
		if want := "inline:" + b64(c.Keys[0].KeySalt); !strings.Contains(c.String(), want) {
			t.Errorf("offer %d %q lacks %q", i, c.String(), want)
		}
	}
}

func TestSelectAnswer(t *testing.T) {
	k30 := b64(keyBytes(30, 1))
	k28 := b64(keyBytes(28, 1))
	offers := []string{
		"1 AES_256_CM_HMAC_SHA1_80 inline:" + b64(keyBytes(46, 1)), // unsupported suite
		"2 AES_CM_128_HMAC_SHA1_80 inline:short",                   // bad key
		"3 AEAD_AES_128_GCM inline:" + k28,
		"4 AES_CM_128_HMAC_SHA1_80 inline:" + k30,
	}
	got, err := SelectAnswer(offers)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tag != 3 || got.Suite != SuiteAEADAES128GCM {
		t.Fatalf("chose tag %d %s, want the first usable line (tag 3 AEAD_AES_128_GCM)", got.Tag, got.Suite)
	}

	_, err = SelectAnswer(offers[:2])
	if !errors.Is(err, ErrNoUsableCrypto) {
		t.Fatalf("err %v, want ErrNoUsableCrypto", err)
	}
	for _, want := range []string{`line 1: crypto: unknown suite "AES_256_CM_HMAC_SHA1_80"`, "line 2: crypto: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := SelectAnswer(nil); !errors.Is(err, ErrNoUsableCrypto) {
		t.Fatalf("no offers: %v", err)
	}

	ans, err := AnswerFor(got)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Tag != got.Tag || ans.Suite != got.Suite || sameKey(ans, got) || len(ans.Keys) != 1 {
		t.Fatalf("AnswerFor: %+v for offer %+v", ans, got)
	}
}

func TestMatchAnswer(t *testing.T) {
	offered, err := OfferCryptos()
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := NewKey(SuiteAEADAES128GCM)
	peer.Tag = 3
	local, remote, err := MatchAnswer(offered, peer.String())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(local, offered[2]) || !reflect.DeepEqual(remote, peer) {
		t.Fatalf("MatchAnswer paired %v with %v", local, remote)
	}
	peer.Tag = 1 // tag 1 is AES_CM_80 in our offer
	if _, _, err := MatchAnswer(offered, peer.String()); err == nil || !strings.Contains(err.Error(), "suite") {
		t.Fatalf("suite mismatch: %v", err)
	}
	peer.Tag = 9
	if _, _, err := MatchAnswer(offered, peer.String()); err == nil || !strings.Contains(err.Error(), "matches no offered") {
		t.Fatalf("unknown tag: %v", err)
	}
	if _, _, err := MatchAnswer(offered, "junk"); err == nil {
		t.Fatal("junk answer accepted")
	}
}

func TestMKIBytes(t *testing.T) {
	cases := []struct {
		k    MasterKey
		want []byte
	}{
		{MasterKey{}, nil},
		{MasterKey{MKI: 1, MKILen: 1}, []byte{1}},
		{MasterKey{MKI: 258, MKILen: 4}, []byte{0, 0, 1, 2}},
		{MasterKey{MKI: 1, MKILen: 10}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
	}
	for _, c := range cases {
		if got := c.k.mkiBytes(); !bytes.Equal(got, c.want) {
			t.Errorf("mkiBytes(%d:%d) = %v, want %v", c.k.MKI, c.k.MKILen, got, c.want)
		}
	}
}

func TestWindowSize(t *testing.T) {
	for params, want := range map[string]uint{"": 64, "WSH=32": 64, "WSH=128": 128, "WSH=100000": 1024} {
		c := Crypto{}
		if params != "" {
			c.SessionParams = []string{params}
		}
		if got := c.windowSize(); got != want {
			t.Errorf("windowSize(%q) = %d, want %d", params, got, want)
		}
	}
}
