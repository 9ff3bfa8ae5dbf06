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

func newRoutingFixture(tb testing.TB) *routingFixture {
	tb.Helper()
	ports, err := rtpnet.NewPortAllocator(netip.MustParseAddr("127.0.0.1"), 32000, 32999)
	if err != nil {
		tb.Fatal(err)
	}
	mgr := NewManager(Options{Media: MediaOptions{Ports: ports, MediaTimeout: time.Minute}},
		slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New())
	s := newSession(mgr, nil)
	f := &routingFixture{s: s}
	peerA, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	f.peerB, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { peerA.Close(); f.peerB.Close(); s.media.close() })
	// peerB drains what it is sent so its socket buffer never fills.
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := f.peerB.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()
	mk := func(peer *net.UDPConn) *endpoint.RTP {
		ep, err := endpoint.NewRTP(uuid.New(), endpoint.SendRecv, ports, time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
			"m=audio " + strconv.Itoa(peer.LocalAddr().(*net.UDPAddr).Port) + " RTP/AVP 0\r\n"
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
	f.a, f.b = mk(peerA), mk(f.peerB)
	f.src = peerA.LocalAddr().(*net.UDPAddr).AddrPort()
	f.packet, _ = (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 42}, Payload: make([]byte, 160)}).Marshal()
	return f
}

// inject hands one packet to the session's packet path as a reader would.
func (f *routingFixture) inject(seq uint16) {
	d := f.a.Acquire()
	d.N = copy(d.Buf[:], f.packet)
	d.Buf[2], d.Buf[3] = byte(seq>>8), byte(seq)
	d.Src, d.At, d.RTCPSocket = f.src, time.Now(), false
	f.s.media.handlePacket(d)
}

func TestRoutingPathDoesNotAllocate(t *testing.T) {
	f := newRoutingFixture(t)
	var seq uint16
	for i := 0; i < 10; i++ { // warm up: state change event, first-packet bookkeeping
		seq++
		f.inject(seq)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		f.inject(seq)
	})
	if allocs != 0 {
		t.Fatalf("routing path allocates %.1f times per packet", allocs)
	}
	if got := f.b.Sender().Packets(); got < 1000 {
		t.Fatalf("destination sent %d packets", got)
	}
}

// BenchmarkRoutePacket measures the session's per-packet path for a two-party PCMU call:
// classify, parse, statistics, learning, rewrite and one UDP send.
func BenchmarkRoutePacket(b *testing.B) {
	f := newRoutingFixture(b)
	b.ReportAllocs()
	var seq uint16
	for b.Loop() {
		seq++
		f.inject(seq)
	}
}
