package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"
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

// leg is an rtpbridge endpoint with the test peer on its far side.
type leg struct {
	id   string
	sdp  string // rtpbridge's offer or answer
	peer *rtppeer.Peer
}

// legFromOffer: the peer offers, rtpbridge answers (endpoint.create_from_offer).
func legFromOffer(t *testing.T, c *testserver.Client, direction string, formats ...string) *leg {
	t.Helper()
	peer := rtppeer.New(t)
	var res struct {
		EndpointID string `json:"endpoint_id"`
		SDPAnswer  string `json:"sdp_answer"`
	}
	c.MustCall("endpoint.create_from_offer", map[string]any{"sdp": peer.Offer(formats), "direction": direction}, &res)
	peer.RemoteFromSDP(res.SDPAnswer, false)
	return &leg{id: res.EndpointID, sdp: res.SDPAnswer, peer: peer}
}

// legFromOwnOffer: rtpbridge offers, the peer answers (endpoint.create_offer + accept_answer).
func legFromOwnOffer(t *testing.T, c *testserver.Client, direction string, codecs []string, answer ...string) *leg {
	t.Helper()
	peer := rtppeer.New(t)
	var res struct {
		EndpointID string `json:"endpoint_id"`
		SDPOffer   string `json:"sdp_offer"`
	}
	c.MustCall("endpoint.create_offer", map[string]any{"type": "rtp", "direction": direction, "codecs": codecs}, &res)
	peer.RemoteFromSDP(res.SDPOffer, false)
	c.MustCall("endpoint.accept_answer", map[string]any{"endpoint_id": res.EndpointID, "sdp": peer.Answer(answer)}, nil)
	return &leg{id: res.EndpointID, sdp: res.SDPOffer, peer: peer}
}

// checkStream verifies byte-identical payloads and one continuous outgoing stream.
func checkStream(t *testing.T, got []rtppeer.Packet, want [][]byte, pt uint8, tsStep uint32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("received %d packets, want %d", len(got), len(want))
	}
	for i, p := range got {
		if !bytes.Equal(p.Payload, want[i]) {
			t.Fatalf("packet %d payload differs", i)
		}
		if p.Header.PayloadType != pt {
			t.Fatalf("packet %d PT %d, want %d", i, p.Header.PayloadType, pt)
		}
		if i == 0 {
			continue
		}
		prev := got[i-1].Header
		if p.Header.SSRC != prev.SSRC || p.Header.SequenceNumber != prev.SequenceNumber+1 || p.Header.Timestamp != prev.Timestamp+tsStep {
			t.Fatalf("packet %d breaks continuity: ssrc %x→%x seq %d→%d ts %d→%d", i,
				prev.SSRC, p.Header.SSRC, prev.SequenceNumber, p.Header.SequenceNumber, prev.Timestamp, p.Header.Timestamp)
		}
	}
}

