package sdp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// The low 64 bits of these UUIDs, in decimal, were computed independently:
// 0x80b400c04fd430c8 and 0x8a3e6f0c1b2d4e5f.
var (
	idA = uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8") // 9274038358635720904
	idB = uuid.MustParse("1f2e3d4c-5b6a-4978-8a3e-6f0c1b2d4e5f") // 9961521523576360543
)

func TestBuildOfferGolden(t *testing.T) {
	tests := []struct {
		name   string
		params OfferParams
		want   string
	}{
		{
			name:   "default",
			params: OfferParams{EndpointID: idA, Version: 1, MediaIP: netip.MustParseAddr("192.0.2.10"), Port: 30000},
			want: crlf(`
v=0
o=rtpbridge 9274038358635720904 1 IN IP4 192.0.2.10
s=rtpbridge
c=IN IP4 192.0.2.10
t=0 0
m=audio 30000 RTP/AVP 0 8 9 111 101 110
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:9 G722/8000
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1;stereo=0;sprop-stereo=0
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:110 telephone-event/48000
a=fmtp:110 0-16
a=sendrecv
a=ptime:20
`),
		},
		{
			name: "SRTP rekey re-offer, mux, IPv6, opus first",
			params: OfferParams{
				EndpointID: idB, Version: 3, MediaIP: netip.MustParseAddr("2001:db8::10"), Port: 30002,
				Codecs:  []string{"OPUS", "pcmu", "telephone-event", "PCMU"},
				Crypto:  []string{"1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"},
				RTCPMux: true,
			},
			want: crlf(`
v=0
o=rtpbridge 9961521523576360543 3 IN IP6 2001:db8::10
s=rtpbridge
c=IN IP6 2001:db8::10
t=0 0
m=audio 30002 RTP/SAVP 111 0 101 110
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1;stereo=0;sprop-stereo=0
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:110 telephone-event/48000
a=fmtp:110 0-16
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
a=sendrecv
a=rtcp-mux
a=ptime:20
`),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BuildOffer(tc.params)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestBuildOfferTelephoneEventClocks checks D12: one telephone-event entry per
// distinct clock of the offered codecs.
func TestBuildOfferTelephoneEventClocks(t *testing.T) {
	tests := []struct {
		codecs []string
		mline  string
		te     string
	}{
		{nil, "0 8 9 111 101 110", "101:telephone-event/8000 110:telephone-event/48000"},
		{[]string{"PCMU"}, "0 101", "101:telephone-event/8000"},
		{[]string{"G722", "PCMA"}, "9 8 101", "101:telephone-event/8000"},
		{[]string{"opus"}, "111 101", "101:telephone-event/48000"},
		{[]string{"opus", "G722"}, "111 9 101 110", "101:telephone-event/8000 110:telephone-event/48000"},
		{[]string{}, "101", "101:telephone-event/8000"},
		{[]string{"telephone-event"}, "101", "101:telephone-event/8000"},
	}
	for _, tc := range tests {
		out, err := BuildOffer(OfferParams{EndpointID: idA, MediaIP: netip.MustParseAddr("127.0.0.1"), Port: 4000, Codecs: tc.codecs})
		if err != nil {
			t.Fatalf("%q: %v", tc.codecs, err)
		}
		if !strings.Contains(string(out), "m=audio 4000 RTP/AVP "+tc.mline+"\r\n") {
			t.Errorf("%q: m= line not %q in\n%s", tc.codecs, tc.mline, out)
		}
		d := mustParse(t, string(out))
		if got := fmtList(d.TelephoneEvents); got != tc.te {
			t.Errorf("%q: telephone-events %q, want %q", tc.codecs, got, tc.te)
		}
		if strings.Count(string(out), "a=fmtp:") != strings.Count(tc.te, "telephone-event")+strings.Count(tc.mline, "111") {
			t.Errorf("%q: wrong number of fmtp lines in\n%s", tc.codecs, out)
		}
	}
}

func TestBuildOfferErrors(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1")
	tests := map[string]OfferParams{
		"unknown codec":   {MediaIP: ip, Port: 4000, Codecs: []string{"PCMU", "G729"}},
		"no media IP":     {Port: 4000},
		"zone":            {MediaIP: netip.MustParseAddr("fe80::1%eth0"), Port: 4000},
		"port 0":          {MediaIP: ip},
		"crypto newline":  {MediaIP: ip, Port: 4000, Crypto: []string{"1 AES_CM_128_HMAC_SHA1_80 inline:x\r\na=evil"}},
		"crypto is blank": {MediaIP: ip, Port: 4000, Crypto: []string{" "}},
	}
	for name, p := range tests {
		if out, err := BuildOffer(p); err == nil {
			t.Errorf("%s: no error, got\n%s", name, out)
		} else if !strings.HasPrefix(err.Error(), "building SDP offer: ") {
			t.Errorf("%s: error %q lacks context", name, err)
		}
	}
}

func answerParams() AnswerParams {
	return AnswerParams{EndpointID: idA, MediaIP: netip.MustParseAddr("192.0.2.10"), Port: 30000}
}

func mustAnswer(t *testing.T, offer string, p AnswerParams) (string, Negotiated) {
	t.Helper()
	out, n, err := BuildAnswer(mustParse(t, offer), p)
	if err != nil {
		t.Fatalf("BuildAnswer: %v", err)
	}
	return string(out), n
}

func TestBuildAnswerGolden(t *testing.T) {
	got, n := mustAnswer(t, asteriskOffer, answerParams())
	want := crlf(`
v=0
o=rtpbridge 9274038358635720904 1 IN IP4 192.0.2.10
s=rtpbridge
c=IN IP4 192.0.2.10
t=0 0
m=audio 30000 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendrecv
a=ptime:20
`)
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	wantN := Negotiated{
		Codec: PCMU, PayloadType: 0, ClockRate: 8000,
		TelephoneEventPT: 101, TelephoneEventClock: 8000,
		RemoteAddr:    netip.MustParseAddrPort("10.0.0.5:10000"),
		RemoteProfile: ProfileAVP, RemoteDirection: SendRecv,
	}
	if n != wantN {
		t.Errorf("Negotiated = %+v\nwant %+v", n, wantN)
	}
}

func TestBuildAnswerGoldenOpusSRTPMultiMedia(t *testing.T) {
	// Linphone offers audio and video; Opus at 96 with FEC, telephone-event
	// at 101/48000 and 100/8000; we answer with SDES over IPv6.
	p := answerParams()
	p.MediaIP = netip.MustParseAddr("2001:db8::10")
	p.Crypto = []string{"1 AES_CM_128_HMAC_SHA1_80 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj"}
	got, n := mustAnswer(t, linphoneOffer, p)
	want := crlf(`
v=0
o=rtpbridge 9274038358635720904 1 IN IP6 2001:db8::10
s=rtpbridge
c=IN IP6 2001:db8::10
t=0 0
m=audio 30000 RTP/SAVP 96 101
a=rtpmap:96 opus/48000/2
a=fmtp:96 minptime=10;useinbandfec=1;stereo=0;sprop-stereo=0
a=rtpmap:101 telephone-event/48000
a=fmtp:101 0-16
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj
a=sendrecv
a=ptime:20
m=video 0 RTP/AVP 96
`)
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if n.Codec != Opus || n.PayloadType != 96 || n.ClockRate != 48000 || !n.OpusFEC ||
		n.TelephoneEventPT != 101 || n.TelephoneEventClock != 48000 {
		t.Errorf("Negotiated = %+v", n)
	}
}

func TestBuildAnswerPayloadTypesAndTelephoneEvent(t *testing.T) {
	tests := []struct {
		name   string
		offer  string
		prefs  []string
		mline  string
		codec  string
		pt     uint8
		te     uint8
		teRate uint32
	}{
		{"opus at 96, te 101/48000 kept", dynamicOffer, nil, "96 101", Opus, 96, 101, 48000},
		{"PCMU chosen, te 126/8000 kept", dynamicOffer, []string{"PCMU"}, "0 126", PCMU, 0, 126, 8000},
		{"FreeSWITCH opus 102 with te 103", freeswitchOffer, nil, "102 103", Opus, 102, 103, 48000},
		{"preference beats offer order", freeswitchOffer, []string{"PCMA", "opus"}, "8 101", PCMA, 8, 101, 8000},
		{"preference skips absent codecs", asteriskOffer, []string{"opus", "G722"}, "9 101", G722, 9, 101, 8000},
		{"no te offered, none added", pcmaOnlyOffer, nil, "8", PCMA, 8, 0, 0},
		{"no te at the codec's clock", crlf(`
v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 5000 RTP/AVP 0 101
a=rtpmap:101 telephone-event/48000
`), nil, "0", PCMU, 0, 0, 0},
		{"Linphone te/16000 skipped", linphoneOffer, []string{"PCMU"}, "0 100", PCMU, 0, 100, 8000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := answerParams()
			p.Codecs = tc.prefs
			got, n := mustAnswer(t, tc.offer, p)
			if !strings.Contains(got, "m=audio 30000 RTP/AVP "+tc.mline+"\r\n") {
				t.Errorf("m= line is not %q:\n%s", tc.mline, got)
			}
			if n.Codec != tc.codec || n.PayloadType != tc.pt || n.TelephoneEventPT != tc.te || n.TelephoneEventClock != tc.teRate {
				t.Errorf("Negotiated = %+v", n)
			}
			// The answer must parse back to the same choice.
			back := mustParse(t, got)
			if len(back.Codecs) != 1 || back.Codecs[0].PT != tc.pt || back.Codecs[0].Name != tc.codec {
				t.Errorf("answer codecs %q", fmtList(back.Codecs))
			}
		})
	}
}

func TestBuildAnswerDirection(t *testing.T) {
	for offer, want := range map[string]Direction{
		"sendrecv": SendRecv, "sendonly": RecvOnly, "recvonly": SendOnly, "inactive": Inactive, "": SendRecv,
	} {
		sdp := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
		if offer != "" {
			sdp += "a=" + offer + "\r\n"
		}
		got, n := mustAnswer(t, sdp, answerParams())
		if !strings.Contains(got, "\r\na="+string(want)+"\r\n") {
			t.Errorf("offer %q: answer lacks a=%s:\n%s", offer, want, got)
		}
		for _, d := range []Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
			if d != want && strings.Contains(got, "a="+string(d)) {
				t.Errorf("offer %q: answer also has a=%s", offer, d)
			}
		}
		if wantRemote := Direction(offer); offer != "" && n.RemoteDirection != wantRemote {
			t.Errorf("offer %q: RemoteDirection = %q", offer, n.RemoteDirection)
		}
	}
}

func TestBuildAnswerRTCPMux(t *testing.T) {
	withMux, n := mustAnswer(t, dynamicOffer, answerParams())
	if !strings.Contains(withMux, "a=rtcp-mux\r\n") || !n.RTCPMux {
		t.Errorf("offer with rtcp-mux: answer lacks it (Negotiated.RTCPMux=%v)\n%s", n.RTCPMux, withMux)
	}
	without, n := mustAnswer(t, asteriskOffer, answerParams())
	if strings.Contains(without, "rtcp-mux") || n.RTCPMux {
		t.Errorf("offer without rtcp-mux: answer has it (Negotiated.RTCPMux=%v)\n%s", n.RTCPMux, without)
	}
}

func TestBuildAnswerProfile(t *testing.T) {
	crypto := []string{"1 AES_CM_128_HMAC_SHA1_80 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj"}
	tests := []struct {
		offerProto string
		crypto     []string
		want       Profile
	}{
		{"RTP/AVP", nil, ProfileAVP},
		{"RTP/AVP", crypto, ProfileSAVP}, // opportunistic SRTP, PROTOCOL.md §13.1
		{"RTP/SAVP", crypto, ProfileSAVP},
		{"RTP/SAVPF", crypto, ProfileSAVPF},
		{"RTP/AVPF", nil, ProfileAVPF},
		{"RTP/SAVP", nil, ProfileAVP}, // no usable suite: the leg runs unencrypted
	}
	for _, tc := range tests {
		sdp := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 " + tc.offerProto + " 0\r\n"
		p := answerParams()
		p.Crypto = tc.crypto
		got, n := mustAnswer(t, sdp, p)
		if !strings.Contains(got, "m=audio 30000 "+string(tc.want)+" 0\r\n") {
			t.Errorf("%s crypto=%v: want %s in\n%s", tc.offerProto, tc.crypto != nil, tc.want, got)
		}
		if n.RemoteProfile != Profile(tc.offerProto) {
			t.Errorf("%s: RemoteProfile = %q", tc.offerProto, n.RemoteProfile)
		}
		if gotCrypto := strings.Contains(got, "a=crypto:"); gotCrypto != (tc.crypto != nil) {
			t.Errorf("%s: crypto line present = %v", tc.offerProto, gotCrypto)
		}
	}
	if _, _, err := BuildAnswer(mustParse(t, webrtcOffer), answerParams()); err == nil || !strings.Contains(err.Error(), "DTLS") {
		t.Errorf("WebRTC profile offer: err = %v, want a DTLS error", err)
	}
}

func TestBuildAnswerOpusFECEcho(t *testing.T) {
	sdp := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 120\r\na=rtpmap:120 opus/48000/2\r\n"
	got, n := mustAnswer(t, sdp+"a=fmtp:120 useinbandfec=0\r\n", answerParams())
	if !strings.Contains(got, "a=fmtp:120 minptime=10;useinbandfec=0;stereo=0;sprop-stereo=0\r\n") || n.OpusFEC {
		t.Errorf("FEC not offered: OpusFEC=%v\n%s", n.OpusFEC, got)
	}
	got, n = mustAnswer(t, sdp+"a=fmtp:120 stereo=1; UseInbandFEC=1\r\n", answerParams())
	if !strings.Contains(got, "a=fmtp:120 minptime=10;useinbandfec=1;stereo=0;sprop-stereo=0\r\n") || !n.OpusFEC {
		t.Errorf("FEC offered: OpusFEC=%v\n%s", n.OpusFEC, got)
	}
}

func TestBuildAnswerNoCommonCodec(t *testing.T) {
	sdp := crlf(`
v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 5000 RTP/AVP 18 3 96 97 101 35
a=rtpmap:18 G729/8000
a=rtpmap:97 iLBC/8000
a=rtpmap:101 telephone-event/8000
`)
	tests := []struct {
		prefs []string
		want  string
	}{
		{nil, "No supported codec in offer (offered: G729, GSM, 96, iLBC, telephone-event, 35; supported: PCMU, PCMA, G722, opus)"},
		{[]string{"opus"}, "No supported codec in offer (offered: G729, GSM, 96, iLBC, telephone-event, 35; supported: opus)"},
	}
	for _, tc := range tests {
		p := answerParams()
		p.Codecs = tc.prefs
		out, _, err := BuildAnswer(mustParse(t, sdp), p)
		var nc *NoCommonCodecError
		if !errors.As(err, &nc) {
			t.Fatalf("err = %v (answer %q), want *NoCommonCodecError", err, out)
		}
		if err.Error() != tc.want {
			t.Errorf("message\n%q\nwant\n%q", err.Error(), tc.want)
		}
	}
	// The preference list also restricts: PCMU-only offer, opus wanted.
	p := answerParams()
	p.Codecs = []string{"opus"}
	_, _, err := BuildAnswer(mustParse(t, pcmaOnlyOffer), p)
	if err == nil || err.Error() != "No supported codec in offer (offered: PCMA; supported: opus)" {
		t.Errorf("err = %v", err)
	}
}

func TestBuildAnswerErrors(t *testing.T) {
	offer := mustParse(t, asteriskOffer)
	if _, _, err := BuildAnswer(nil, answerParams()); err == nil {
		t.Error("nil offer accepted")
	}
	p := answerParams()
	p.Port = 0
	if _, _, err := BuildAnswer(offer, p); err == nil {
		t.Error("port 0 accepted")
	}
	p = answerParams()
	p.Codecs = []string{"speex"}
	if _, _, err := BuildAnswer(offer, p); err == nil || !strings.Contains(err.Error(), `unknown codec "speex"`) {
		t.Errorf("unknown preference: %v", err)
	}
	// A Description built by hand has no MediaLines: one m= line is written.
	out, _, err := BuildAnswer(&Description{Codecs: []Format{{PT: 0, Name: PCMU, ClockRate: 8000, Supported: true}}}, answerParams())
	if err != nil || strings.Count(string(out), "m=") != 1 {
		t.Errorf("hand-built offer: %v\n%s", err, out)
	}
}

// TestOfferRoundTrip parses our own offers back.
func TestOfferRoundTrip(t *testing.T) {
	out, err := BuildOffer(OfferParams{EndpointID: idA, MediaIP: netip.MustParseAddr("192.0.2.10"), Port: 30000, RTCPMux: true})
	if err != nil {
		t.Fatal(err)
	}
	d := mustParse(t, string(out))
	if got, want := fmtList(d.Codecs), "0:PCMU/8000 8:PCMA/8000 9:G722/8000 111:opus/48000"; got != want {
		t.Errorf("Codecs = %q, want %q", got, want)
	}
	if d.Addr != netip.MustParseAddrPort("192.0.2.10:30000") || !d.RTCPMux || d.Ptime != 20 ||
		d.Direction != SendRecv || !d.OpusFEC(111) || d.Profile != ProfileAVP {
		t.Errorf("round trip: %+v", d)
	}
}
