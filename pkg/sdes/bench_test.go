package sdes

import (
	"encoding/binary"
	"testing"
	"time"
)

// Per-packet cost of SRTP protect and unprotect for a 20 ms G.711 packet
// (12-byte header + 160-byte payload), each suite. Buffers are reused as the
// endpoint will reuse them; the target is 0 allocs/op.

func BenchmarkProtectRTP(b *testing.B) {
	for _, s := range OfferOrder {
		b.Run(s.String(), func(b *testing.B) {
			a, _ := pair(b, mustKey(b, s), mustKey(b, s))
			pkt := rtpPacket(b, 1, 0, 160)
			dst := make([]byte, 0, 1500)
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				binary.BigEndian.PutUint16(pkt[2:], uint16(i))
				if _, err := a.ProtectRTP(dst, pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnprotectRTP(b *testing.B) {
	for _, s := range OfferOrder {
		b.Run(s.String(), func(b *testing.B) {
			a, r := pair(b, mustKey(b, s), mustKey(b, s))
			// Pre-protect a ring of consecutive packets; each round feeds the
			// receiver fresh indices (a replay would be rejected cheaply and
			// measure the wrong thing).
			const ring = 1 << 16
			pkts := make([][]byte, ring)
			pkt := rtpPacket(b, 1, 0, 160)
			for i := range pkts {
				binary.BigEndian.PutUint16(pkt[2:], uint16(i))
				enc, err := a.ProtectRTP(nil, pkt)
				if err != nil {
					b.Fatal(err)
				}
				pkts[i] = enc
			}
			dst := make([]byte, 0, 1500)
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if i > 0 && i%ring == 0 {
					// Out of fresh packets: restart with a new receiver
					// (rare; excluded from the timing).
					b.StopTimer()
					if err := r.SetRemote(a.Local()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if _, err := r.UnprotectRTP(dst, pkts[i%ring]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnprotectRTPOldKeyDuringSwitchOver is the transient cost while a
// pending peer key is installed but the peer still sends under the old one:
// every packet first fails on the pending context.
func BenchmarkUnprotectRTPOldKeyDuringSwitchOver(b *testing.B) {
	s := SuiteAESCM128HMACSHA1_80
	a, r := pair(b, mustKey(b, s), mustKey(b, s))
	const ring = 1 << 16
	pkts := make([][]byte, ring)
	pkt := rtpPacket(b, 1, 0, 160)
	for i := range pkts {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		enc, err := a.ProtectRTP(nil, pkt)
		if err != nil {
			b.Fatal(err)
		}
		pkts[i] = enc
	}
	if err := r.SetPendingRemote(mustKey(b, s), time.Now().Add(24*time.Hour)); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 1500)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i > 0 && i%ring == 0 {
			b.StopTimer()
			if err := r.SetRemote(a.Local()); err != nil {
				b.Fatal(err)
			}
			if err := r.SetPendingRemote(mustKey(b, s), time.Now().Add(24*time.Hour)); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if _, err := r.UnprotectRTP(dst, pkts[i%ring]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProtectUnprotectRTCP(b *testing.B) {
	for _, s := range OfferOrder {
		b.Run(s.String(), func(b *testing.B) {
			a, r := pair(b, mustKey(b, s), mustKey(b, s))
			pkt := rtcpPacket(b, 1, 1)
			enc := make([]byte, 0, 1500)
			dec := make([]byte, 0, 1500)
			b.ReportAllocs()
			for b.Loop() {
				e, err := a.ProtectRTCP(enc, pkt)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := r.UnprotectRTCP(dec, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
