package sdp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, s := range seedCorpus() {
		f.Add([]byte(s))
	}
	f.Add([]byte(""))
	f.Add([]byte("v=0\r\n"))
	f.Add([]byte("v=0\nm=audio 1 RTP/AVP 0\n"))
}

// FuzzParse checks that Parse never panics and that what it returns is
// consistent with its documented invariants.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		IsWebRTC(raw)
		d, err := Parse(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if len(d.Formats) > maxPayloadTypes || len(d.Crypto) > maxCryptos || len(d.MediaLines) > maxMediaLines {
			t.Fatalf("caps exceeded: %d formats, %d crypto, %d m= lines", len(d.Formats), len(d.Crypto), len(d.MediaLines))
		}
		if len(d.Codecs)+len(d.TelephoneEvents) > len(d.Formats) {
			t.Fatal("more recognised formats than formats")
		}
		for _, c := range d.Codecs {
			if _, ok := LookupCodec(c.Name); !ok || !c.Supported {
				t.Fatalf("unsupported codec in Codecs: %+v", c)
			}
		}
		if d.Addr.IsValid() && (d.Addr.Port() == 0 || d.Addr.Port() != d.Port) {
			t.Fatalf("Addr %v with port %d", d.Addr, d.Port)
		}
		if !d.Direction.Valid() {
			t.Fatalf("invalid direction %q", d.Direction)
		}
		active := 0
		for _, ml := range d.MediaLines {
			if ml.Active {
				active++
			}
		}
		if active != 1 {
			t.Fatalf("%d active m= lines", active)
		}
	})
}

// FuzzBuildAnswer answers every parsable input and checks the answer is
// well-formed: it parses, carries the chosen codec at the offer's payload
// type, and our own AcceptAnswer agrees with it.
func FuzzBuildAnswer(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		offer, err := Parse(raw)
		if err != nil {
			return
		}
		p := AnswerParams{EndpointID: idA, MediaIP: netip.MustParseAddr("192.0.2.10"), Port: 30000,
			Crypto: []string{"1 AES_CM_128_HMAC_SHA1_80 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj"}}
		answer, n, err := BuildAnswer(offer, p)
		if err != nil {
			var nc *NoCommonCodecError
			if errors.As(err, &nc) {
				if len(offer.Codecs) > 0 {
					t.Fatalf("no common codec although the offer has %q", fmtList(offer.Codecs))
				}
				if !strings.HasPrefix(err.Error(), "No supported codec in offer (offered: ") {
					t.Fatalf("message %q", err)
				}
				return
			}
			if offer.Profile.DTLS() {
				return
			}
			t.Fatalf("BuildAnswer: %v", err)
		}
		if !strings.HasSuffix(string(answer), "\r\n") || strings.Contains(strings.ReplaceAll(string(answer), "\r\n", ""), "\n") {
			t.Fatalf("answer lines not CRLF:\n%q", answer)
		}
		back, err := Parse(answer)
		if err != nil {
			t.Fatalf("our answer does not parse: %v\n%s", err, answer)
		}
		if len(back.MediaLines) != len(offer.MediaLines) {
			t.Fatalf("answer has %d m= lines, offer %d", len(back.MediaLines), len(offer.MediaLines))
		}
		if len(back.Codecs) != 1 || back.Codecs[0].PT != n.PayloadType || back.Codecs[0].Name != n.Codec {
			t.Fatalf("answer codecs %q, negotiated %s/%d", fmtList(back.Codecs), n.Codec, n.PayloadType)
		}
		if n.TelephoneEventPT != 0 && n.TelephoneEventClock != n.ClockRate {
			t.Fatalf("telephone-event clock %d with codec clock %d", n.TelephoneEventClock, n.ClockRate)
		}
		if back.Direction != offer.Direction.Mirror() || back.RTCPMux != offer.RTCPMux || !back.Profile.Secure() {
			t.Fatalf("answer direction %s mux %v profile %s for offer %s mux %v", back.Direction, back.RTCPMux, back.Profile, offer.Direction, offer.RTCPMux)
		}
		got, err := AcceptAnswer(OfferState{}, back)
		if err != nil {
			t.Fatalf("AcceptAnswer of our answer: %v", err)
		}
		if got.Codec != n.Codec || got.PayloadType != n.PayloadType || got.TelephoneEventPT != n.TelephoneEventPT {
			t.Fatalf("AcceptAnswer %+v, BuildAnswer %+v", got, n)
		}
	})
}
