package rtpnet

import (
	"net/netip"
	"testing"

	"github.com/pion/rtp"
)

func BenchmarkClassify(b *testing.B) {
	pkt := samplePackets()["rtp-all"]
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if Classify(pkt, true) != KindRTP {
			b.Fatal("not RTP")
		}
	}
}

func BenchmarkClassifyRTCPMux(b *testing.B) {
	pkt := samplePackets()["rtcp-sr-rr"]
	b.ReportAllocs()
	for b.Loop() {
		if Classify(pkt, true) != KindRTCP {
			b.Fatal("not RTCP")
		}
	}
}

func BenchmarkClassifyInvalid(b *testing.B) {
	pkt := samplePackets()["junk"]
	b.ReportAllocs()
	for b.Loop() {
		if Classify(pkt, true) != KindInvalid {
			b.Fatal("not invalid")
		}
	}
}

func BenchmarkParseRTP(b *testing.B) {
	for _, name := range []string{"rtp", "rtp-all"} {
		b.Run(name, func(b *testing.B) {
			pkt := samplePackets()[name]
			var h RTPHeader
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				if _, err := ParseRTP(pkt, &h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseRTPError(b *testing.B) {
	pkt := samplePackets()["truncated"]
	var h RTPHeader
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRTP(pkt, &h); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkSourceCheck is the per-packet source check of D24 (issue 10 budget: ≤ 50 ns): a
// packet from the latched source, and a foreign one rejected, under a network-list policy.
func BenchmarkSourceCheck(b *testing.B) {
	p, err := ParseSourcePolicy([]string{"10.0.0.0/8", "172.16.0.0/12", "192.0.2.0/24"})
	if err != nil {
		b.Fatal(err)
	}
	l := NewLearner(&p, t0)
	src := netip.MustParseAddrPort("192.0.2.1:5000")
	l.CommitRTP(src, t0)
	foreign := netip.MustParseAddrPort("198.51.100.9:5000")
	b.Run("latched", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if l.CheckRTP(src, t0) != Accept {
				b.Fatal("latched source not accepted")
			}
		}
	})
	b.Run("foreign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if l.CheckRTP(foreign, t0) != Reject {
				b.Fatal("foreign source not rejected")
			}
		}
	})
	b.Run("unlatched-policy", func(b *testing.B) {
		fresh := NewLearner(&p, t0)
		b.ReportAllocs()
		for b.Loop() {
			if fresh.CheckRTP(foreign, t0) != Reject {
				b.Fatal("source outside the networks may latch")
			}
		}
	})
}

// TestHotPathsDoNotAllocate makes the zero-allocation claim fail the
// ordinary test run, not just show in benchmark output.
func TestHotPathsDoNotAllocate(t *testing.T) {
	pkts := samplePackets()
	var h RTPHeader
	l := NewLearner(nil, t0)
	src := netip.MustParseAddrPort("192.0.2.1:5000")
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.1]:5000")
	allocs := testing.AllocsPerRun(200, func() {
		for _, p := range pkts {
			Classify(p, true)
			Classify(p, false)
			ClassifyRTCPSocket(p)
			ParseRTP(p, &h)
		}
		if l.CheckRTP(mapped, t0) == Learn {
			l.CommitRTP(src, t0)
		}
		l.CheckRTCP(src, t0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run, want 0", allocs)
	}
}

// BenchmarkPionHeaderUnmarshal is the reference ParseRTP replaced: pion/rtp
// allocates for CSRCs and extensions and on every error (fmt.Errorf), which
// is why the hot path has its own parser.
func BenchmarkPionHeaderUnmarshal(b *testing.B) {
	for _, name := range []string{"rtp", "rtp-all", "truncated"} {
		b.Run(name, func(b *testing.B) {
			pkt := samplePackets()[name]
			var p rtp.Packet
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Unmarshal(pkt)
			}
		})
	}
}
