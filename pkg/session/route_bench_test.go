package session

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/metrics"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
	"github.com/rtpbridge/rtpbridge/pkg/sdp"
)

// routingFixture is a session (without its loop) with two PCMU legs whose far ends are UDP
// sockets on 127.0.0.1, so the packet path can be driven directly.
type routingFixture struct {
	s      *Session
	a, b   *endpoint.RTP
	peerB  *net.UDPConn
	packet []byte
	src    netip.AddrPort
}

// newRoutingFixture builds a PCMU source leg a and a destination leg b whose codec is given as
// the m= line's format list plus its rtpmap lines; with mix, a third PCMU leg also feeds b, so b
// is served by a mixer.
func newRoutingFixture(tb testing.TB, dstFormat string, mix bool) *routingFixture {
	tb.Helper()
	ports, err := rtpnet.NewPortAllocator(netip.MustParseAddr("127.0.0.1"), 32000, 32999)
	if err != nil {
		tb.Fatal(err)
	}
	mgr := NewManager(Options{InbandDTMF: "off", Media: MediaOptions{Ports: ports, MediaTimeout: time.Minute}},
		slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New())
	s := newSession(mgr, nil)
	s.media.scratch.Borrow() // the fixture plays the session's lock holder throughout
	f := &routingFixture{s: s}
	peerA, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	f.peerB, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { peerA.Close(); f.peerB.Close(); s.media.close(); mgr.Close() })
	// peerB drains what it is sent so its socket buffer never fills.
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := f.peerB.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	mk := func(peer *net.UDPConn, format string) *endpoint.RTP {
		return addFixtureLeg(tb, s, ports, endpoint.SendRecv, peer, format)
	}
	f.a, f.b = mk(peerA, "0"), mk(f.peerB, dstFormat)
	if mix {
		mk(peerA, "0")
	}
	f.src = peerA.LocalAddr().(*net.UDPAddr).AddrPort()
	f.packet, _ = (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 42}, Payload: make([]byte, 160)}).Marshal()
	return f
}

// addFixtureLeg adds to s a plain RTP leg answering an offer from peer with format (the m=
// line's format list plus rtpmap lines).
func addFixtureLeg(tb testing.TB, s *Session, ports *rtpnet.PortAllocator, dir endpoint.Direction, peer *net.UDPConn, format string) *endpoint.RTP {
	tb.Helper()
	ep, err := endpoint.NewRTP(uuid.New(), dir, ports, nil, &s.media.scratch, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strconv.Itoa(peer.LocalAddr().(*net.UDPAddr).Port) + " RTP/AVP " + format + "\r\n"
	d, err := sdp.Parse([]byte(offer))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := ep.AnswerOffer(d, nil); err != nil {
		tb.Fatal(err)
	}
	s.media.add(ep, time.Now())
	return ep
}

// newClockFixture is a session (without its loop) where a 48 kHz PCM tone leg feeds one RTP
// leg of dstFormat whose far end is a UDP socket on 127.0.0.1.
func newClockFixture(tb testing.TB, dstFormat string) (*Session, *endpoint.RTP) {
	tb.Helper()
	ports, err := rtpnet.NewPortAllocator(netip.MustParseAddr("127.0.0.1"), 33000, 33999)
	if err != nil {
		tb.Fatal(err)
	}
	mgr := NewManager(Options{InbandDTMF: "off", Media: MediaOptions{Ports: ports, MediaTimeout: time.Minute}},
		slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New())
	s := newSession(mgr, nil)
	// The fixture holds the session's lock throughout, as the loop would while producing
	// frames: the session's clock shard then only ever finds it busy.
	s.lock()
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { peer.Close(); s.media.close(); s.unlock(); mgr.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := peer.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	dst := addFixtureLeg(tb, s, ports, endpoint.RecvOnly, peer, dstFormat)
	s.media.add(newToneLeg(endpoint.SendOnly, 48000, 1000), time.Now())
	return s, dst
}

// inject hands one packet to the session's packet path as a reader would.
func (f *routingFixture) inject(seq uint16) {
	f.packet[2], f.packet[3] = byte(seq>>8), byte(seq)
	f.s.media.handlePacket(f.a, f.packet, f.src, time.Now(), false)
}

// routeCases are the session's three ways to serve a destination.
var routeCases = []struct {
	name, format string
	mix          bool
}{
	{"passthrough", "0", false},
	{"transcode-G722", "9", false},
	{"transcode-opus", "111\r\na=rtpmap:111 opus/48000/2", false},
	{"mix-PCMU", "0", true},
}

func TestRoutingPathDoesNotAllocate(t *testing.T) {
	for _, tc := range routeCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newRoutingFixture(t, tc.format, tc.mix)
			var seq uint16
			for i := 0; i < 50; i++ { // warm up: state change event, first-packet bookkeeping, codec buffers
				seq++
				f.inject(seq)
			}
			allocs := testing.AllocsPerRun(500, func() {
				seq++
				f.inject(seq)
			})
			if allocs != 0 {
				t.Fatalf("routing path allocates %.1f times per packet", allocs)
			}
			if got := f.b.Sender().Packets(); got < 500 {
				t.Fatalf("destination sent %d packets", got)
			}
		})
	}
}

// The media clock's frame path — a PCM leg's frame resampled and encoded for an RTP leg —
// allocates nothing in steady state.
func TestClockFrameDoesNotAllocate(t *testing.T) {
	for _, tc := range routeCases[1:3] {
		t.Run(tc.name, func(t *testing.T) {
			s, dst := newClockFixture(t, tc.format)
			for i := 0; i < 50; i++ {
				s.media.produceFrame(time.Now())
			}
			allocs := testing.AllocsPerRun(300, func() { s.media.produceFrame(time.Now()) })
			if allocs != 0 {
				t.Fatalf("clock frame path allocates %.1f times per frame", allocs)
			}
			if got := dst.Sender().Packets(); got < 300 {
				t.Fatalf("destination sent %d packets", got)
			}
		})
	}
}

// BenchmarkClockFrame measures one 20 ms frame of a 48 kHz PCM leg (file, tone, bridge) routed
// to an RTP leg: resampling, encoding and one UDP send.
func BenchmarkClockFrame(b *testing.B) {
	for _, tc := range append([]struct{ name, format string }{{"PCMU", "0"}}, struct{ name, format string }{"G722", "9"}, struct{ name, format string }{"opus", "111\r\na=rtpmap:111 opus/48000/2"}) {
		b.Run(tc.name, func(b *testing.B) {
			s, _ := newClockFixture(b, tc.format)
			b.ReportAllocs()
			for b.Loop() {
				s.media.produceFrame(time.Now())
			}
		})
	}
}

// BenchmarkRoutePacket measures the session's per-packet path from a PCMU leg: classify, parse,
// statistics, learning, then passthrough rewrite, a transcoding pipeline or a mixer, and one UDP
// send.
func BenchmarkRoutePacket(b *testing.B) {
	for _, tc := range routeCases {
		b.Run(tc.name, func(b *testing.B) {
			f := newRoutingFixture(b, tc.format, tc.mix)
			b.ReportAllocs()
			var seq uint16
			for b.Loop() {
				seq++
				f.inject(seq)
			}
		})
	}
}
