package sdes

import (
	"reflect"
	"testing"
	"time"
)

// FuzzParseCrypto: never panics; whatever parses is valid and survives a
// String/ParseCrypto round trip unchanged.
func FuzzParseCrypto(f *testing.F) {
	k30 := b64(keyBytes(30, 1))
	seeds := []string{
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + k30,
		"2 AES_CM_128_HMAC_SHA1_32 inline:" + k30,
		"3 AEAD_AES_128_GCM inline:" + b64(keyBytes(28, 1)),
		"3 AEAD_AES_128_GCM inline:" + b64raw(keyBytes(28, 1)),
		"4 AEAD_AES_256_GCM inline:" + b64(keyBytes(44, 1)),
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + k30 + "|2^31|1:1",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + k30 + "|2^20|1:4",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + k30 + "|4294967296",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + k30 + "|1:4;inline:" + k30 + "|2:4",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + k30 + " WSH=128 FEC_ORDER=SRTP_FEC",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + k30 + " KDR=1",
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + k30 + "\r\n",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + k30 + "|99999999999999999999:128",
		"1 FOO inline:" + k30,
		"x AES_CM_128_HMAC_SHA1_80 inline:" + k30,
		"1 AES_CM_128_HMAC_SHA1_80 " + k30,
		"1 AES_CM_128_HMAC_SHA1_80 inline:!!!",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + k30 + "||",
		"1 AES_CM_128_HMAC_SHA1_80 inline:;;;",
		"",
		"   ",
		"\x00\xff inline:",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseCrypto(in)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseCrypto(%q) returned an invalid Crypto: %v", in, err)
		}
		text := c.String()
		back, err := ParseCrypto(text)
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", text, in, err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed %q:\n%+v\n%+v", in, c, back)
		}
	})
}

// FuzzUnprotect feeds arbitrary bytes to UnprotectRTP and UnprotectRTCP of
// every suite, during a switch-over too: never a panic, never output with
// an error, never success (no fuzzer forges a tag).
func FuzzUnprotect(f *testing.F) {
	for _, s := range OfferOrder {
		a, _ := pair(f, mustKey(f, s), mustKey(f, s))
		p, _ := a.ProtectRTP(nil, rtpPacket(f, 1, 1, 160))
		f.Add(p)
		c, _ := a.ProtectRTCP(nil, rtcpPacket(f, 1, 1))
		f.Add(c)
	}
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Add([]byte{0x80, 0xc8, 0, 1, 0, 0, 0, 1})
	f.Add(make([]byte, 12))
	f.Add([]byte{0x9f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // 15 CSRCs claimed
	f.Add([]byte{0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0xff, 0xff})

	var trs []*Transport
	for _, s := range OfferOrder {
		_, b := pair(f, mustKey(f, s), mustKey(f, s))
		trs = append(trs, b)
		_, c := pair(f, mustKey(f, s), mustKey(f, s))
		if err := c.SetPendingRemote(mustKey(f, s), time.Now().Add(24*time.Hour)); err != nil { // stays in the switch-over
			f.Fatal(err)
		}
		trs = append(trs, c)
	}
	mki := Crypto{Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{
		{KeySalt: keyBytes(30, 1), MKI: 1, MKILen: 4}, {KeySalt: keyBytes(30, 2), MKI: 2, MKILen: 4}}}
	m, err := NewTransport(mustKey(f, SuiteAESCM128HMACSHA1_80))
	if err != nil {
		f.Fatal(err)
	}
	if err := m.SetRemote(mki); err != nil {
		f.Fatal(err)
	}
	trs = append(trs, m)

	f.Fuzz(func(t *testing.T, pkt []byte) {
		dst := make([]byte, 0, 64)
		for _, tr := range trs {
			if out, err := tr.UnprotectRTP(dst, pkt); err == nil || out != nil {
				t.Fatalf("UnprotectRTP(%x) = %x, %v", pkt, out, err)
			}
			if out, err := tr.UnprotectRTCP(dst, pkt); err == nil || out != nil {
				t.Fatalf("UnprotectRTCP(%x) = %x, %v", pkt, out, err)
			}
		}
	})
}
