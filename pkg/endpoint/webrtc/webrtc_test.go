package webrtc

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/internal/webrtcpeer"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
	"github.com/rtpbridge/rtpbridge/pkg/sdp"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// testPorts is a one-port pool on a port the system just handed out as free, so tests never
// walk into port ranges that other packages' tests use at the same time.
func testPorts(t *testing.T) *Ports {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	p, err := NewPorts(loopback, &[2]int{port, port}, [2]int{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sink is a session stand-in: it hands packets straight to Receive (under its lock, as the
// session does) and runs posted functions at once.
type sink struct {
	mu      sync.Mutex
	in      endpoint.Inbound
	media   int
	rtcp    int
	states  []endpoint.State
	payload [][]byte
}

func (s *sink) Packet(from endpoint.Leg, b []byte, src netip.AddrPort, at time.Time, rtcp bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from.RTP().Receive(b, src, at, rtcp, &s.in)
	switch s.in.Kind {
	case endpoint.InboundMedia:
		s.media++
		s.payload = append(s.payload, append([]byte(nil), s.in.Payload...))
	case endpoint.InboundRTCP:
		s.rtcp++
	}
}

func (s *sink) Post(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn()
	return true
}

func (s *sink) Emit(string, any) {}

func (s *sink) SetState(from endpoint.Leg, st endpoint.State) {
	if _, changed := from.SetState(st); changed {
		s.states = append(s.states, st)
	}
}

// locked runs fn as the session would: under its lock.
func (s *sink) locked(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn()
}

func (s *sink) snapshot() (media, rtcp int, states []endpoint.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.media, s.rtcp, append([]endpoint.State(nil), s.states...)
}

// connected answers a pion client's offer with a new endpoint and waits until both sides are up.
func connected(t *testing.T, codecs ...webrtcpeer.Codec) (*Endpoint, *sink, *webrtcpeer.Peer) {
	t.Helper()
	e, err := New(uuid.New(), endpoint.SendRecv, Options{Ports: testPorts(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	wp := webrtcpeer.New(t, codecs...)
	answer, err := e.AnswerOffer([]byte(wp.Offer()), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	if err := e.Start(nil, s); err != nil {
		t.Fatal(err)
	}
	wp.SetAnswer(string(answer))
	if err := wp.WaitState(pion.PeerConnectionStateConnected, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var up bool
		s.locked(func() { up = e.CanSend() && e.State() == endpoint.StateConnected })
		if up {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("endpoint not connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e, s, wp
}

func TestAnswerAndMediaBothWays(t *testing.T) {
	e, s, wp := connected(t, webrtcpeer.Opus)
	if _, _, states := s.snapshot(); len(states) != 1 || states[0] != endpoint.StateConnected {
		t.Fatalf("state changes %v, want [connected]", states)
	}
	var neg sdp.Negotiated
	var ok bool
	s.locked(func() { neg, ok = e.Negotiated() })
	if !ok || neg.Codec != "opus" || neg.PayloadType != 111 || neg.TelephoneEventPT != 101 || neg.TelephoneEventClock != 48000 {
		t.Fatalf("negotiated %+v", neg)
	}
	// Client → endpoint.
	go wp.Stream(rtp.Header{SequenceNumber: 1, Timestamp: 1, SSRC: 7}, 960, 5*time.Millisecond, make([][]byte, 20))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if media, _, _ := s.snapshot(); media >= 20 {
			break
		}
		if time.Now().After(deadline) {
			media, _, _ := s.snapshot()
			t.Fatalf("endpoint received %d of 20 packets", media)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Endpoint → client, on the SSRC its SDP announced.
	s.locked(func() {
		for i := range 10 {
			h := rtpnet.RTPHeader{PayloadType: 111, SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}
			if n, err := e.SendRTP(&h, []byte{0xf8, 0xff, 0xfe}, time.Now()); err != nil || n != 3 {
				t.Fatalf("SendRTP: %d, %v", n, err)
			}
		}
	})
	got := wp.Collect(10, time.Second, 5*time.Second)
	if len(got) != 10 {
		t.Fatalf("client received %d of 10 packets", len(got))
	}
	s.locked(func() {
		if got[0].Header.SSRC != e.Out().SSRC() || got[0].Header.PayloadType != 111 {
			t.Errorf("client got SSRC %d PT %d, want %d and 111", got[0].Header.SSRC, got[0].Header.PayloadType, e.Out().SSRC())
		}
		if e.Sender().Packets() != 10 || e.Receiver().Packets() < 20 {
			t.Errorf("stats: sent %d, received %d", e.Sender().Packets(), e.Receiver().Packets())
		}
	})
}

// The media path allocates nothing per packet in steady state: SendRTP through pion's SRTP
// writer, and Receive of a decrypted packet.
func TestMediaPathAllocatesNothing(t *testing.T) {
	e, s, _ := connected(t, webrtcpeer.Opus)
	s.mu.Lock() // the session's lock, held for the whole measurement
	defer s.mu.Unlock()
	payload := make([]byte, 80)
	seq := uint16(0)
	send := func() {
		seq++
		h := rtpnet.RTPHeader{PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960}
		if _, err := e.SendRTP(&h, payload, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		send()
	}
	if a := testing.AllocsPerRun(200, send); a > 0 {
		t.Errorf("SendRTP: %.1f allocations per packet", a)
	}
	pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: 9}, Payload: payload}).Marshal()
	var in endpoint.Inbound
	now := time.Now()
	recv := func() {
		pkt[3]++ // next sequence number
		e.Receive(pkt, netip.AddrPort{}, now, false, &in)
		if in.Kind != endpoint.InboundMedia {
			t.Fatalf("Receive: %+v", in)
		}
	}
	if a := testing.AllocsPerRun(200, recv); a > 0 {
		t.Errorf("Receive: %.1f allocations per packet", a)
	}
}

func TestReceiveRejectsUnnegotiatedPT(t *testing.T) {
	e, s, _ := connected(t, webrtcpeer.Opus)
	s.mu.Lock()
	defer s.mu.Unlock()
	var in endpoint.Inbound
	for pt, want := range map[uint8]bool{111: true, 101: true, 0: false, 96: false} {
		pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SSRC: 9}, Payload: []byte{1}}).Marshal()
		e.Receive(pkt, netip.AddrPort{}, time.Now(), false, &in)
		if got := in.Kind == endpoint.InboundMedia; got != want || in.Rejected == want {
			t.Errorf("PT %d: %+v, want accepted %v", pt, in, want)
		}
		if pt == 101 && !in.DTMF {
			t.Errorf("PT 101 is telephone-event: %+v", in)
		}
	}
	e.Receive([]byte{0x80}, netip.AddrPort{}, time.Now(), false, &in)
	if !in.Invalid {
		t.Errorf("a 1-byte datagram: %+v", in)
	}
}

func TestCloseReleasesSocket(t *testing.T) {
	ports := testPorts(t)
	e, err := New(uuid.New(), endpoint.SendRecv, Options{Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	port := e.Port()
	if _, err := e.CreateOffer(nil); err != nil {
		t.Fatal(err)
	}
	e.Close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatalf("port %d still bound after Close: %v", port, err)
	}
	c.Close()
}

func TestPortsExhausted(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	p, err := NewPorts(loopback, &[2]int{port, port}, [2]int{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = p.Listen()
	if want := "No available WebRTC port in range"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("second Listen: %v, want %q", err, want)
	}
	// Unset webrtc_port_range: rtp_port_range, walked from the top.
	p, err = NewPorts(loopback, nil, [2]int{port - 10, port + 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.next(); got != port+1 {
		t.Fatalf("first port from rtp_port_range %d, want its top %d", got, port+1)
	}
}

func TestUnwrapAnswer(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"v=0\r\n", "v=0\r\n", ""},
		{`{"type":"answer","sdp":"v=0\r\n"}`, "v=0\r\n", ""},
		{` {"type":"offer","sdp":"v=0"}`, "", `expected "answer"`},
		{`{"sdp":"v=0"}`, "", "type none"},
		{`{"type":"answer"}`, "", "no sdp"},
		{`{"type":`, "", "does not parse"},
	} {
		got, err := unwrapAnswer([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want error %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("%q: %q, %v", tc.in, got, err)
		}
	}
}
