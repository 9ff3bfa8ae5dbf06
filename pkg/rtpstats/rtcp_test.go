package rtpstats

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

func TestSenderCountersAndTimestamp(t *testing.T) {
	s := NewSender(0xabc, 8000)
	if _, ok := s.RTPTimestampAt(t0); ok {
		t.Fatal("timestamp before any packet")
	}
	for i := range 50 {
		s.OnSent(uint32(1000+160*i), 160, t0.Add(time.Duration(i)*ptime))
	}
	s.OnSent(0, -1, t0.Add(49*ptime)) // bogus length ignored for octets
	s.OnSent(1000+160*49, 160, t0.Add(49*ptime))
	if s.Packets() != 52 || s.Octets() != 51*160 {
		t.Fatalf("packets %d octets %d", s.Packets(), s.Octets())
	}
	// 30 ms after the last packet = 240 units later.
	ts, ok := s.RTPTimestampAt(t0.Add(49*ptime + 30*time.Millisecond))
	if !ok || ts != 1000+160*49+240 {
		t.Fatalf("extrapolated ts %d", ts)
	}
	// Timestamps wrap modulo 2^32; a time before the last packet does not go back.
	s.OnSent(0xffffff00, 160, t0)
	if ts, _ := s.RTPTimestampAt(t0.Add(time.Second)); ts != uint32(0xffffff00+8000-1<<32) {
		t.Fatalf("wrapped ts %#x", ts)
	}
	if ts, _ := s.RTPTimestampAt(t0.Add(-time.Second)); ts != 0xffffff00 {
		t.Fatalf("earlier time gave ts %#x", ts)
	}
}

func TestBuildSRRoundTrip(t *testing.T) {
	s := NewSender(0x11111111, 8000)
	r := NewReceiver(8000)
	feed(r, 0x22222222, without(seqRange(1, 50), 7, 8)...)
	srNTP := ToNTP(t0.Add(-time.Minute))
	r.OnSR(0x22222222, srNTP, t0)
	for i := range 10 {
		s.OnSent(uint32(5000+160*i), 160, t0.Add(time.Duration(i)*ptime))
	}
	now := t0.Add(250 * time.Millisecond)
	buf := make([]byte, 1500)
	n, err := BuildSR(buf, s, r, now)
	if err != nil || n != MaxReportSize {
		t.Fatalf("BuildSR: %d, %v", n, err)
	}
	pkts, err := rtcp.Unmarshal(buf[:n])
	if err != nil || len(pkts) != 1 {
		t.Fatalf("pion cannot read our SR: %v %v", pkts, err)
	}
	sr, ok := pkts[0].(*rtcp.SenderReport)
	if !ok {
		t.Fatalf("got %T", pkts[0])
	}
	want := &rtcp.SenderReport{
		SSRC:        0x11111111,
		NTPTime:     ToNTP(now),
		RTPTime:     5000 + 160*9 + 160*3 + 80, // 70 ms after the last packet
		PacketCount: 10,
		OctetCount:  1600,
		Reports: []rtcp.ReceptionReport{{
			SSRC:               0x22222222,
			FractionLost:       uint8(2 * 256 / 49), // base 2 → expected 49, lost 2
			TotalLost:          2,
			LastSequenceNumber: 50,
			Jitter:             0,
			LastSenderReport:   NTPMiddle(srNTP),
			Delay:              toShortNTP(250 * time.Millisecond),
		}},
	}
	if !reflect.DeepEqual(sr, want) {
		t.Fatalf("SR\n got %+v\nwant %+v", sr, want)
	}
	if s.srs[0].lsr != NTPMiddle(ToNTP(now)) || !s.srs[0].sent.Equal(now) {
		t.Fatalf("SR not recorded for RTT: %+v", s.srs[0])
	}
}

