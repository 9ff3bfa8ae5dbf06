// Package rtppeer is a plain RTP endpoint for tests: a real UDP socket pair on 127.0.0.1 that
// writes SDP offers and answers the way a SIP phone would, sends RTP and RTCP, and collects what
// it receives. It deliberately shares no code with rtpbridge's own RTP stack.
package rtppeer

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Packet is a received RTP packet.
type Packet struct {
	Header  rtp.Header
	Payload []byte
	From    *net.UDPAddr
	At      time.Time
}

// Peer is a test RTP endpoint.
type Peer struct {
	t       testing.TB
	RTP     *net.UDPConn
	RTCP    *net.UDPConn
	Packets chan Packet
	RTCPIn  chan []rtcp.Packet

	mu     sync.Mutex
	remote *net.UDPAddr // where RTP goes
	rtcpTo *net.UDPAddr
	done   chan struct{}
}

// New opens an even/odd socket pair on 127.0.0.1; both close when the test ends.
func New(t testing.TB) *Peer {
	t.Helper()
	r, c := ListenPair(t)
	p := &Peer{t: t, RTP: r, RTCP: c, Packets: make(chan Packet, 4096), RTCPIn: make(chan []rtcp.Packet, 256), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.readRTP() }()
	go func() { defer wg.Done(); p.readRTCP(c) }()
	t.Cleanup(func() { r.Close(); c.Close(); wg.Wait() })
	return p
}

// ListenPair binds an even UDP port chosen by the system and the next odd one on 127.0.0.1,
// the way a SIP phone lays out RTP and RTCP. The caller closes them.
func ListenPair(t testing.TB) (rtpConn, rtcpConn *net.UDPConn) {
	t.Helper()
	for range 200 {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port >= 65535 {
			c.Close()
			continue
		}
		c2, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		if err != nil {
			c.Close()
			continue
		}
		return c, c2
	}
	t.Fatal("no free even/odd UDP port pair on 127.0.0.1")
	return nil, nil
}

// Port is the RTP port.
func (p *Peer) Port() int { return p.RTP.LocalAddr().(*net.UDPAddr).Port }

func (p *Peer) readRTP() {
	buf := make([]byte, 2048)
	for {
		n, from, err := p.RTP.ReadFromUDP(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		if n >= 2 && b[1] >= 200 && b[1] <= 204 { // muxed RTCP
			if pkts, err := rtcp.Unmarshal(append([]byte(nil), b...)); err == nil {
				p.pushRTCP(pkts)
			}
			continue
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(append([]byte(nil), b...)); err != nil {
			continue
		}
		select {
		case p.Packets <- Packet{Header: pkt.Header, Payload: pkt.Payload, From: from, At: time.Now()}:
		default:
		}
	}
}

func (p *Peer) readRTCP(c *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if pkts, err := rtcp.Unmarshal(append([]byte(nil), buf[:n]...)); err == nil {
			p.pushRTCP(pkts)
		}
	}
}

func (p *Peer) pushRTCP(pkts []rtcp.Packet) {
	select {
	case p.RTCPIn <- pkts:
	default:
	}
}

// Offer writes a SIP-phone style RTP/AVP offer: the codecs as "PT name/clock" pairs, e.g.
// Offer("0 PCMU/8000", "101 telephone-event/8000"). extra lines (a=…) are appended.
func (p *Peer) Offer(formats []string, extra ...string) string {
	return SDP(p.Port(), "RTP/AVP", formats, extra...)
}

// Answer answers rtpbridge's offer with the given formats (the peer's choice).
func (p *Peer) Answer(formats []string, extra ...string) string {
	return SDP(p.Port(), "RTP/AVP", formats, extra...)
}

// SDP writes a SIP-phone style SDP with one audio section on 127.0.0.1:port with the given
// transport profile and formats ("PT name/clock"; telephone-event gets its 0-16 fmtp), ptime 20,
// sendrecv, then the extra lines.
func SDP(port int, profile string, formats []string, extra ...string) string {
	var pts, maps []string
	for _, f := range formats {
		pt, name, _ := strings.Cut(f, " ")
		pts = append(pts, pt)
		maps = append(maps, "a=rtpmap:"+pt+" "+name)
		if strings.HasPrefix(name, "telephone-event") {
			maps = append(maps, "a=fmtp:"+pt+" 0-16")
		}
	}
	lines := []string{
		"v=0",
		"o=peer 1 1 IN IP4 127.0.0.1",
		"s=-",
		"c=IN IP4 127.0.0.1",
		"t=0 0",
		fmt.Sprintf("m=audio %d %s %s", port, profile, strings.Join(pts, " ")),
	}
	lines = append(lines, maps...)
	lines = append(lines, "a=ptime:20", "a=sendrecv")
	lines = append(lines, extra...)
	return strings.Join(lines, "\r\n") + "\r\n"
}

// SetRemote sets where RTP goes (RTCP goes to port+1 unless mux is set).
func (p *Peer) SetRemote(port int, mux bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.remote = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	rp := port + 1
	if mux {
		rp = port
	}
	p.rtcpTo = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: rp}
}