func TestTwoPartyCallBothWays(t *testing.T) {
	for _, codec := range []struct {
		name string
		pt   uint8
	}{{"PCMU", 0}, {"PCMA", 8}} {
		t.Run(codec.name, func(t *testing.T) {
			srv := testserver.Start(t, nil, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			format := fmt.Sprintf("%d %s/8000", codec.pt, codec.name)
			a := legFromOffer(t, c, "sendrecv", format, "101 telephone-event/8000")
			b := legFromOwnOffer(t, c, "sendrecv", []string{codec.name}, format, "101 telephone-event/8000")
			if !strings.Contains(a.sdp, "a=rtpmap:"+fmt.Sprint(codec.pt)+" "+codec.name+"/8000") {
				t.Fatalf("answer lacks %s:\n%s", codec.name, a.sdp)
			}

			const n = 50
			want := make([][]byte, n)
			for i := range want {
				want[i] = rtppeer.Pattern(i, 160)
			}
			// a → b
			a.peer.Stream(rtp.Header{PayloadType: codec.pt, SequenceNumber: 65500, Timestamp: 1000, SSRC: 0xa}, n, 160, true, func(i int) []byte { return want[i] })
			checkStream(t, b.peer.Collect(n, wait), want, codec.pt, 160)
			// b → a
			b.peer.Stream(rtp.Header{PayloadType: codec.pt, SequenceNumber: 7, Timestamp: 99, SSRC: 0xb}, n, 160, true, func(i int) []byte { return want[i] })
			checkStream(t, a.peer.Collect(n, wait), want, codec.pt, 160)

			// Both legs went new → connected with their first packet.
			info := c.SessionInfo()
			if len(info.Endpoints) != 2 {
				t.Fatalf("endpoints: %+v", info.Endpoints)
			}
			for _, e := range info.Endpoints {
				if e.EndpointType != "rtp" || e.State != "connected" || e.Codec == nil || *e.Codec != codec.name || e.Direction != "sendrecv" {
					t.Errorf("endpoint info %+v", e)
				}
			}
			if v := srv.MetricValue(t, "rtpbridge_packets_routed_total"); v != 2*n {
				t.Errorf("rtpbridge_packets_routed_total = %v, want %d", v, 2*n)
			}
			if v := srv.MetricValue(t, "rtpbridge_endpoints_active"); v != 2 {
				t.Errorf("rtpbridge_endpoints_active = %v", v)
			}
		})
	}
}

func TestStateEventsOnFirstPacket(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	a.peer.Send(rtp.Header{PayloadType: 0, SSRC: 1}, make([]byte, 160))
	ev := c.WaitEvent(protocol.EventEndpointStateChanged, wait)
	want := fmt.Sprintf(`{"endpoint_id":%q,"new_state":"connected","old_state":"new"}`, a.id)
	if string(ev.Data) != want {
		t.Fatalf("state_changed = %s, want %s", ev.Data, want)
	}
}

func TestThreePartyDirections(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	talker := legFromOffer(t, c, "sendonly", "0 PCMU/8000")
	l1 := legFromOffer(t, c, "recvonly", "0 PCMU/8000")
	l2 := legFromOwnOffer(t, c, "recvonly", nil, "0 PCMU/8000")

	const n = 20
	gen := func(i int) []byte { return rtppeer.Pattern(i, 160) }
	talker.peer.Stream(rtp.Header{PayloadType: 0, SSRC: 1}, n, 160, true, gen)
	for _, l := range []*leg{l1, l2} {
		if got := l.peer.Collect(n, wait); len(got) != n {
			t.Fatalf("listener got %d of %d packets", len(got), n)
		}
	}
	// recvonly legs are not forwarded; sendonly legs are sent nothing.
	l1.peer.Stream(rtp.Header{PayloadType: 0, SSRC: 2}, n, 160, true, gen)
	l2.peer.Stream(rtp.Header{PayloadType: 0, SSRC: 3}, n, 160, true, gen)
	talker.peer.ExpectNone(300 * time.Millisecond)
	l1.peer.ExpectNone(50 * time.Millisecond)
	l2.peer.ExpectNone(50 * time.Millisecond)
}

// When the source behind a destination changes, the destination's stream stays continuous.
func TestSourceSwitchKeepsStreamContinuous(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	listener := legFromOffer(t, c, "recvonly", "0 PCMU/8000")
	first := legFromOffer(t, c, "sendonly", "0 PCMU/8000")
	gen := func(i int) []byte { return rtppeer.Pattern(i, 160) }
	first.peer.Stream(rtp.Header{PayloadType: 0, SequenceNumber: 100, Timestamp: 5000, SSRC: 1}, 10, 160, false, gen)
	before := listener.peer.Collect(10, wait)
	c.MustCall("endpoint.remove", map[string]any{"endpoint_id": first.id}, nil)
	second := legFromOffer(t, c, "sendonly", "0 PCMU/8000")
	second.peer.Stream(rtp.Header{PayloadType: 0, SequenceNumber: 40000, Timestamp: 123456789, SSRC: 2}, 10, 160, false, gen)
	after := listener.peer.Collect(10, wait)
	if len(before) != 10 || len(after) != 10 {
		t.Fatalf("got %d + %d packets", len(before), len(after))
	}
	last, next := before[9].Header, after[0].Header
	if next.SSRC != last.SSRC {
		t.Errorf("SSRC changed %x → %x", last.SSRC, next.SSRC)
	}
	if next.SequenceNumber != last.SequenceNumber+1 {
		t.Errorf("sequence jumped %d → %d", last.SequenceNumber, next.SequenceNumber)
	}
	if !next.Marker {
		t.Error("no marker bit on the first packet of the new source")
	}
	// The timestamp advances by about the real time between the two packets.
	elapsed := after[0].At.Sub(before[9].At)
	ticks := int64(next.Timestamp - last.Timestamp)
	if want := elapsed.Seconds() * 8000; float64(ticks) < want*0.5-160 || float64(ticks) > want*1.5+160 {
		t.Errorf("timestamp advanced %d ticks over %v", ticks, elapsed)
	}
}

func TestSymmetricRTPLearning(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000") // SDP says a.peer's port
	b := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	// The real media comes from another socket (a NAT rewrote the port).
	natted := rtppeer.New(t)
	natted.RemoteFromSDP(a.sdp, false)
	natted.Send(rtp.Header{PayloadType: 0, SSRC: 9}, make([]byte, 160))
	if got := b.peer.Collect(1, wait); len(got) != 1 {
		t.Fatal("first packet not forwarded")
	}
	b.peer.Send(rtp.Header{PayloadType: 0, SSRC: 10}, rtppeer.Pattern(1, 160))
	if got := natted.Collect(1, wait); len(got) != 1 {
		t.Fatal("rtpbridge did not send to the learned address")
	}
	a.peer.ExpectNone(200 * time.Millisecond)
}

func TestRTCPReportsRTTAndBye(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	b := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	const ssrc = 0x1234
	a.peer.Stream(rtp.Header{PayloadType: 0, SSRC: ssrc}, 5, 160, true, func(i int) []byte { return make([]byte, 160) })
	b.peer.Collect(5, wait)

	// rtpbridge reports to a's RTCP port (no mux: port + 1); answer its SR with an RR.
	var sr *rtcp.SenderReport
	deadline := time.After(8 * time.Second)
	for sr == nil {
		select {
		case pkts := <-a.peer.RTCPIn:
			for _, p := range pkts {
				if s, ok := p.(*rtcp.SenderReport); ok {
					sr = s
				}
			}
		case <-deadline:
			t.Fatal("no SR from rtpbridge")
		}
	}
	if len(sr.Reports) != 1 || sr.Reports[0].SSRC != ssrc {
		t.Fatalf("SR report blocks %+v, want one on %x", sr.Reports, ssrc)
	}
	const hold = 30 * time.Millisecond
	time.Sleep(hold)
	a.peer.SendRTCP(&rtcp.ReceiverReport{SSRC: ssrc, Reports: []rtcp.ReceptionReport{{
		SSRC: sr.SSRC, LastSenderReport: rtppeer.NTPMiddle(sr.NTPTime), Delay: uint32(hold.Seconds() * 65536),
	}}})

	c.MustCall("stats.subscribe", map[string]any{"interval_ms": 500}, nil)
	deadline = time.After(5 * time.Second)
	for {
		ev := c.WaitEvent(protocol.EventStats, wait)
		var data struct {
			Endpoints []struct {
				EndpointID string   `json:"endpoint_id"`
				RTTMS      *float64 `json:"rtt_ms"`
				Codec      string   `json:"codec"`
				State      string   `json:"state"`
				Inbound    struct {
					Packets     int     `json:"packets"`
					Bytes       int     `json:"bytes"`
					PacketsLost int     `json:"packets_lost"`
					JitterMS    float64 `json:"jitter_ms"`
				} `json:"inbound"`
				Outbound struct{ Packets, Bytes int } `json:"outbound"`
			} `json:"endpoints"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		done := false
		for _, e := range data.Endpoints {
			if e.EndpointID != a.id {
				continue
			}
			if e.Inbound.Packets != 5 || e.Inbound.Bytes != 800 || e.Codec != "PCMU" || e.State != "connected" {
				t.Fatalf("stats for a: %+v", e)
			}
			if e.RTTMS != nil {
				// Loopback RTT is close to zero: what is measured is our own processing.
				if *e.RTTMS < 0 || *e.RTTMS > 500 {
					t.Fatalf("rtt_ms = %v", *e.RTTMS)
				}
				done = true
			}
		}
		if done {
			break
		}
		select {
		case <-deadline:
			t.Fatal("rtt_ms never reported")
		default:
		}
	}

	reason := "hanging up"
	a.peer.SendRTCP(&rtcp.Goodbye{Sources: []uint32{ssrc}, Reason: reason})
	ev := c.WaitEvent(protocol.EventRTCPBye, wait)
	if want := fmt.Sprintf(`{"endpoint_id":%q,"reason":%q,"ssrc_list":[%d]}`, a.id, reason, ssrc); string(ev.Data) != want {
		t.Fatalf("rtcp_bye = %s, want %s", ev.Data, want)
	}
	c.MustCall("stats.unsubscribe", nil, nil)
	c.ExpectError("stats.subscribe", map[string]any{"interval_ms": 100}, protocol.CodeInvalidParams)
}

func TestMediaTimeoutAndResume(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.MediaTimeoutSecs = 1 }, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	a.peer.Stream(rtp.Header{PayloadType: 0, SSRC: 1}, 5, 160, false, func(int) []byte { return make([]byte, 160) })
	stopped := time.Now()
	// The state change travels on the critical queue, so it may overtake the timeout event.
	var timeout, disconnected *testserver.Message
	deadline := time.Now().Add(5 * time.Second)
	for timeout == nil || disconnected == nil {
		m := c.Next(time.Until(deadline))
		switch {
		case m.Event == protocol.EventMediaTimeout:
			timeout = &m
		case m.Event == protocol.EventEndpointStateChanged && strings.Contains(string(m.Data), `"new_state":"disconnected","old_state":"connected"`):
			disconnected = &m
		}
	}
	var to struct {
		EndpointID string `json:"endpoint_id"`
		DurationMS int64  `json:"duration_ms"`
	}
	_ = json.Unmarshal(timeout.Data, &to)
	if to.EndpointID != a.id || to.DurationMS < 1000 || to.DurationMS > time.Since(stopped).Milliseconds()+100 {
		t.Fatalf("media_timeout = %s", timeout.Data)
	}
	a.peer.Send(rtp.Header{PayloadType: 0, SSRC: 1, SequenceNumber: 10}, make([]byte, 160))
	sc := c.WaitEvent(protocol.EventEndpointStateChanged, wait)
	if !strings.Contains(string(sc.Data), `"new_state":"connected","old_state":"disconnected"`) {
		t.Fatalf("state after resume: %s", sc.Data)
	}
}

func TestPortsReleasedAndLimits(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) {
		c.RTPPortRange = [2]int{31000, 31003} // two pairs
		c.MaxEndpointsPerSession = 3
	}, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	peer := rtppeer.New(t)
	e := c.ExpectError("endpoint.create_from_offer", map[string]any{"sdp": peer.Offer([]string{"0 PCMU/8000"})}, protocol.CodeEndpointError)
	if e.Message != "No available port pairs in range 31000-31003" {
		t.Errorf("exhaustion message %q", e.Message)
	}
	// Removing an endpoint frees its ports for everyone, including other processes.
	port := 0
	fmt.Sscanf(a.sdp[strings.Index(a.sdp, "m=audio "):], "m=audio %d", &port)
	c.MustCall("endpoint.remove", map[string]any{"endpoint_id": a.id}, nil)
	for _, p := range []int{port, port + 1} {
		l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			t.Fatalf("port %d still held after remove: %v", p, err)
		}
		l.Close()
	}
	legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	e = c.ExpectError("endpoint.create_offer", map[string]any{"type": "rtp"}, protocol.CodeEndpointError)
	if e.Message != "No available port pairs in range 31000-31003" {
		t.Errorf("message %q", e.Message)
	}
	c.ExpectError("endpoint.remove", map[string]any{"endpoint_id": a.id}, protocol.CodeEndpointError)

	// max_endpoints_per_session
	srv2 := testserver.Start(t, func(c *config.Config) { c.MaxEndpointsPerSession = 1 }, server.Tuning{})
	c2 := testserver.Dial(t, srv2)
	c2.CreateSession()
	legFromOffer(t, c2, "sendrecv", "0 PCMU/8000")
	if e := c2.ExpectError("endpoint.create_offer", map[string]any{"type": "rtp"}, protocol.CodeEndpointError); e.Message != "MAX_ENDPOINTS_REACHED" {
		t.Errorf("message %q", e.Message)
	}
	// Destroying the session releases every port.
	c2.MustCall("session.destroy", nil, nil)
	testserver.Eventually(t, wait, "endpoints released", func() bool { return srv2.MetricValue(t, "rtpbridge_endpoints_active") == 0 })
}

func TestBadSDPAndParams(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.MaxSDPSizeKB = 1 }, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	peer := rtppeer.New(t)

	e := c.ExpectError("endpoint.create_from_offer", map[string]any{"sdp": peer.Offer([]string{"18 G729/8000", "3 GSM/8000"})}, protocol.CodeEndpointError)
	if !strings.HasPrefix(e.Message, "No supported codec in offer (offered: ") || !strings.Contains(e.Message, "supported: PCMU, PCMA, G722, opus") {
		t.Errorf("no-common-codec message %q", e.Message)
	}
	if e := c.ExpectError("endpoint.create_from_offer", map[string]any{"sdp": strings.Repeat("a=x\r\n", 300)}, protocol.CodeInvalidParams); e.Message != "SDP too large" {
		t.Errorf("too large message %q", e.Message)
	}
	for _, bad := range []string{"", "garbage", "v=0\r\nm=audio abc RTP/AVP 0\r\n", "v=0\r\nm=video 5000 RTP/AVP 96\r\n"} {
		c.ExpectError("endpoint.create_from_offer", map[string]any{"sdp": bad}, protocol.CodeEndpointError)
	}
	c.ExpectError("endpoint.create_from_offer", map[string]any{}, protocol.CodeInvalidParams)
	c.ExpectError("endpoint.create_from_offer", map[string]any{"sdp": 5}, protocol.CodeInvalidParams)
	c.ExpectError("endpoint.create_from_offer", map[string]any{"sdp": peer.Offer([]string{"0 PCMU/8000"}), "direction": "sideways"}, protocol.CodeInvalidParams)
	c.ExpectError("endpoint.create_offer", map[string]any{}, protocol.CodeInvalidParams)
	c.ExpectError("endpoint.create_offer", map[string]any{"type": "fax"}, protocol.CodeInvalidParams)
	c.ExpectError("endpoint.create_offer", map[string]any{"type": "rtp", "codecs": []string{"G729"}}, protocol.CodeInvalidParams)
	c.ExpectError("endpoint.accept_answer", map[string]any{"endpoint_id": "x", "sdp": ""}, protocol.CodeInvalidParams)
	c.ExpectError("endpoint.remove", map[string]any{"endpoint_id": "6f1c0d2e-6b7a-4b55-9a57-2f2d6a1f0c11"}, protocol.CodeEndpointError)

	// Accepting an answer for an endpoint that made no offer.
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	if e := c.ExpectError("endpoint.accept_answer", map[string]any{"endpoint_id": a.id, "sdp": peer.Answer([]string{"0 PCMU/8000"})}, protocol.CodeEndpointError); e.Message != "No pending offer to accept answer for" {
		t.Errorf("message %q", e.Message)
	}
	// An answer with none of our codecs.
	var res struct {
		EndpointID string `json:"endpoint_id"`
	}
	c.MustCall("endpoint.create_offer", map[string]any{"type": "rtp", "codecs": []string{"PCMU"}}, &res)
	if e := c.ExpectError("endpoint.accept_answer", map[string]any{"endpoint_id": res.EndpointID, "sdp": peer.Answer([]string{"8 PCMA/8000"})}, protocol.CodeEndpointError); e.Message != "SDP answer contains no codecs from the original offer" {
		t.Errorf("message %q", e.Message)
	}
}

func TestGarbageDatagramsAreDroppedAndCounted(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	a := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	b := legFromOffer(t, c, "sendrecv", "0 PCMU/8000")
	valid, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 5}, Payload: make([]byte, 160)}).Marshal()
	version1 := append([]byte(nil), valid...)
	version1[0] = 0x40
	badExt := append([]byte(nil), valid[:12]...)
	badExt[0] |= 0x10 // extension flag without an extension
	bad := [][]byte{{}, {0x80}, valid[:11], version1, badExt, bytes.Repeat([]byte{0xff}, 3000), []byte("hello, world")}
	for _, d := range bad {
		a.peer.SendRaw(d)
	}
	// Garbage on the RTCP port too.
	for _, d := range bad {
		if _, err := a.peer.RTCP.WriteToUDP(d, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mPort(t, a.sdp) + 1}); err != nil {
			t.Fatal(err)
		}
	}
	a.peer.Send(rtp.Header{PayloadType: 0, SSRC: 5}, rtppeer.Pattern(1, 160))
	got := b.peer.Collect(1, wait)
	if len(got) != 1 || !bytes.Equal(got[0].Payload, rtppeer.Pattern(1, 160)) {
		t.Fatalf("valid packet after garbage: %d packets", len(got))
	}
	b.peer.ExpectNone(100 * time.Millisecond)
	testserver.Eventually(t, wait, "invalid datagrams counted", func() bool {
		// The empty datagram and the 3000-byte one may be counted differently by the kernel path,
		// but every other one must be counted on both ports.
		return srv.MetricValue(t, "rtpbridge_packets_invalid_total") >= float64(2*(len(bad)-2))
	})
	if v := srv.MetricValue(t, "rtpbridge_packets_routed_total"); v != 1 {
		t.Errorf("routed %v packets, want 1", v)
	}
}

func mPort(t testing.TB, sdp string) int {
	t.Helper()
	var port int
	i := strings.Index(sdp, "m=audio ")
	if i < 0 {
		t.Fatalf("no m= line in %q", sdp)
	}
	fmt.Sscanf(sdp[i:], "m=audio %d", &port)
	return port
}