func TestBuildSRBeforeMediaAndWithoutBlock(t *testing.T) {
	s := NewSender(5, 8000)
	buf := make([]byte, 64)
	n, err := BuildSR(buf, s, nil, t0)
	if err != nil || n != 28 {
		t.Fatalf("BuildSR without receiver: %d %v", n, err)
	}
	pkts, err := rtcp.Unmarshal(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	sr := pkts[0].(*rtcp.SenderReport)
	if sr.SSRC != 5 || sr.PacketCount != 0 || sr.OctetCount != 0 || sr.RTPTime != 0 || len(sr.Reports) != 0 {
		t.Fatalf("SR before media: %+v", sr)
	}
	// A receiver without packets gives no block either.
	if n, _ := BuildSR(buf, s, NewReceiver(8000), t0); n != 28 {
		t.Fatalf("SR with empty receiver is %d bytes", n)
	}
}

func TestBuildRRRoundTrip(t *testing.T) {
	r := NewReceiver(48000)
	feed(r, 77, seqRange(10, 20)...)
	buf := make([]byte, 64)
	n, err := BuildRR(buf, 66, r, t0)
	if err != nil || n != 32 {
		t.Fatalf("BuildRR: %d %v", n, err)
	}
	pkts, err := rtcp.Unmarshal(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	rr := pkts[0].(*rtcp.ReceiverReport)
	if rr.SSRC != 66 || len(rr.Reports) != 1 || rr.Reports[0].SSRC != 77 || rr.Reports[0].LastSequenceNumber != 20 {
		t.Fatalf("RR %+v", rr)
	}
	n, err = BuildRR(buf, 66, nil, t0)
	if err != nil || n != 8 {
		t.Fatalf("empty RR: %d %v", n, err)
	}
	if pkts, err := rtcp.Unmarshal(buf[:n]); err != nil || len(pkts[0].(*rtcp.ReceiverReport).Reports) != 0 {
		t.Fatalf("empty RR does not parse: %v", err)
	}
}

func TestBuildShortBufferChangesNothing(t *testing.T) {
	s := NewSender(1, 8000)
	r := NewReceiver(8000)
	feed(r, 2, without(seqRange(1, 20), 10)...)
	if _, err := BuildSR(make([]byte, 51), s, r, t0); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("SR into 51 bytes: %v", err)
	}
	if _, err := BuildRR(make([]byte, 31), 1, r, t0); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("RR into 31 bytes: %v", err)
	}
	if s.srs[0].lsr != 0 || !s.srs[0].sent.IsZero() {
		t.Fatal("failed SR was recorded")
	}
	rb, _ := r.Report(t0)
	if rb.FractionLost == 0 {
		t.Fatal("failed builds consumed the fraction-lost interval")
	}
}

