package endpoint

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
	"github.com/rtpbridge/rtpbridge/pkg/sdp"
)

// fuzzLeg is a plain RTP leg answering a PCMU + telephone-event offer from 127.0.0.1:40000,
// with its own scratch lease.
func fuzzLeg(t testing.TB, srtp bool) *RTP {
	t.Helper()
	ports, err := rtpnet.NewPortAllocator(netip.MustParseAddr("127.0.0.1"), 33000, 33999)
	if err != nil {
		t.Fatal(err)
	}
	lease := &Lease{}
	lease.Borrow()
	e, err := NewRTP(uuid.New(), SendRecv, ports, nil, lease, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	profile, crypto := "RTP/AVP", ""
	if srtp {
		profile, crypto = "RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e\r\n"
	}
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 40000 " + profile + " 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n" + crypto
	d, err := sdp.Parse([]byte(offer))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.AnswerOffer(d, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

// FuzzReceive feeds arbitrary datagrams from arbitrary sources to a plain and an SRTP leg. No
// input may panic, and a packet that is dropped (invalid, rejected, failing SRTP) must leave
// the leg's statistics and media clock untouched; media that passes carries a negotiated
// payload type.
func FuzzReceive(f *testing.F) {
	valid, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, SSRC: 9}, Payload: make([]byte, 160)}).Marshal()
	dtmf, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 2, SSRC: 9}, Payload: []byte{1, 0x8a, 0, 160}}).Marshal()
	foreignPT, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: 3, SSRC: 9}, Payload: make([]byte, 160)}).Marshal()
	for _, seed := range [][]byte{valid, dtmf, foreignPT, {0x80, 0xc8, 0, 6}, {0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42}, {22, 0xfe, 0xfd}, nil} {
		f.Add(seed, uint8(1), uint16(40000), false)
		f.Add(seed, uint8(2), uint16(40001), true)
	}
	plain, keyed := fuzzLeg(f, false), fuzzLeg(f, true)
	at := time.Unix(1, 0)
	f.Fuzz(func(t *testing.T, b []byte, host uint8, port uint16, rtcpSocket bool) {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, host}), port)
		at = at.Add(20 * time.Millisecond)
		for _, e := range []*RTP{plain, keyed} {
			packets, last := e.Receiver().Packets(), e.LastMedia()
			var in Inbound
			e.Receive(b, src, at, rtcpSocket, &in)
			dropped := in.Invalid || in.Rejected || in.SRTPError
			if dropped && (e.Receiver().Packets() != packets || e.LastMedia() != last) {
				t.Fatalf("a dropped packet (%+v) changed the leg's statistics", in)
			}
			if in.Kind == InboundMedia && !e.ptAllowed(in.Header.PayloadType) {
				t.Fatalf("payload type %d passed without being negotiated", in.Header.PayloadType)
			}
		}
	})
}
