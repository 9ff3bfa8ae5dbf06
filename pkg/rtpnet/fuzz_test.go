package rtpnet

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
)

func addSeeds(f *testing.F) {
	for _, b := range samplePackets() {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, MaxDatagramSize+1))
}

// FuzzClassify checks that classification accepts any input without
// panicking, agrees with ParseRTP on what is RTP, and is consistent across
// the mux/no-mux and RTP/RTCP-socket views.
func FuzzClassify(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		mux := Classify(b, true)
		nomux := Classify(b, false)
		rtcpSock := ClassifyRTCPSocket(b)
		if len(b) > MaxDatagramSize && (mux != KindInvalid || nomux != KindInvalid || rtcpSock != KindInvalid) {
			t.Fatalf("oversized datagram classified %v/%v/%v", mux, nomux, rtcpSock)
		}
		if nomux == KindRTCP || rtcpSock == KindRTP {
			t.Fatalf("impossible kinds: no-mux %v, rtcp socket %v", nomux, rtcpSock)
		}
		if mux != nomux && !(mux == KindRTCP && nomux == KindInvalid) {
			t.Fatalf("mux %v vs no-mux %v", mux, nomux)
		}
		var h RTPHeader
		_, err := ParseRTP(b, &h)
		if mux == KindRTP && err != nil {
			t.Fatalf("classified RTP but ParseRTP fails: %v", err)
		}
		if mux == KindRTCP && rtcpSock != KindRTCP {
			t.Fatalf("RTCP on the mux socket but not on the RTCP socket")
		}
	})
}

// FuzzParseRTP checks bounds on arbitrary input and differentially compares
// with pion/rtp: whatever pion parses as version 2 we parse identically.
func FuzzParseRTP(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var h RTPHeader
		pl, err := ParseRTP(b, &h)
		if err == nil {
			if h.HeaderLen < RTPHeaderSize || h.HeaderLen+len(pl)+h.PaddingLen != len(b) {
				t.Fatalf("lengths: header %d payload %d padding %d total %d", h.HeaderLen, len(pl), h.PaddingLen, len(b))
			}
			if len(pl) > 0 && &pl[0] != &b[h.HeaderLen] {
				t.Fatal("payload is not a view into the input")
			}
		}
		if len(b) == 0 || b[0]>>6 != 2 {
			if err == nil {
				t.Fatal("accepted a non-version-2 packet")
			}
			return
		}
		var p rtp.Packet
		if perr := p.Unmarshal(b); perr == nil {
			if err != nil {
				t.Fatalf("pion accepts, we reject: %v", err)
			}
			if !bytes.Equal(p.Payload, pl) || p.PayloadType != h.PayloadType || p.Marker != h.Marker ||
				p.SequenceNumber != h.SequenceNumber || p.Timestamp != h.Timestamp || p.SSRC != h.SSRC {
				t.Fatalf("disagreement with pion: %+v vs %+v", p.Header, h)
			}
		} else if err == nil && !(p.Extension && (p.ExtensionProfile == rtp.ExtensionProfileOneByte || p.ExtensionProfile == rtp.ExtensionProfileTwoByte)) {
			// pion additionally validates RFC 8285 extension elements, which
			// we strip unread; any other rejection must be shared.
			t.Fatalf("we accept, pion rejects: %v", perr)
		}
	})
}