func TestTotalLostClampedTo24Bits(t *testing.T) {
	r := NewReceiver(8000)
	// Gaps of 2999 (just under MAX_DROPOUT) repeated lose ~12.6 M packets.
	seq := uint16(0)
	feed(r, 1, 0, 1)
	seq = 1
	for range 4300 {
		seq += 2999
		r.Update(seq, 0, 1, 0, t0)
	}
	if r.PacketsLost() <= maxTotalLost {
		t.Fatalf("setup lost only %d", r.PacketsLost())
	}
	buf := make([]byte, 64)
	n, _ := BuildRR(buf, 9, r, t0)
	pkts, err := rtcp.Unmarshal(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	if got := pkts[0].(*rtcp.ReceiverReport).Reports[0].TotalLost; got != maxTotalLost {
		t.Fatalf("TotalLost %#x, want %#x", got, maxTotalLost)
	}
}

func TestRTTFromReportBlock(t *testing.T) {
	s := NewSender(0xaaaa, 8000)
	buf := make([]byte, 64)
	if _, err := BuildSR(buf, s, nil, t0); err != nil {
		t.Fatal(err)
	}
	lsr := NTPMiddle(ToNTP(t0))
	rb := rtcp.ReceptionReport{SSRC: 0xaaaa, LastSenderReport: lsr, Delay: toShortNTP(100 * time.Millisecond)}
	if _, ok := s.RTT(); ok {
		t.Fatal("RTT before measurement")
	}
	// DLSR has a resolution of 1/65536 s (~15 µs) and is truncated.
	rtt, ok := s.OnReportBlock(rb, t0.Add(150*time.Millisecond))
	if !ok || rtt < 50*time.Millisecond || rtt > 50*time.Millisecond+16*time.Microsecond {
		t.Fatalf("RTT %v %v, want 50ms", rtt, ok)
	}
	if ms, ok := s.RTTMs(); !ok || ms != float64(rtt)/1e6 {
		t.Fatalf("RTTMs %v %v", ms, ok)
	}
	rejected := []struct {
		name string
		rb   rtcp.ReceptionReport
		at   time.Time
	}{
		{"other SSRC", rtcp.ReceptionReport{SSRC: 1, LastSenderReport: lsr}, t0.Add(time.Second)},
		{"LSR 0", rtcp.ReceptionReport{SSRC: 0xaaaa}, t0.Add(time.Second)},
		{"unknown LSR", rtcp.ReceptionReport{SSRC: 0xaaaa, LastSenderReport: lsr + 1}, t0.Add(time.Second)},
		{"negative", rtcp.ReceptionReport{SSRC: 0xaaaa, LastSenderReport: lsr, Delay: toShortNTP(2 * time.Second)}, t0.Add(time.Second)},
		{"10 s", rtcp.ReceptionReport{SSRC: 0xaaaa, LastSenderReport: lsr}, t0.Add(10 * time.Second)},
	}
	for _, c := range rejected {
		if rtt, ok := s.OnReportBlock(c.rb, c.at); ok {
			t.Errorf("%s: accepted RTT %v", c.name, rtt)
		}
	}
	if got, _ := s.RTT(); got != rtt {
		t.Errorf("rejected blocks replaced the RTT: %v", rtt)
	}
	// Just under the bound and exactly 0 are kept.
	if rtt, ok := s.OnReportBlock(rtcp.ReceptionReport{SSRC: 0xaaaa, LastSenderReport: lsr}, t0.Add(MaxRTT-time.Millisecond)); !ok || rtt != MaxRTT-time.Millisecond {
		t.Errorf("9.999 s: %v %v", rtt, ok)
	}
	if rtt, ok := s.OnReportBlock(rtcp.ReceptionReport{SSRC: 0xaaaa, LastSenderReport: lsr, Delay: 65536}, t0.Add(time.Second)); !ok || rtt != 0 {
		t.Errorf("zero RTT: %v %v", rtt, ok)
	}
}

func TestRTTHistoryForgetsOldSRs(t *testing.T) {
	s := NewSender(1, 8000)
	buf := make([]byte, 64)
	for i := range srHistory + 1 {
		BuildSR(buf, s, nil, t0.Add(time.Duration(i)*time.Second))
	}
	first := rtcp.ReceptionReport{SSRC: 1, LastSenderReport: NTPMiddle(ToNTP(t0))}
	if _, ok := s.OnReportBlock(first, t0.Add(time.Duration(srHistory)*time.Second+time.Millisecond)); ok {
		t.Fatal("LSR of an SR pushed out of the history still matched")
	}
	last := rtcp.ReceptionReport{SSRC: 1, LastSenderReport: NTPMiddle(ToNTP(t0.Add(srHistory * time.Second)))}
	if rtt, ok := s.OnReportBlock(last, t0.Add(time.Duration(srHistory)*time.Second+7*time.Millisecond)); !ok || rtt != 7*time.Millisecond {
		t.Fatalf("latest SR: %v %v", rtt, ok)
	}
}

func marshal(t testing.TB, ps ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(ps)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRTCPCompound(t *testing.T) {
	rb1 := rtcp.ReceptionReport{SSRC: 10, FractionLost: 3, TotalLost: 4, LastSequenceNumber: 5, Jitter: 6, LastSenderReport: 7, Delay: 8}
	rb2 := rtcp.ReceptionReport{SSRC: 20, Jitter: 1}
	sr := &rtcp.SenderReport{SSRC: 1, NTPTime: 0x0102030405060708, RTPTime: 9, PacketCount: 10, OctetCount: 11, Reports: []rtcp.ReceptionReport{rb1}}
	rr := &rtcp.ReceiverReport{SSRC: 2, Reports: []rtcp.ReceptionReport{rb2}}
	sdes := &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "x@y"}}}}}
	app := &rtcp.ApplicationDefined{SubType: 1, SSRC: 1, Name: "TEST", Data: []byte{1, 2, 3, 4}}
	bye := &rtcp.Goodbye{Sources: []uint32{1, 3}, Reason: "hanging up"}

	c, err := ParseRTCP(marshal(t, sr, rr, sdes, app, bye))
	if err != nil {
		t.Fatal(err)
	}
	reason := "hanging up"
	want := Compound{
		SenderReports: []SenderInfo{{SSRC: 1, NTPTime: 0x0102030405060708, RTPTime: 9, PacketCount: 10, OctetCount: 11}},
		Reports:       []rtcp.ReceptionReport{rb1, rb2},
		Bye:           &Bye{SSRCs: []uint32{1, 3}, Reason: &reason},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}

	// BYE alone, without reason: reason is nil (JSON null), list non-nil.
	c, err = ParseRTCP(marshal(t, &rtcp.Goodbye{Sources: []uint32{42}}))
	if err != nil || c.Bye == nil || c.Bye.Reason != nil || !reflect.DeepEqual(c.Bye.SSRCs, []uint32{42}) {
		t.Fatalf("BYE without reason: %+v %v", c.Bye, err)
	}
	c, err = ParseRTCP(marshal(t, &rtcp.Goodbye{}))
	if err != nil || c.Bye == nil || c.Bye.SSRCs == nil || len(c.Bye.SSRCs) != 0 {
		t.Fatalf("BYE with no SSRC: %+v %v", c.Bye, err)
	}
	// Two BYEs merge; the first reason wins.
	c, err = ParseRTCP(marshal(t, rr, &rtcp.Goodbye{Sources: []uint32{1}}, &rtcp.Goodbye{Sources: []uint32{2}, Reason: "b"}, &rtcp.Goodbye{Sources: []uint32{3}, Reason: "c"}))
	if err != nil || !reflect.DeepEqual(c.Bye.SSRCs, []uint32{1, 2, 3}) || *c.Bye.Reason != "b" {
		t.Fatalf("merged BYE: %+v %v", c.Bye, err)
	}
	// Our own builders parse.
	s := NewSender(5, 8000)
	r := NewReceiver(8000)
	feed(r, 6, 1, 2, 3)
	buf := make([]byte, 100)
	n, _ := BuildSR(buf, s, r, t0)
	m, _ := BuildRR(buf[n:], 5, r, t0)
	c, err = ParseRTCP(buf[:n+m])
	if err != nil || len(c.SenderReports) != 1 || len(c.Reports) != 2 || c.Reports[0].SSRC != 6 || c.Bye != nil {
		t.Fatalf("own SR+RR: %+v %v", c, err)
	}
}