// RemoteFromSDP points the peer at the m= port of rtpbridge's SDP.
func (p *Peer) RemoteFromSDP(sdp string, mux bool) {
	p.t.Helper()
	for _, line := range strings.Split(sdp, "\r\n") {
		if strings.HasPrefix(line, "m=audio ") {
			var port int
			if _, err := fmt.Sscanf(line, "m=audio %d", &port); err != nil {
				p.t.Fatalf("bad m= line %q", line)
			}
			p.SetRemote(port, mux)
			return
		}
	}
	p.t.Fatalf("no m=audio in %q", sdp)
}

// Send sends one RTP packet from the RTP socket.
func (p *Peer) Send(h rtp.Header, payload []byte) {
	p.t.Helper()
	p.SendFrom(p.RTP, h, payload)
}

// SendFrom sends one RTP packet from the given socket (to test symmetric RTP).
func (p *Peer) SendFrom(conn *net.UDPConn, h rtp.Header, payload []byte) {
	p.t.Helper()
	h.Version = 2
	b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		p.t.Fatalf("marshal rtp: %v", err)
	}
	p.mu.Lock()
	to := p.remote
	p.mu.Unlock()
	if _, err := conn.WriteToUDP(b, to); err != nil {
		p.t.Fatalf("send rtp: %v", err)
	}
}

// SendRaw sends raw bytes to the RTP port of the remote.
func (p *Peer) SendRaw(b []byte) {
	p.t.Helper()
	p.mu.Lock()
	to := p.remote
	p.mu.Unlock()
	if _, err := p.RTP.WriteToUDP(b, to); err != nil {
		p.t.Fatalf("send raw: %v", err)
	}
}

// SendRTCP sends an RTCP compound to the remote's RTCP port from the odd socket.
func (p *Peer) SendRTCP(pkts ...rtcp.Packet) {
	p.t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		p.t.Fatalf("marshal rtcp: %v", err)
	}
	p.mu.Lock()
	to := p.rtcpTo
	p.mu.Unlock()
	if _, err := p.RTCP.WriteToUDP(b, to); err != nil {
		p.t.Fatalf("send rtcp: %v", err)
	}
}

// Stream sends n packets of payloads produced by gen at 20 ms intervals (paced by the wall
// clock unless fast), with sequence, timestamp and SSRC continuing from h.
func (p *Peer) Stream(h rtp.Header, n int, tsStep uint32, fast bool, gen func(i int) []byte) rtp.Header {
	p.t.Helper()
	start := time.Now()
	for i := 0; i < n; i++ {
		p.Send(h, gen(i))
		h.SequenceNumber++
		h.Timestamp += tsStep
		h.Marker = false
		if !fast {
			if d := time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond)); d > 0 {
				time.Sleep(d)
			}
		}
	}
	return h
}

// Collect gathers received RTP packets until n have arrived or timeout passes.
func (p *Peer) Collect(n int, timeout time.Duration) []Packet {
	return Receive(p.Packets, n, timeout)
}

// Receive gathers values from ch until n have arrived or timeout passes.
func Receive[T any](ch <-chan T, n int, timeout time.Duration) []T {
	var out []T
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-deadline:
			return out
		}
	}
	return out
}

// Drain discards whatever has been received so far.
func (p *Peer) Drain() {
	for {
		select {
		case <-p.Packets:
		default:
			return
		}
	}
}

// ExpectNone fails if any RTP packet arrives within d.
func (p *Peer) ExpectNone(d time.Duration) {
	p.t.Helper()
	select {
	case pkt := <-p.Packets:
		p.t.Fatalf("unexpected RTP packet: PT %d seq %d", pkt.Header.PayloadType, pkt.Header.SequenceNumber)
	case <-time.After(d):
	}
}

// NTPMiddle is the middle 32 bits of an NTP timestamp (the LSR field of RFC 3550 §6.4.1).
func NTPMiddle(ntp uint64) uint32 { return uint32(ntp >> 16) }

// Pattern is a payload whose bytes identify packet i, for byte-exact checks.
func Pattern(i, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, uint32(i))
	for j := 4; j < size; j++ {
		b[j] = byte(i*7 + j)
	}
	return b
}
