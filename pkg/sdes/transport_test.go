package sdes

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// mustKey makes a fresh key or fails the test.
func mustKey(t testing.TB, s Suite) Crypto {
	t.Helper()
	c, err := NewKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pair returns two transports wired to each other: a sends with ka and
// receives with kb, b the reverse.
func pair(t testing.TB, ka, kb Crypto, opts ...Option) (a, b *Transport) {
	t.Helper()
	var err error
	if a, err = NewTransport(ka, opts...); err != nil {
		t.Fatal(err)
	}
	if b, err = NewTransport(kb, opts...); err != nil {
		t.Fatal(err)
	}
	if err := a.SetRemote(kb); err != nil {
		t.Fatal(err)
	}
	if err := b.SetRemote(ka); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func payload(seq uint16, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(int(seq) + i*7)
	}
	return p
}

func rtpPacket(t testing.TB, ssrc uint32, seq uint16, n int) []byte {
	t.Helper()
	p := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc},
		Payload: payload(seq, n),
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rtcpPacket(t testing.TB, ssrc uint32, octets uint32) []byte {
	t.Helper()
	sr := rtcp.SenderReport{SSRC: ssrc, NTPTime: 0x0102030405060708, RTPTime: 1234, PacketCount: 10, OctetCount: octets,
		Reports: []rtcp.ReceptionReport{{SSRC: 0xabcdef, FractionLost: 3, TotalLost: 7, LastSequenceNumber: 70000, Jitter: 12}}}
	b, err := sr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sendRTP protects seq on a and unprotects on b, failing on any error.
func sendRTP(t testing.TB, a, b *Transport, ssrc uint32, seq uint16) {
	t.Helper()
	pkt := rtpPacket(t, ssrc, seq, 160)
	enc, err := a.ProtectRTP(nil, pkt)
	if err != nil {
		t.Fatalf("protect seq %d: %v", seq, err)
	}
	dec, err := b.UnprotectRTP(nil, enc)
	if err != nil {
		t.Fatalf("unprotect seq %d: %v", seq, err)
	}
	if !bytes.Equal(dec, pkt) {
		t.Fatalf("seq %d: decrypted packet differs", seq)
	}
}

func TestProtectUnprotectEachSuite(t *testing.T) {
	for _, s := range OfferOrder {
		t.Run(s.String(), func(t *testing.T) {
			a, b := pair(t, mustKey(t, s), mustKey(t, s))
			for dir, ends := range [][2]*Transport{{a, b}, {b, a}} {
				src, dst := ends[0], ends[1]
				ssrc := uint32(0x1000 + dir)
				for seq := uint16(100); seq < 110; seq++ {
					pkt := rtpPacket(t, ssrc, seq, 160)
					enc, err := src.ProtectRTP(make([]byte, 0, 1500), pkt)
					if err != nil {
						t.Fatal(err)
					}
					if bytes.Contains(enc, pkt[12:]) {
						t.Fatal("payload not encrypted")
					}
					if !bytes.Equal(enc[:12], pkt[:12]) {
						t.Fatal("RTP header changed by protection")
					}
					dec, err := dst.UnprotectRTP(make([]byte, 0, 1500), enc)
					if err != nil {
						t.Fatalf("unprotect: %v", err)
					}
					if !bytes.Equal(dec, pkt) {
						t.Fatalf("payload mismatch")
					}
				}
				// SRTCP, E flag set, index from pion starting at 1.
				for i := uint32(1); i <= 3; i++ {
					pkt := rtcpPacket(t, ssrc, i)
					enc, err := src.ProtectRTCP(nil, pkt)
					if err != nil {
						t.Fatal(err)
					}
					eword := srtcpEIndex(enc, s)
					if eword>>31 != 1 {
						t.Fatalf("SRTCP E flag not set: %#x", eword)
					}
					if idx := eword & 0x7fffffff; idx != i {
						t.Fatalf("SRTCP index %d, want %d", idx, i)
					}
					if bytes.Contains(enc, pkt[8:]) {
						t.Fatal("RTCP not encrypted")
					}
					dec, err := dst.UnprotectRTCP(nil, enc)
					if err != nil {
						t.Fatalf("unprotect RTCP: %v", err)
					}
					if !bytes.Equal(dec, pkt) {
						t.Fatal("RTCP mismatch")
					}
				}
			}
		})
	}
}

// srtcpEIndex returns the E-flag/SRTCP-index word: before the 80-bit tag for
// AES-CM suites (RFC 3711 §3.4), last for AEAD (RFC 7714 §9.3).
func srtcpEIndex(pkt []byte, s Suite) uint32 {
	end := len(pkt)
	if s == SuiteAESCM128HMACSHA1_80 || s == SuiteAESCM128HMACSHA1_32 {
		end -= 10
	}
	return binary.BigEndian.Uint32(pkt[end-4 : end])
}

func TestSRTPTagLengths(t *testing.T) {
	want := map[Suite]int{SuiteAESCM128HMACSHA1_80: 10, SuiteAESCM128HMACSHA1_32: 4, SuiteAEADAES128GCM: 16, SuiteAEADAES256GCM: 16}
	for s, n := range want {
		a, _ := pair(t, mustKey(t, s), mustKey(t, s))
		pkt := rtpPacket(t, 1, 1, 160)
		enc, err := a.ProtectRTP(nil, pkt)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(enc) - len(pkt); got != n {
			t.Errorf("%s: SRTP overhead %d bytes, want %d", s, got, n)
		}
	}
}

func TestWrongKeyIsAuthError(t *testing.T) {
	for _, s := range OfferOrder {
		t.Run(s.String(), func(t *testing.T) {
			a, _ := pair(t, mustKey(t, s), mustKey(t, s))
			stranger, _ := pair(t, mustKey(t, s), mustKey(t, s))
			enc, err := a.ProtectRTP(nil, rtpPacket(t, 5, 1, 160))
			if err != nil {
				t.Fatal(err)
			}
			out, err := stranger.UnprotectRTP(nil, enc)
			if !errors.Is(err, ErrAuth) || out != nil {
				t.Fatalf("wrong key: out=%v err=%v, want ErrAuth and no output", out != nil, err)
			}
			if errors.Is(err, ErrReplay) || errors.Is(err, ErrMalformed) {
				t.Fatalf("wrong key misclassified: %v", err)
			}
			encC, err := a.ProtectRTCP(nil, rtcpPacket(t, 5, 1))
			if err != nil {
				t.Fatal(err)
			}
			if out, err := stranger.UnprotectRTCP(nil, encC); !errors.Is(err, ErrAuth) || out != nil {
				t.Fatalf("wrong key RTCP: %v", err)
			}
		})
	}
}

func TestTamperedIsAuthError(t *testing.T) {
	a, b := pair(t, mustKey(t, SuiteAESCM128HMACSHA1_80), mustKey(t, SuiteAESCM128HMACSHA1_80))
	enc, _ := a.ProtectRTP(nil, rtpPacket(t, 5, 1, 160))
	enc[20] ^= 1
	if _, err := b.UnprotectRTP(nil, enc); !errors.Is(err, ErrAuth) {
		t.Fatalf("tampered payload: %v", err)
	}
	enc[20] ^= 1 // restored: must now pass (the failed try did not poison the replay window)
	if _, err := b.UnprotectRTP(nil, enc); err != nil {
		t.Fatalf("restored packet rejected: %v", err)
	}
}

func TestReplayIsReplayError(t *testing.T) {
	for _, s := range OfferOrder {
		t.Run(s.String(), func(t *testing.T) {
			a, b := pair(t, mustKey(t, s), mustKey(t, s))
			first, _ := a.ProtectRTP(nil, rtpPacket(t, 9, 1000, 160))
			first = bytes.Clone(first)
			if _, err := b.UnprotectRTP(nil, first); err != nil {
				t.Fatal(err)
			}
			out, err := b.UnprotectRTP(nil, first)
			if !errors.Is(err, ErrReplay) || out != nil {
				t.Fatalf("duplicate: %v", err)
			}
			// Move 64 packets ahead: the first one is now outside the window.
			for seq := uint16(1001); seq <= 1064; seq++ {
				sendRTP(t, a, b, 9, seq)
			}
			if _, err := b.UnprotectRTP(nil, first); !errors.Is(err, ErrReplay) {
				t.Fatalf("too old: %v", err)
			}
			// RTCP duplicate.
			c, _ := a.ProtectRTCP(nil, rtcpPacket(t, 9, 1))
			c = bytes.Clone(c)
			if _, err := b.UnprotectRTCP(nil, c); err != nil {
				t.Fatal(err)
			}
			if _, err := b.UnprotectRTCP(nil, c); !errors.Is(err, ErrReplay) {
				t.Fatalf("RTCP duplicate: %v", err)
			}
		})
	}
}

func TestReorderWithinWindowAccepted(t *testing.T) {
	a, b := pair(t, mustKey(t, SuiteAESCM128HMACSHA1_80), mustKey(t, SuiteAESCM128HMACSHA1_80))
	var held [][]byte
	for seq := uint16(1); seq <= 60; seq++ {
		enc, _ := a.ProtectRTP(nil, rtpPacket(t, 3, seq, 20))
		held = append(held, bytes.Clone(enc))
	}
	for i := len(held) - 1; i >= 0; i-- { // fully reversed, 60 < 64
		if _, err := b.UnprotectRTP(nil, held[i]); err != nil {
			t.Fatalf("reordered packet %d: %v", i+1, err)
		}
	}
}

func TestWSHWidensWindow(t *testing.T) {
	ka, kb := mustKey(t, SuiteAESCM128HMACSHA1_80), mustKey(t, SuiteAESCM128HMACSHA1_80)
	ka.SessionParams = []string{"WSH=256"}
	a, b := pair(t, ka, kb) // b receives with ka, so its window is 256
	old, _ := a.ProtectRTP(nil, rtpPacket(t, 3, 1, 20))
	old = bytes.Clone(old)
	for seq := uint16(2); seq <= 201; seq++ {
		sendRTP(t, a, b, 3, seq)
	}
	if _, err := b.UnprotectRTP(nil, old); err != nil {
		t.Fatalf("packet 200 behind with WSH=256 rejected: %v", err)
	}
}

func TestMalformedAndNoKey(t *testing.T) {
	k := mustKey(t, SuiteAESCM128HMACSHA1_80)
	tr, err := NewTransport(k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.UnprotectRTP(nil, make([]byte, 40)); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no remote: %v", err)
	}
	if _, err := tr.UnprotectRTCP(nil, make([]byte, 40)); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no remote RTCP: %v", err)
	}
	if err := tr.SetRemote(mustKey(t, SuiteAESCM128HMACSHA1_80)); err != nil {
		t.Fatal(err)
	}
	for _, pkt := range [][]byte{nil, {0x80}, {0x80, 0, 0, 1}, make([]byte, 13)} {
		if _, err := tr.UnprotectRTP(nil, pkt); !errors.Is(err, ErrMalformed) {
			t.Errorf("RTP %x: %v, want ErrMalformed", pkt, err)
		}
		if _, err := tr.UnprotectRTCP(nil, pkt); !errors.Is(err, ErrMalformed) {
			t.Errorf("RTCP %x: %v, want ErrMalformed", pkt, err)
		}
	}
	if _, err := tr.ProtectRTP(nil, []byte{1, 2}); err == nil {
		t.Error("ProtectRTP accepted 2 bytes")
	}
	if _, err := tr.ProtectRTCP(nil, []byte{1, 2}); err == nil {
		t.Error("ProtectRTCP accepted 2 bytes")
	}
}

func TestKeyChecks(t *testing.T) {
	k := mustKey(t, SuiteAESCM128HMACSHA1_80)
	if _, err := NewTransport(Crypto{}); err == nil {
		t.Error("NewTransport accepted an empty key")
	}
	two := Crypto{Suite: SuiteAESCM128HMACSHA1_80, Keys: []MasterKey{
		{KeySalt: keyBytes(30, 1), MKI: 1, MKILen: 1}, {KeySalt: keyBytes(30, 2), MKI: 2, MKILen: 1}}}
	if _, err := NewTransport(two); err == nil {
		t.Error("NewTransport accepted two send keys")
	}
	tr, err := NewTransport(k)
	if err != nil {
		t.Fatal(err)
	}
	// A peer that echoes our key is accepted (issue 11); SharedKey tells the caller to drop
	// reflections of its own packets.
	if err := tr.SetRemote(k); err != nil {
		t.Errorf("SetRemote refused an echo of our key: %v", err)
	}
	if !tr.SharedKey() {
		t.Error("SharedKey false with the peer echoing our key")
	}
	peer := mustKey(t, SuiteAESCM128HMACSHA1_80)
	if err := tr.SetRemote(peer); err != nil {
		t.Fatal(err)
	}
	if tr.SharedKey() {
		t.Error("SharedKey true with distinct keys")
	}
	if err := tr.SetPendingRemote(Crypto{Suite: SuiteAEADAES128GCM}, fakeStart); err == nil {
		t.Error("SetPendingRemote accepted a key-less crypto")
	}
	if got, ok := tr.Remote(); !ok || !sameKey(got, peer) {
		t.Error("failed SetPendingRemote changed Remote")
	}
	if !sameKey(tr.Local(), k) {
		t.Error("Local changed")
	}
	if err := tr.Rekey(peer); err != nil {
		t.Errorf("Rekey refused the peer's key as our new send key: %v", err)
	}
	if !tr.SharedKey() {
		t.Error("SharedKey false after rekeying to the peer's key")
	}
}

// TestMKI checks that MKIs are honoured: sent in every packet, and a peer
// line with two keys accepts packets under either, by MKI.
func TestMKI(t *testing.T) {
	for _, s := range []Suite{SuiteAESCM128HMACSHA1_80, SuiteAEADAES128GCM} {
		t.Run(s.String(), func(t *testing.T) {
			m1 := Crypto{Tag: 1, Suite: s, Keys: []MasterKey{{KeySalt: keyBytes(s.MaterialLen(), 10), MKI: 1, MKILen: 4}}}
			m2 := Crypto{Tag: 1, Suite: s, Keys: []MasterKey{{KeySalt: keyBytes(s.MaterialLen(), 20), MKI: 2, MKILen: 4}}}
			both := Crypto{Tag: 1, Suite: s, Keys: []MasterKey{m1.Keys[0], m2.Keys[0]}}
			// Round trip through text so the parser's result is what we use.
			both, err := ParseCrypto(both.String())
			if err != nil {
				t.Fatal(err)
			}
			mine := mustKey(t, s)
			rx, err := NewTransport(mine)
			if err != nil {
				t.Fatal(err)
			}
			if err := rx.SetRemote(both); err != nil {
				t.Fatal(err)
			}
			for i, key := range []Crypto{m1, m2} {
				tx, err := NewTransport(key)
				if err != nil {
					t.Fatal(err)
				}
				pkt := rtpPacket(t, uint32(40+i), 7, 160)
				enc, err := tx.ProtectRTP(nil, pkt)
				if err != nil {
					t.Fatal(err)
				}
				mki := key.Keys[0].mkiBytes()
				if !bytes.Contains(enc[len(pkt):], mki) {
					t.Fatalf("MKI %x not in packet trailer %x", mki, enc[len(pkt):])
				}
				dec, err := rx.UnprotectRTP(nil, enc)
				if err != nil || !bytes.Equal(dec, pkt) {
					t.Fatalf("key with MKI %d: %v", i+1, err)
				}
				c, _ := tx.ProtectRTCP(nil, rtcpPacket(t, uint32(40+i), 1))
				if _, err := rx.UnprotectRTCP(nil, c); err != nil {
					t.Fatalf("RTCP with MKI %d: %v", i+1, err)
				}
			}
			m3 := Crypto{Tag: 1, Suite: s, Keys: []MasterKey{{KeySalt: keyBytes(s.MaterialLen(), 30), MKI: 3, MKILen: 4}}}
			tx3, _ := NewTransport(m3)
			enc, _ := tx3.ProtectRTP(nil, rtpPacket(t, 50, 1, 160))
			if _, err := rx.UnprotectRTP(nil, enc); !errors.Is(err, ErrAuth) {
				t.Fatalf("unknown MKI: %v, want ErrAuth", err)
			}
		})
	}
}

// TestSequenceWrap runs streams across 65535→0 in both directions, starting
// at and near the wrap, with loss and reordering around it. Any ROC error
// would change the packet index and fail authentication.
func TestSequenceWrap(t *testing.T) {
	for _, s := range OfferOrder {
		for _, start := range []uint16{65000, 65530, 65535} {
			a, b := pair(t, mustKey(t, s), mustKey(t, s))
			for _, dir := range [][2]*Transport{{a, b}, {b, a}} {
				seq := start
				n := 0
				for ; n < 1200; n++ { // crosses the wrap once
					sendRTP(t, dir[0], dir[1], 77, seq)
					seq++
				}
			}
			// ROC is now 1 on both receivers; a replay of a pre-wrap packet
			// index must still be refused, and the sender's ROC must be 1.
			if roc, ok := a.txRTP.ROC(77); !ok || roc != 1 {
				t.Fatalf("%s start %d: sender ROC %d,%v want 1", s, start, roc, ok)
			}
			if roc, ok := b.rtp.cur.main.ROC(77); !ok || roc != 1 {
				t.Fatalf("%s start %d: receiver ROC %d,%v want 1", s, start, roc, ok)
			}
		}
	}

	t.Run("loss and reorder across the wrap", func(t *testing.T) {
		a, b := pair(t, mustKey(t, SuiteAESCM128HMACSHA1_80), mustKey(t, SuiteAESCM128HMACSHA1_80))
		for seq := uint16(65500); seq != 65520; seq++ {
			sendRTP(t, a, b, 1, seq)
		}
		// 65520..65529 lost; 65530..5 sent, delivered with 65535 after 0..2.
		enc := map[uint16][]byte{}
		for seq := uint16(65520); seq != 6; seq++ {
			e, err := a.ProtectRTP(nil, rtpPacket(t, 1, seq, 160))
			if err != nil {
				t.Fatal(err)
			}
			enc[seq] = e
		}
		order := []uint16{65530, 65531, 65532, 65533, 65534, 0, 1, 2, 65535, 3, 4, 5}
		for _, seq := range order {
			dec, err := b.UnprotectRTP(nil, enc[seq])
			if err != nil {
				t.Fatalf("seq %d: %v", seq, err)
			}
			if !bytes.Equal(dec, rtpPacket(t, 1, seq, 160)) {
				t.Fatalf("seq %d: payload differs", seq)
			}
		}
		if _, err := b.UnprotectRTP(nil, enc[65535]); !errors.Is(err, ErrReplay) {
			t.Fatalf("replayed 65535 after wrap: %v", err)
		}
		for seq := uint16(6); seq < 40000; seq += 1 { // long run to a far index
			sendRTP(t, a, b, 1, seq)
		}
	})

	t.Run("two wraps", func(t *testing.T) {
		a, b := pair(t, mustKey(t, SuiteAEADAES128GCM), mustKey(t, SuiteAEADAES128GCM))
		pkt := rtpPacket(t, 2, 0, 160)
		var encBuf, decBuf [1500]byte
		for i := 0; i < 2*65536+10; i++ {
			binary.BigEndian.PutUint16(pkt[2:], uint16(i))
			enc, err := a.ProtectRTP(encBuf[:0], pkt)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.UnprotectRTP(decBuf[:0], enc); err != nil {
				t.Fatalf("packet %d: %v", i, err)
			}
		}
		if roc, _ := b.rtp.cur.main.ROC(2); roc != 2 {
			t.Fatalf("receiver ROC %d, want 2", roc)
		}
	})
}

// TestInteropWithRawPion checks our receive path against a plain pion
// context set up independently (guards against mismatched options).
func TestInteropWithRawPion(t *testing.T) {
	for _, s := range OfferOrder {
		peer := mustKey(t, s)
		n := s.KeyLen()
		raw, err := srtp.CreateContext(peer.Keys[0].KeySalt[:n], peer.Keys[0].KeySalt[n:], s.Profile())
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTransport(mustKey(t, s))
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.SetRemote(peer); err != nil {
			t.Fatal(err)
		}
		pkt := rtpPacket(t, 8, 100, 160)
		enc, err := raw.EncryptRTP(nil, pkt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if dec, err := tr.UnprotectRTP(nil, enc); err != nil || !bytes.Equal(dec, pkt) {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestSteadyStateAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); checked in normal runs")
	}
	for _, s := range OfferOrder {
		a, b := pair(t, mustKey(t, s), mustKey(t, s))
		pkt := rtpPacket(t, 1, 1, 160)
		rc := rtcpPacket(t, 1, 1)
		encBuf := make([]byte, 0, 1500)
		decBuf := make([]byte, 0, 1500)
		seq := uint16(1)
		sendRTP(t, a, b, 1, 0) // create per-SSRC state first
		allocs := testing.AllocsPerRun(200, func() {
			binary.BigEndian.PutUint16(pkt[2:], seq)
			seq++
			enc, err := a.ProtectRTP(encBuf, pkt)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.UnprotectRTP(decBuf, enc); err != nil {
				t.Fatal(err)
			}
			encC, err := a.ProtectRTCP(encBuf, rc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.UnprotectRTCP(decBuf, encC); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per protect+unprotect round, want 0", s, allocs)
		}
	}
}

// TestPacketMethodsConcurrently runs the four packet methods on four
// goroutines, as separate RTP/RTCP senders and socket readers would; the
// race detector checks the documented independence.
func TestPacketMethodsConcurrently(t *testing.T) {
	a, b := pair(t, mustKey(t, SuiteAESCM128HMACSHA1_80), mustKey(t, SuiteAESCM128HMACSHA1_80))
	const n = 300
	rtpCh, rtcpCh := make(chan []byte, n), make(chan []byte, n)
	errs := make(chan error, 4)
	clearRTP, clearRTCP := make([][]byte, n), make([][]byte, n)
	for i := range n { // built here: t.Fatal must not run on other goroutines
		clearRTP[i], clearRTCP[i] = rtpPacket(t, 1, uint16(i), 160), rtcpPacket(t, 1, uint32(i))
	}
	go func() {
		for i := range n {
			enc, err := a.ProtectRTP(nil, clearRTP[i])
			if err != nil {
				errs <- err
				return
			}
			rtpCh <- enc
		}
		close(rtpCh)
		errs <- nil
	}()
	go func() {
		for i := range n {
			enc, err := a.ProtectRTCP(nil, clearRTCP[i])
			if err != nil {
				errs <- err
				return
			}
			rtcpCh <- enc
		}
		close(rtcpCh)
		errs <- nil
	}()
	for _, job := range []struct {
		ch  chan []byte
		fun func(dst, pkt []byte) ([]byte, error)
	}{{rtpCh, b.UnprotectRTP}, {rtcpCh, b.UnprotectRTCP}} {
		go func() {
			got := 0
			for p := range job.ch {
				if _, err := job.fun(nil, p); err != nil {
					errs <- err
					return
				}
				got++
			}
			if got != n {
				errs <- errors.New("packets missing")
				return
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestSingleKeyMKIOptionalInPackets: a peer that signalled one key with an MKI may send its
// packets with the MKI (RFC 3711) or without it (D25: the original ignores the MKI). The first
// form that authenticates is kept; the other is refused from then on, so no packet can be
// accepted once in each form.
func TestSingleKeyMKIOptionalInPackets(t *testing.T) {
	s := SuiteAESCM128HMACSHA1_80
	for _, withMKI := range []bool{true, false} {
		t.Run(fmt.Sprintf("with MKI %v", withMKI), func(t *testing.T) {
			us, err := NewTransport(mustKey(t, s))
			if err != nil {
				t.Fatal(err)
			}
			bare := mustKey(t, s)
			signalled := Crypto{Tag: 1, Suite: s, Keys: []MasterKey{{KeySalt: bare.Keys[0].KeySalt, MKI: 1, MKILen: 4}}}
			if err := us.SetRemote(signalled); err != nil {
				t.Fatal(err)
			}
			tagged, _ := NewTransport(signalled)
			plain, _ := NewTransport(bare)
			chosen, other := plain, tagged
			if withMKI {
				chosen, other = tagged, plain
			}
			for i, c := range []struct {
				from *Transport
				ok   bool
			}{{chosen, true}, {other, false}, {chosen, true}} {
				enc, _ := c.from.ProtectRTP(nil, rtpPacket(t, 5, uint16(10+i), 160))
				_, err := us.UnprotectRTP(nil, enc)
				if (err == nil) != c.ok {
					t.Fatalf("packet %d: err %v, want ok=%v", i, err, c.ok)
				}
			}
			// The same holds for SRTCP, which locks its own form.
			enc, _ := chosen.ProtectRTCP(nil, rtcpPacket(t, 5, 1))
			if _, err := us.UnprotectRTCP(nil, enc); err != nil {
				t.Fatalf("SRTCP in the chosen form: %v", err)
			}
			enc, _ = other.ProtectRTCP(nil, rtcpPacket(t, 5, 2))
			if _, err := us.UnprotectRTCP(nil, enc); err == nil {
				t.Fatal("SRTCP in the other form accepted after the lock-in")
			}
		})
	}
}