func TestParseRTCPRejectsBrokenCompounds(t *testing.T) {
	rr := marshal(t, &rtcp.ReceiverReport{SSRC: 2, Reports: []rtcp.ReceptionReport{{SSRC: 3}}})
	bye := marshal(t, &rtcp.Goodbye{Sources: []uint32{1}})
	srClaimsTwoBlocks := marshal(t, &rtcp.SenderReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 3}}})
	srClaimsTwoBlocks[0] = srClaimsTwoBlocks[0]&^0x1f | 2
	cases := map[string][]byte{
		"empty":             nil,
		"three bytes":       {0x80, 201, 0},
		"version 1":         append([]byte{0x40}, rr[1:]...),
		"length overrun":    append([]byte{rr[0], rr[1], 0, 99}, rr[4:]...),
		"trailing bytes":    append(append([]byte{}, rr...), 0x80, 0),
		"second version 0":  append(append([]byte{}, rr...), append([]byte{0x00}, bye[1:]...)...),
		"sr blocks overrun": srClaimsTwoBlocks,
		"junk":              []byte("this is certainly not RTCP"),
	}
	for name, b := range cases {
		if c, err := ParseRTCP(b); err == nil {
			t.Errorf("%s: accepted as %+v", name, c)
		}
	}
}

func FuzzParseRTCP(f *testing.F) {
	sr := &rtcp.SenderReport{SSRC: 1, NTPTime: 2, Reports: []rtcp.ReceptionReport{{SSRC: 3, LastSenderReport: 4}}}
	rr := &rtcp.ReceiverReport{SSRC: 2, Reports: []rtcp.ReceptionReport{{SSRC: 1}}}
	f.Add(marshal(f, sr, rr))
	f.Add(marshal(f, rr, &rtcp.Goodbye{Sources: []uint32{1, 2}, Reason: "bye"}))
	f.Add(marshal(f, &rtcp.Goodbye{Sources: []uint32{1}}))
	f.Add(marshal(f, sr, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "a"}}}}}))
	f.Add([]byte{})
	f.Add([]byte("junk junk junk junk"))
	f.Add([]byte{0x80, 200, 0, 6, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseRTCP(b)
		if err != nil {
			if c.Bye != nil || c.Reports != nil || c.SenderReports != nil {
				t.Fatal("partial result with an error")
			}
			return
		}
		// Every block and sender info takes wire space.
		if 24*len(c.Reports)+24*len(c.SenderReports) > len(b) {
			t.Fatalf("%d blocks and %d SRs from %d bytes", len(c.Reports), len(c.SenderReports), len(b))
		}
		if c.Bye != nil && (c.Bye.SSRCs == nil || 4*len(c.Bye.SSRCs) > len(b)) {
			t.Fatalf("BYE %+v from %d bytes", c.Bye, len(b))
		}
		// Feeding the result into the stats never panics.
		s := NewSender(1, 8000)
		r := NewReceiver(8000)
		for _, si := range c.SenderReports {
			r.OnSR(si.SSRC, si.NTPTime, t0)
		}
		for _, rb := range c.Reports {
			s.OnReportBlock(rb, t0)
		}
	})
}

