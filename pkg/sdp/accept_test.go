package sdp

import (
	"errors"
	"net/netip"
	"testing"
)

func answerSDP(mline, attrs string) string {
	return "v=0\r\no=- 1 1 IN IP4 192.0.2.99\r\ns=-\r\nc=IN IP4 192.0.2.99\r\nt=0 0\r\nm=audio " + mline + "\r\n" + attrs
}

func TestAcceptAnswer(t *testing.T) {
	addr := netip.MustParseAddrPort("192.0.2.99:6000")
	tests := []struct {
		name   string
		offer  OfferState
		answer string
		want   Negotiated
	}{
		{
			name:   "PCMU with te at the answer's PT",
			offer:  OfferState{},
			answer: answerSDP("6000 RTP/AVP 0 96", "a=rtpmap:96 telephone-event/8000\r\n"),
			want: Negotiated{Codec: PCMU, PayloadType: 0, ClockRate: 8000, TelephoneEventPT: 96, TelephoneEventClock: 8000,
				RemoteAddr: addr, RemoteProfile: ProfileAVP, RemoteDirection: SendRecv},
		},
		{
			name:   "opus at the answer's PT, te clock matched, FEC",
			offer:  OfferState{Codecs: []string{"opus", "PCMU"}},
			answer: answerSDP("6000 RTP/AVP 120 101 110", "a=rtpmap:120 opus/48000/2\r\na=fmtp:120 useinbandfec=1\r\na=rtpmap:101 telephone-event/8000\r\na=rtpmap:110 telephone-event/48000\r\n"),
			want: Negotiated{Codec: Opus, PayloadType: 120, ClockRate: 48000, TelephoneEventPT: 110, TelephoneEventClock: 48000,
				RemoteAddr: addr, RemoteProfile: ProfileAVP, RemoteDirection: SendRecv, OpusFEC: true},
		},
		{
			name:   "codecs we did not offer are filtered out",
			offer:  OfferState{Codecs: []string{"PCMA", "G722"}},
			answer: answerSDP("6000 RTP/AVP 0 9 8", "a=recvonly\r\n"),
			want: Negotiated{Codec: G722, PayloadType: 9, ClockRate: 8000,
				RemoteAddr: addr, RemoteProfile: ProfileAVP, RemoteDirection: RecvOnly},
		},
		{
			name:   "no recognisable codec leaves the offered set: first offered, our PT",
			offer:  OfferState{Codecs: []string{"G722", "PCMU"}},
			answer: answerSDP("6000 RTP/AVP 18", ""),
			want: Negotiated{Codec: G722, PayloadType: 9, ClockRate: 8000,
				RemoteAddr: addr, RemoteProfile: ProfileAVP, RemoteDirection: SendRecv},
		},
		{
			name:   "telephone-event only: no send codec",
			offer:  OfferState{Codecs: []string{}},
			answer: answerSDP("6000 RTP/AVP 101", "a=rtpmap:101 telephone-event/8000\r\n"),
			want: Negotiated{TelephoneEventPT: 101, TelephoneEventClock: 8000,
				RemoteAddr: addr, RemoteProfile: ProfileAVP, RemoteDirection: SendRecv},
		},
		{
			name:   "mux switched on by the answer",
			offer:  OfferState{},
			answer: answerSDP("6000 RTP/SAVP 8", "a=rtcp-mux\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n"),
			want: Negotiated{Codec: PCMA, PayloadType: 8, ClockRate: 8000, RTCPMux: true,
				RemoteAddr: addr, RemoteProfile: ProfileSAVP, RemoteDirection: SendRecv},
		},
		{
			name:   "mux never switched off",
			offer:  OfferState{RTCPMux: true},
			answer: answerSDP("6000 RTP/AVP 8", ""),
			want: Negotiated{Codec: PCMA, PayloadType: 8, ClockRate: 8000, RTCPMux: true,
				RemoteAddr: addr, RemoteProfile: ProfileAVP, RemoteDirection: SendRecv},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AcceptAnswer(tc.offer, mustParse(t, tc.answer))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestAcceptAnswerErrors(t *testing.T) {
	tests := []struct {
		name   string
		offer  OfferState
		answer string
		want   error
		msg    string
	}{
		{"no offered codec", OfferState{Codecs: []string{"PCMU"}}, answerSDP("6000 RTP/AVP 8 9", ""),
			ErrAnswerNoOfferedCodec, "SDP answer contains no codecs from the original offer"},
		{"port 0", OfferState{}, answerSDP("0 RTP/AVP 0", ""),
			ErrAnswerNoAddress, "SDP answer has no connection address"},
		{"no c=", OfferState{}, "v=0\r\nm=audio 6000 RTP/AVP 0\r\n",
			ErrAnswerNoAddress, "SDP answer has no connection address"},
		{"c= 0.0.0.0", OfferState{}, "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 6000 RTP/AVP 0\r\n",
			ErrAnswerNoAddress, "SDP answer has no connection address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := AcceptAnswer(tc.offer, mustParse(t, tc.answer))
			if !errors.Is(err, tc.want) || err.Error() != tc.msg {
				t.Errorf("err = %v, want %q", err, tc.msg)
			}
		})
	}
	if _, err := AcceptAnswer(OfferState{}, nil); err == nil {
		t.Error("nil answer accepted")
	}
	if _, err := AcceptAnswer(OfferState{Codecs: []string{"AMR"}}, mustParse(t, answerSDP("6000 RTP/AVP 0", ""))); err == nil {
		t.Error("unknown offered codec accepted")
	}
}

// TestOfferAnswerBothWays runs our offer through our own answerer and back.
func TestOfferAnswerBothWays(t *testing.T) {
	for _, codecs := range [][]string{nil, {"opus"}, {"G722", "PCMU"}, {"PCMA"}} {
		offer, err := BuildOffer(OfferParams{EndpointID: idA, MediaIP: netip.MustParseAddr("192.0.2.1"), Port: 4000, Codecs: codecs, RTCPMux: true})
		if err != nil {
			t.Fatal(err)
		}
		answer, an, err := BuildAnswer(mustParse(t, string(offer)), AnswerParams{EndpointID: idB, MediaIP: netip.MustParseAddr("192.0.2.2"), Port: 5000})
		if err != nil {
			t.Fatalf("%q: %v", codecs, err)
		}
		on, err := AcceptAnswer(OfferState{Codecs: codecs}, mustParse(t, string(answer)))
		if err != nil {
			t.Fatalf("%q: %v", codecs, err)
		}
		if on.Codec != an.Codec || on.PayloadType != an.PayloadType || on.TelephoneEventPT != an.TelephoneEventPT ||
			on.TelephoneEventClock != an.TelephoneEventClock || !on.RTCPMux || !an.RTCPMux ||
			on.RemoteAddr != netip.MustParseAddrPort("192.0.2.2:5000") || an.RemoteAddr != netip.MustParseAddrPort("192.0.2.1:4000") {
			t.Errorf("%q: offerer %+v, answerer %+v", codecs, on, an)
		}
		if an.TelephoneEventClock != an.ClockRate {
			t.Errorf("%q: telephone-event clock %d with codec clock %d (D12)", codecs, an.TelephoneEventClock, an.ClockRate)
		}
	}
}
