package rtpstats

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// peer is one side of a real RTP/RTCP exchange over UDP on 127.0.0.1: it
// sends media and reports from one socket and keeps its own statistics.
type peer struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
	snd  *Sender
	rcv  *Receiver
	seq  uint16
	ts   uint32
}

func newPeer(t *testing.T, ssrc uint32) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, conn: c, snd: NewSender(ssrc, 8000), rcv: NewReceiver(8000), seq: uint16(ssrc), ts: ssrc * 7}
}

// sendRTP sends one 20 ms PCMU packet.
func (p *peer) sendRTP() {
	p.t.Helper()
	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	binary.BigEndian.PutUint16(pkt[2:], p.seq)
	binary.BigEndian.PutUint32(pkt[4:], p.ts)
	binary.BigEndian.PutUint32(pkt[8:], p.snd.SSRC())
	if _, err := p.conn.WriteToUDP(pkt, p.to); err != nil {
		p.t.Fatal(err)
	}
	p.snd.OnSent(p.ts, 160, time.Now())
	p.seq++
	p.ts += 160
}

// sendReport sends an SR (or an RR when rr is set) after sleeping oneWay,
// which stands for the network delay of the path. It returns the time
// actually spent between building and sending: on a loaded machine a sleep
// can overshoot by far more than the tolerance.
func (p *peer) sendReport(rr bool, oneWay time.Duration) time.Duration {
	p.t.Helper()
	buf := make([]byte, MaxReportSize)
	var n int
	var err error
	if rr {
		n, err = BuildRR(buf, p.snd.SSRC(), p.rcv, time.Now())
	} else {
		n, err = BuildSR(buf, p.snd, p.rcv, time.Now())
	}
	if err != nil {
		p.t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(oneWay)
	delay := time.Since(start)
	if _, err := p.conn.WriteToUDP(buf[:n], p.to); err != nil {
		p.t.Fatal(err)
	}
	return delay
}

// receive reads one datagram and feeds it to the statistics: RTP (byte 1
// < 200) into the receiver, RTCP through ParseRTCP into both.
func (p *peer) receive() (rttMeasured bool) {
	p.t.Helper()
	buf := make([]byte, 1500)
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		p.t.Fatal(err)
	}
	now := time.Now()
	b := buf[:n]
	if b[1] < 200 {
		p.rcv.Update(binary.BigEndian.Uint16(b[2:]), binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:]), n-12, now)
		return false
	}
	c, err := ParseRTCP(b)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, si := range c.SenderReports {
		p.rcv.OnSR(si.SSRC, si.NTPTime, now)
	}
	for _, rb := range c.Reports {
		if _, ok := p.snd.OnReportBlock(rb, now); ok {
			rttMeasured = true
		}
	}
	return rttMeasured
}

// TestRTTOverUDP runs the PROTOCOL §14 report exchange between two
// instances over real sockets, with an artificial one-way delay before every
// report and a hold time at the far end that DLSR must cancel out: the
// measured RTT is the injected round trip, not the hold.
func TestRTTOverUDP(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	const (
		oneWay = 20 * time.Millisecond // injected per direction → RTT 40 ms
		hold   = 120 * time.Millisecond
	)
	a, b := newPeer(t, 0xa0a0a0a0), newPeer(t, 0xb0b0b0b0)
	a.to = b.conn.LocalAddr().(*net.UDPAddr)
	b.to = a.conn.LocalAddr().(*net.UDPAddr)

	// Media both ways so each side knows the other's SSRC.
	for range 5 {
		a.sendRTP()
		b.receive()
		b.sendRTP()
		a.receive()
	}
	if !a.rcv.Valid() || !b.rcv.Valid() || a.rcv.Packets() != 5 {
		t.Fatal("media exchange did not validate the sources")
	}

	// injected is the delay actually spent on both paths. Sleeps never
	// undershoot, so the RTT is at least the nominal 2·oneWay; beyond the
	// injected delay only loopback transit and scheduling between the
	// timestamps may add (a few ms even under load), while the far end's
	// hold time (120 ms) must be cancelled out by DLSR.
	check := func(who string, p *peer, injected time.Duration) {
		t.Helper()
		rtt, ok := p.snd.RTT()
		if !ok {
			t.Fatalf("%s: no RTT", who)
		}
		if rtt < 2*oneWay-time.Millisecond || rtt < injected-time.Millisecond || rtt > injected+5*time.Millisecond {
			t.Fatalf("%s: RTT %v, injected %v (nominal %v; hold %v must not count)", who, rtt, injected, 2*oneWay, hold)
		}
		t.Logf("%s: RTT %v for injected %v (nominal %v)", who, rtt, injected, 2*oneWay)
	}
	for round := range 3 {
		// A → SR → B; B holds, answers with an SR whose block echoes A's LSR.
		fwd := a.sendReport(false, oneWay)
		if b.receive() && round == 0 {
			t.Fatal("B measured an RTT before it sent any SR")
		}
		time.Sleep(hold)
		back := b.sendReport(false, oneWay)
		if !a.receive() {
			t.Fatalf("round %d: A's RTT not measured", round)
		}
		check("A (SR/SR)", a, fwd+back)

		// B's SR is now known to A: A answers with an RR, giving B its RTT.
		time.Sleep(hold)
		fwd = a.sendReport(true, oneWay)
		if !b.receive() {
			t.Fatalf("round %d: B's RTT not measured from RR", round)
		}
		check("B (SR/RR)", b, back+fwd)
	}
	if a.rcv.PacketsLost() != 0 || b.rcv.PacketsLost() != 0 {
		t.Fatal("loss on loopback")
	}
}
