package server_test

import (
	"fmt"
	"testing"

	"github.com/pion/srtp/v3"

	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// Key parameters after "|" that rtpbridge cannot use are accepted and ignored (PROTOCOL.md
// §13.1, D25; issue 18): SIP peers send lifetimes such as 2^20, and the original's SRTP peer
// signals an MKI its packets do not carry. A peer that does put its MKI in every packet works
// as well. Media must flow both ways in every case.
func TestSRTPLifetimeAndMKIAcceptedAndIgnored(t *testing.T) {
	s := srtpSuites[0]
	for _, tc := range []struct {
		name   string
		params string
		mki    []byte // the MKI the peer puts in its packets; nil: none
	}{
		{"lifetime 2^20", "|2^20", nil},
		{"decimal lifetime", "|1000000", nil},
		{"lifetime above 2^48", "|2^49", nil},
		{"lifetime and MKI, packets without MKI", "|2^20|1:32", nil},
		{"lifetime and MKI, packets with MKI", "|2^20|1:32", append(make([]byte, 31), 1)},
		{"MKI length 0", "|1:0", nil},
		{"MKI length 200", "|1:200", nil},
		{"MKI value too large for its length", "|256:1", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.Start(t, nil, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			sp := newSRTPPeer(t, s)
			if tc.mki != nil {
				sp.tx = s.context(t, sp.txKey, srtp.MasterKeyIndicator(tc.mki))
			}
			offer := rtppeer.SDP(sp.port(), "RTP/SAVP", srtpPCMU, fmt.Sprintf("a=crypto:1 %s inline:%s%s", s.name, srtpB64(sp.txKey), tc.params))
			srtpAnswerOffer(t, c, sp, offer, "RTP/SAVP", 1, s)
			plain := srtpPlainLeg(t, c)
			srtpCheckSRTPToPlain(t, sp, plain.peer, 0x31, 1)
			srtpCheckPlainToSRTP(t, plain.peer, sp, 0x32)
			srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 0)
		})
	}
}
