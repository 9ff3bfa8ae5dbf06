package webrtc

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/rtpstats"
	"github.com/rtpbridge/rtpbridge/pkg/sdp"
)

// A browser-like offer: the seed the SDP fuzzers mutate.
const seedOffer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"a=fingerprint:sha-256 9F:C2:88:A3:DF:EF:22:54:49:67:F1:D5:55:13:91:83:3A:D0:68:B3:A4:D5:AF:2F:10:50:57:CD:FA:F6:24:C9\r\n" +
	"a=group:BUNDLE 0\r\na=ice-options:trickle\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 0 101\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=mid:0\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=rtcp-mux\r\n" +
	"a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:101 telephone-event/48000\r\na=sendrecv\r\n" +
	"a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\na=end-of-candidates\r\n"

// FuzzCheckRemote: any SDP a peer sends is judged without panicking, and an accepted one parses.
func FuzzCheckRemote(f *testing.F) {
	f.Add([]byte(seedOffer), true)
	f.Add([]byte(seedOffer), false)
	f.Add([]byte("v=0\r\nm=audio 0 RTP/AVP 0\r\n"), true)
	f.Fuzz(func(t *testing.T, raw []byte, offer bool) {
		if len(raw) > 64<<10 {
			return
		}
		if err := checkRemote(raw, offer); err == nil {
			_, _ = sdp.Parse(raw)
		}
	})
}

// FuzzUnwrapAnswer: raw SDP or JSON, never a panic.
func FuzzUnwrapAnswer(f *testing.F) {
	f.Add([]byte(`{"type":"answer","sdp":"v=0"}`))
	f.Add([]byte(seedOffer))
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = unwrapAnswer(raw)
	})
}

// FuzzReceive: arbitrary decrypted datagrams, as RTP or RTCP, never panic a negotiated leg, and
// only negotiated payload types pass.
func FuzzReceive(f *testing.F) {
	f.Add([]byte{0x80, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xf8}, false)
	f.Add([]byte{0x81, 200, 0, 12, 0, 0, 0, 9}, true)
	f.Add([]byte{0x90, 101, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xbe, 0xde, 0, 1, 1, 2, 3, 4}, false)
	e := &Endpoint{id: uuid.New()}
	if _, err := fuzzNegotiate(e); err != nil {
		f.Fatal(err)
	}
	var in endpoint.Inbound
	f.Fuzz(func(t *testing.T, b []byte, rtcp bool) {
		e.Receive(b, netip.AddrPort{}, time.Now(), rtcp, &in)
		if in.Kind == endpoint.InboundMedia && in.Header.PayloadType != 111 && in.Header.PayloadType != 101 {
			t.Fatalf("PT %d passed", in.Header.PayloadType)
		}
	})
}

// fuzzNegotiate puts e in the state an Opus answer leaves it in, without a PeerConnection.
func fuzzNegotiate(e *Endpoint) (*Endpoint, error) {
	e.recv = newReceiverForTest()
	e.out = endpoint.NewOutStreamSSRC(1234, 48000)
	e.send = newSenderForTest(1234)
	e.track = &localTrack{}
	e.apply(sdp.Negotiated{Codec: "opus", PayloadType: 111, ClockRate: 48000, TelephoneEventPT: 101, TelephoneEventClock: 48000})
	return e, nil
}

func newReceiverForTest() *rtpstats.Receiver        { return rtpstats.NewReceiver(48000) }
func newSenderForTest(ssrc uint32) *rtpstats.Sender { return rtpstats.NewSender(ssrc, 48000) }
