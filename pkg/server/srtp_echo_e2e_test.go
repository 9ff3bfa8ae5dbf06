package server_test

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// A peer that answers rtpbridge's SDES offer with rtpbridge's own key and salt (the original's
// SRTP test peer and some SIP stacks do) is accepted for every suite (issue 11): media flows
// both ways through a plain leg, our own packets reflected back are refused even though they
// would authenticate, and an echoed answer to srtp_rekey works too.
func TestSRTPEchoedKey(t *testing.T) {
	for i, s := range srtpSuites {
		t.Run(s.name, func(t *testing.T) {
			srv := testserver.Start(t, nil, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			bID, offer, cr := srtpOwnOffer(t, c)

			// The peer sends and receives under rtpbridge's key for suite s.
			b := newSRTPPeer(t, s)
			b.txKey = cr[i].key
			b.tx = s.context(t, cr[i].key)
			b.setRX(cr[i].key)
			b.target(offer)
			echo := rtppeer.SDP(b.port(), "RTP/SAVP", srtpPCMU, cr[i].line)
			c.MustCall("endpoint.accept_answer", map[string]any{"endpoint_id": bID, "sdp": echo}, nil)
			plain := srtpPlainLeg(t, c)

			srtpCheckSRTPToPlain(t, b, plain.peer, 0x61, 100)
			srtpCheckPlainToSRTP(t, plain.peer, b, 0x62)
			srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 0)

			// Reflections: a packet rtpbridge sent, sent back verbatim; and a fresh packet under
			// the shared key that claims rtpbridge's sending SSRC. Both would authenticate.
			plain.peer.Stream(rtp.Header{PayloadType: 0, SequenceNumber: 40, Timestamp: 9000, SSRC: 0x62}, 1, 160, true,
				func(int) []byte { return rtppeer.Pattern(77, 160) })
			raws := b.collect(1, wait)
			if len(raws) != 1 {
				t.Fatalf("no packet from rtpbridge to reflect")
			}
			ours := b.decryptAll(raws)[0].Header.SSRC
			b.sendRaw(raws[0].b)
			forged := b.protect(s.context(t, cr[i].key), rtp.Header{PayloadType: 0, SequenceNumber: 7, Timestamp: 1, SSRC: ours}, rtppeer.Pattern(78, 160))
			b.sendRaw(forged)
			// An SRTCP BYE under the shared key in rtpbridge's name.
			b.sendRTCP(s.context(t, cr[i].key), &rtcp.Goodbye{Sources: []uint32{ours}, Reason: "reflected"})
			srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 3)
			plain.peer.ExpectNone(300 * time.Millisecond)
			for quiet := false; !quiet; {
				select {
				case m := <-c.Messages:
					if m.Event == protocol.EventRTCPBye {
						t.Fatalf("a reflected SRTCP BYE raised %s", m.Raw)
					}
				case <-time.After(200 * time.Millisecond):
					quiet = true
				}
			}

			// srtp_rekey answered by echoing the new key.
			var rekey struct {
				SDP string `json:"sdp"`
			}
			c.MustCall("endpoint.srtp_rekey", map[string]any{"endpoint_id": bID}, &rekey)
			nk := srtpCryptos(t, rekey.SDP)
			if len(nk) != 1 {
				t.Fatalf("rekey offer has %d a=crypto lines, want 1", len(nk))
			}
			b.txKey = nk[0].key
			b.tx = s.context(t, nk[0].key)
			b.setRX(nk[0].key)
			echo = rtppeer.SDP(b.port(), "RTP/SAVP", srtpPCMU, nk[0].line)
			c.MustCall("endpoint.accept_answer", map[string]any{"endpoint_id": bID, "sdp": echo}, nil)
			plain.peer.Drain()
			b.collect(100, 100*time.Millisecond) // anything still in flight under the old key
			srtpCheckSRTPToPlain(t, b, plain.peer, 0x63, 500)
			srtpCheckPlainToSRTP(t, plain.peer, b, 0x64)
			srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 3)
		})
	}
}
