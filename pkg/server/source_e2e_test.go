package server_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// Media-plane source security (PROTOCOL.md §0 D24, issue 10): a leg latches the first valid
// source and then takes media from nothing else; rtp_source_networks says who may latch.

// foreignPayload marks every packet an attacker sends, so a receiver can tell one apart.
var foreignPayload = bytes.Repeat([]byte{0xEE}, 160)

// listenOn opens a UDP socket on ip (any loopback address works on Linux: 127.0.0.0/8).
func listenOn(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendForeign sends n well-formed RTP packets with payload type pt from conn to to.
func sendForeign(t *testing.T, conn *net.UDPConn, to *net.UDPAddr, n int, pt uint8) {
	t.Helper()
	for i := 0; i < n; i++ {
		b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: uint16(7000 + i), Timestamp: uint32(i * 160), SSRC: 0xBAD0BAD}, Payload: foreignPayload}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteToUDP(b, to); err != nil {
			t.Fatal(err)
		}
	}
}

// endpointState reads one endpoint's state from session.info.
func endpointState(t *testing.T, c *testserver.Client, id string) string {
	t.Helper()
	info := c.SessionInfo()
	for _, e := range info.Endpoints {
		if e.EndpointID == id {
			return e.State
		}
	}
	t.Fatalf("endpoint %s not in session.info", id)
	return ""
}

// noEvent fails if the event arrives within d.
func noEvent(t *testing.T, c *testserver.Client, name string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-c.Messages:
			if m.Event == name {
				t.Fatalf("unexpected %s: %s", name, m.Raw)
			}
		case <-deadline:
			return
		}
	}
}

func TestForeignSourcesNeverReachACall(t *testing.T) {
	for _, tc := range []struct {
		name     string
		networks []string
		// outsider is an address that may not latch under networks ("" when any may).
		outsider string
	}{
		{"any source may latch", []string{"*"}, ""},
		{"only the SDP address", []string{}, "127.0.0.2"},
		{"operator networks", []string{"127.0.0.1/32", "192.0.2.0/24"}, "127.0.0.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.Start(t, func(c *config.Config) { c.RTPSourceNetworks = tc.networks }, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000") // the caller, SDP 127.0.0.1
			b := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
			aRTP := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mPort(t, a.sdp)}
			aRTCP := &net.UDPAddr{IP: aRTP.IP, Port: aRTP.Port + 1}
			rejected := 0.0

			// Before the latch, a source the policy does not trust cannot take the leg.
			if tc.outsider != "" {
				out := listenOn(t, tc.outsider)
				sendForeign(t, out, aRTP, 20, 0)
				rejected += 20
				srtpWaitMetric(t, srv, "rtpbridge_packets_rejected_total", rejected)
				b.peer.ExpectNone(200 * time.Millisecond)
				if st := endpointState(t, c, a.id); st != "new" {
					t.Fatalf("foreign packets moved the leg to %q", st)
				}
			}

			// The caller's first packet latches the leg.
			a.peer.Send(rtp.Header{PayloadType: 0, SequenceNumber: 1, Timestamp: 0, SSRC: 0xA}, rtppeer.Pattern(0, 160))
			if got := b.peer.Collect(1, wait); len(got) != 1 {
				t.Fatal("the caller's first packet was not routed")
			}

			// After it: another host and another port of the caller's own host are refused,
			// interleaved with the caller's stream, which loses nothing.
			otherHost := listenOn(t, "127.0.0.4")
			samehost := listenOn(t, "127.0.0.1")
			want := srtpPatterns(50)
			h := rtp.Header{PayloadType: 0, SequenceNumber: 2, Timestamp: 160, SSRC: 0xA}
			for i := range want {
				a.peer.Send(h, want[i])
				h.SequenceNumber++
				h.Timestamp += 160
				if i%5 == 0 {
					sendForeign(t, otherHost, aRTP, 2, 0)
					sendForeign(t, samehost, aRTP, 2, 0)
					rejected += 4
				}
			}
			got := b.peer.Collect(len(want), wait)
			if len(got) != len(want) {
				t.Fatalf("callee received %d packets, want %d", len(got), len(want))
			}
			for i, p := range got {
				if !bytes.Equal(p.Payload, want[i]) {
					t.Fatalf("packet %d is not the caller's (foreign: %v)", i, bytes.Equal(p.Payload, foreignPayload))
				}
			}
			b.peer.ExpectNone(200 * time.Millisecond)

			// The latched source with a payload type that was not negotiated: PCMA, and
			// telephone-event, which this offer did not include.
			sendForeign(t, a.peer.RTP, aRTP, 3, 8)
			sendForeign(t, a.peer.RTP, aRTP, 3, 101)
			rejected += 6
			srtpWaitMetric(t, srv, "rtpbridge_packets_rejected_total", rejected)
			b.peer.ExpectNone(200 * time.Millisecond)

			// RTCP: the caller's RTCP latches its port; a forged BYE from elsewhere, or from
			// another port of the caller's host, raises nothing.
			a.peer.SendRTCP(&rtcp.ReceiverReport{SSRC: 0xA})
			time.Sleep(50 * time.Millisecond)
			forge := func(conn *net.UDPConn) {
				bye, err := rtcp.Marshal([]rtcp.Packet{&rtcp.Goodbye{Sources: []uint32{0xA}, Reason: "forged"}})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := conn.WriteToUDP(bye, aRTCP); err != nil {
					t.Fatal(err)
				}
			}
			forge(otherHost)
			forge(samehost)
			rejected += 2
			srtpWaitMetric(t, srv, "rtpbridge_packets_rejected_total", rejected)
			noEvent(t, c, protocol.EventRTCPBye, 300*time.Millisecond)
			// The caller's own BYE still comes through.
			a.peer.SendRTCP(&rtcp.Goodbye{Sources: []uint32{0xA}, Reason: "bye"})
			ev := c.WaitEvent(protocol.EventRTCPBye, wait)
			var bye struct {
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal(ev.Data, &bye); err != nil || bye.Reason != "bye" {
				t.Fatalf("rtcp_bye %s", ev.Raw)
			}
			if v := srv.MetricValue(t, "rtpbridge_packets_invalid_total"); v != 0 {
				t.Errorf("rtpbridge_packets_invalid_total = %v: well-formed packets counted as garbage", v)
			}
		})
	}
}

