package session

import (
	"net"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
)

// TestOpusFECFollowsDestinationReports drives a PCMU → Opus pipeline whose destination offered
// useinbandfec=1: no protection while the destination has sent no report or only clean ones;
// a receiver report of 10 % loss, received on the destination's RTCP socket through the real
// receive path, sets FEC and 11 % expected loss from the next packet on; clean reports bring it
// back to libopus's defaults. The per-packet path allocates nothing, also on the packets that
// apply a new report.
func TestOpusFECFollowsDestinationReports(t *testing.T) {
	for _, fec := range []bool{true, false} {
		format := "111\r\na=rtpmap:111 opus/48000/2"
		if fec {
			format += "\r\na=fmtp:111 minptime=10;useinbandfec=1"
		}
		f := newRoutingFixture(t, format, false)
		m := f.s.media
		p := m.pipes.items[[2]*leg{m.byEP[f.a], m.byEP[f.b]}]
		if p == nil {
			t.Fatal("no PCMU → Opus pipeline")
		}
		var seq uint16
		send := func(n int) {
			for range n {
				seq++
				f.inject(seq)
			}
		}
		report := func(fraction uint8) {
			b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 0xb0b, Reports: []rtcp.ReceptionReport{{
				SSRC: f.b.Out().SSRC(), FractionLost: fraction,
			}}}})
			if err != nil {
				t.Fatal(err)
			}
			m.handlePacket(f.b, b, f.peerB.LocalAddr().(*net.UDPAddr).AddrPort(), time.Now(), true)
		}
		send(10)
		if got := p.enc.LossProtection(); got != (codec.LossProtection{}) {
			t.Fatalf("before any report: %+v", got)
		}
		report(0)
		send(1)
		if got := p.enc.LossProtection(); got != (codec.LossProtection{}) {
			t.Fatalf("after a clean report: %+v", got)
		}
		report(26)
		if got := p.enc.LossProtection(); got != (codec.LossProtection{}) {
			t.Fatalf("set before the next packet: %+v", got)
		}
		send(1)
		if want := (codec.LossProtection{FEC: fec, ExpectedLoss: 11}); p.enc.LossProtection() != want {
			t.Fatalf("useinbandfec=%v, after a 10 %% report: %+v, want %+v", fec, p.enc.LossProtection(), want)
		}
		for range 5 { // 10.2 → 5.1 → 2.5 → 1.3 → 0.6 (still on) → 0.3 %
			report(0)
			send(1)
		}
		if got := p.enc.LossProtection(); got != (codec.LossProtection{}) {
			t.Fatalf("after 5 clean reports: %+v", got)
		}

		// Each run applies a changed report (10 % and clean alternately): no allocation.
		sender := f.b.Sender()
		ssrc := f.b.Out().SSRC()
		fraction := uint8(0)
		allocs := testing.AllocsPerRun(200, func() {
			fraction = 26 - fraction
			sender.OnReportBlock(rtcp.ReceptionReport{SSRC: ssrc, FractionLost: fraction}, time.Now())
			seq++
			f.inject(seq)
		})
		if allocs != 0 {
			t.Errorf("packet path applying loss reports allocates %.1f times per packet", allocs)
		}
	}
}

// TestOpusFECFollowsDestinationReportsInMix: a mixer encoding for an Opus destination follows
// the destination's reports the same way.
func TestOpusFECFollowsDestinationReportsInMix(t *testing.T) {
	f := newRoutingFixture(t, "111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1", true)
	m := f.s.media
	var mx *mixer
	for _, x := range m.mixers {
		if x.dst == m.byEP[f.b] {
			mx = x
		}
	}
	if mx == nil {
		t.Fatal("no mixer for the Opus leg")
	}
	var seq uint16
	for range 5 {
		seq++
		f.inject(seq)
	}
	if got := mx.enc.LossProtection(); got != (codec.LossProtection{}) {
		t.Fatalf("before any report: %+v", got)
	}
	f.b.Sender().OnReportBlock(rtcp.ReceptionReport{SSRC: f.b.Out().SSRC(), FractionLost: 26}, time.Now())
	for range 2 {
		seq++
		f.inject(seq)
	}
	if want := (codec.LossProtection{FEC: true, ExpectedLoss: 11}); mx.enc.LossProtection() != want {
		t.Fatalf("after a 10 %% report: %+v, want %+v", mx.enc.LossProtection(), want)
	}
}