func TestPerPacketPathsDoNotAllocate(t *testing.T) {
	r := NewReceiver(8000)
	s := NewSender(1, 8000)
	buf := make([]byte, MaxReportSize)
	seq := uint16(0)
	now := t0
	rb := rtcp.ReceptionReport{SSRC: 1, LastSenderReport: 1}
	allocs := testing.AllocsPerRun(500, func() {
		seq++
		now = now.Add(ptime)
		r.Update(seq, uint32(seq)*160, 9, 160, now)
		s.OnSent(uint32(seq)*160, 160, now)
		if seq%250 == 0 {
			BuildSR(buf, s, r, now)
			BuildRR(buf, 1, r, now)
			s.OnReportBlock(rb, now)
		}
		_ = r.JitterMs()
		_ = r.PacketsLost()
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per packet, want 0", allocs)
	}
}

func BenchmarkReceiverUpdate(b *testing.B) {
	r := NewReceiver(8000)
	now := t0
	seq := uint16(0)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		now = now.Add(ptime)
		r.Update(seq, uint32(seq)*160, 0x1234, 160, now)
	}
}

func BenchmarkSenderOnSent(b *testing.B) {
	s := NewSender(1, 8000)
	b.ReportAllocs()
	ts := uint32(0)
	for b.Loop() {
		ts += 160
		s.OnSent(ts, 160, t0)
	}
}

func BenchmarkBuildSR(b *testing.B) {
	r := NewReceiver(8000)
	feed(r, 2, seqRange(1, 100)...)
	s := NewSender(1, 8000)
	s.OnSent(0, 160, t0)
	buf := make([]byte, MaxReportSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildSR(buf, s, r, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRTCP(b *testing.B) {
	pkt := marshal(b, &rtcp.SenderReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 2}}}, &rtcp.Goodbye{Sources: []uint32{1}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRTCP(pkt); err != nil {
			b.Fatal(err)
		}
	}
}