// floodPortBase is the flood test's rtp_port_range: below Linux's ephemeral range (32768-60999),
// where the peers' own sockets and other tests' servers live, so spraying it hits nothing else.
const floodPortBase = 24000

// TestFloodDoesNotReachCalls reproduces issue 10's finding at a bounded scale: calls carry
// paced media while a flooder sprays every port of rtp_port_range from two hosts with garbage,
// truncated headers, well-formed RTP with foreign SSRCs, forged RTCP BYEs, STUN and DTLS
// look-alikes and oversized datagrams. No foreign packet may reach a call and no call may lose
// media.
func TestFloodDoesNotReachCalls(t *testing.T) {
	const (
		calls   = 10
		packets = 150 // 3 s of 20 ms media per direction
		ports   = 200
	)
	srv := testserver.Start(t, func(c *config.Config) {
		c.RTPPortRange = [2]int{floodPortBase, floodPortBase + ports - 1}
	}, server.Tuning{})

	type call struct {
		c    *testserver.Client
		legs [2]*leg
	}
	var cs []call
	for i := 0; i < calls; i++ {
		cl := testserver.Dial(t, srv)
		cl.CreateSession()
		cs = append(cs, call{c: cl, legs: [2]*leg{
			legFromOffer(t, cl, "sendrecv", "0 PCMU/8000"),
			legFromOffer(t, cl, "sendrecv", "0 PCMU/8000"),
		}})
	}
	// Each packet carries its call, leg and sequence number.
	payload := func(callIdx, legIdx, seq int) []byte {
		p := make([]byte, 160)
		p[0], p[1], p[2] = 0x55, byte(callIdx), byte(legIdx)
		binary.BigEndian.PutUint16(p[3:], uint16(seq))
		return p
	}
	// Every leg latches its RTP and RTCP before the flood starts (the flood then cannot win the
	// first tuple; one flooder shares the peers' host, as a NAT'ed neighbour would).
	for i, cl := range cs {
		for j, l := range cl.legs {
			l.peer.Send(rtp.Header{PayloadType: 0, SequenceNumber: 0, SSRC: uint32(i<<8 | j)}, payload(i, j, 0))
			l.peer.SendRTCP(&rtcp.ReceiverReport{SSRC: uint32(i<<8 | j)})
		}
	}
	for _, cl := range cs {
		for j, l := range cl.legs {
			if got := l.peer.Collect(1, wait); len(got) != 1 {
				t.Fatalf("priming packet to leg %d not delivered", j)
			}
		}
	}

	stop := make(chan struct{})
	var flooded atomic.Int64
	var floodWG sync.WaitGroup
	for _, ip := range []string{"127.0.0.1", "127.0.0.9"} {
		conn := listenOn(t, ip)
		floodWG.Add(1)
		go func(conn *net.UDPConn) {
			defer floodWG.Done()
			rng := rand.New(rand.NewPCG(uint64(len(ip)), 1))
			buf := make([]byte, 1600)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var b []byte
				switch n % 7 {
				case 0: // random bytes
					b = buf[:1+rng.IntN(300)]
					for i := range b {
						b[i] = byte(rng.Uint32())
					}
				case 1: // truncated RTP header
					b = append(buf[:0], 0x80, 0x00, 0x01)
				case 2, 3: // well-formed RTP, negotiated payload type, foreign SSRC
					pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(n), Timestamp: uint32(n) * 160, SSRC: rng.Uint32()}, Payload: foreignPayload}
					b, _ = pkt.Marshal()
				case 4: // forged RTCP BYE
					b, _ = rtcp.Marshal([]rtcp.Packet{&rtcp.Goodbye{Sources: []uint32{rng.Uint32()}}})
				case 5: // STUN binding request, DTLS record
					if n%2 == 0 {
						b = append(buf[:0], 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42)
						b = append(b, make([]byte, 12)...)
					} else {
						b = append(buf[:0], 22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
					}
				default: // oversized
					b = buf[:1600]
					b[0] = 0x80
				}
				port := floodPortBase + n%ports
				if _, err := conn.WriteToUDP(b, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err == nil {
					flooded.Add(1)
				}
				if n%50 == 49 {
					time.Sleep(5 * time.Millisecond) // about 10,000 datagrams/s per flooder: bounded
				}
			}
		}(conn)
	}

	// Media both ways on every call, paced at 20 ms, while the flood runs.
	var mediaWG sync.WaitGroup
	sendErrs := make(chan error, 2*calls)
	for i, cl := range cs {
		for j, l := range cl.legs {
			mediaWG.Add(1)
			go func(i, j int, l *leg) {
				defer mediaWG.Done()
				to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mPort(t, l.sdp)}
				start := time.Now()
				for s := 1; s <= packets; s++ {
					b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(s), Timestamp: uint32(s) * 160, SSRC: uint32(i<<8 | j)}, Payload: payload(i, j, s)}).Marshal()
					if _, err := l.peer.RTP.WriteToUDP(b, to); err != nil {
						sendErrs <- err
						return
					}
					time.Sleep(time.Until(start.Add(time.Duration(s) * 20 * time.Millisecond)))
				}
			}(i, j, l)
		}
	}
	mediaWG.Wait()
	close(stop)
	floodWG.Wait()
	close(sendErrs)
	for err := range sendErrs {
		t.Fatalf("media send: %v", err)
	}

	foreign, lost := 0, 0
	for i, cl := range cs {
		for j, l := range cl.legs {
			from := 1 - j // each leg receives its partner's media
			seen := make(map[int]bool)
			for _, p := range l.peer.Collect(packets, 2*wait) {
				if bytes.Equal(p.Payload, foreignPayload) || p.Payload[0] != 0x55 || int(p.Payload[1]) != i || int(p.Payload[2]) != from {
					foreign++
					continue
				}
				seen[int(binary.BigEndian.Uint16(p.Payload[3:]))] = true
			}
			lost += packets - len(seen)
			for _, p := range l.peer.Collect(100, 200*time.Millisecond) { // anything beyond
				if bytes.Equal(p.Payload, foreignPayload) {
					foreign++
				}
			}
		}
	}
	rejected := srv.MetricValue(t, "rtpbridge_packets_rejected_total")
	invalid := srv.MetricValue(t, "rtpbridge_packets_invalid_total")
	t.Logf("flood: %d datagrams over %d ports during %d calls × 2 × %d packets; rejected %v, invalid %v; foreign delivered %d, media lost %d",
		flooded.Load(), ports, calls, packets, rejected, invalid, foreign, lost)
	if foreign != 0 {
		t.Errorf("%d foreign packets reached calls", foreign)
	}
	if lost != 0 {
		t.Errorf("%d media packets lost under the flood", lost)
	}
	if rejected == 0 || invalid == 0 {
		t.Errorf("flood not counted: rejected %v, invalid %v", rejected, invalid)
	}
	for _, cl := range cs {
		noEvent(t, cl.c, protocol.EventRTCPBye, 10*time.Millisecond)
	}
}

// STUN and DTLS look-alikes on a plain RTP leg, which never speaks either, are counted in
// rtpbridge_packets_invalid_total like every other malformed datagram, on both ports (issue 18).
func TestSTUNAndDTLSOnPlainLegAreCounted(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	b := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	stun := append([]byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42}, make([]byte, 12)...)
	dtls := []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01}
	rtpPort := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mPort(t, a.sdp)}
	rtcpPort := &net.UDPAddr{IP: rtpPort.IP, Port: rtpPort.Port + 1}
	const each = 25
	for i := 0; i < each; i++ {
		for _, to := range []*net.UDPAddr{rtpPort, rtcpPort} {
			for _, d := range [][]byte{stun, dtls} {
				if _, err := a.peer.RTP.WriteToUDP(d, to); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	srtpWaitMetric(t, srv, "rtpbridge_packets_invalid_total", 4*each)
	b.peer.ExpectNone(100 * time.Millisecond)
	if v := srv.MetricValue(t, "rtpbridge_packets_rejected_total"); v != 0 {
		t.Errorf("rtpbridge_packets_rejected_total = %v, want 0", v)
	}
}
