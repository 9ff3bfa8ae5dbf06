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

// SRTP legs never lose their protection (PROTOCOL.md §0 D24, issue 10): no downgrade to plain
// RTP, no key of the wrong length half-applied, no replay opening on a same-key renegotiation,
// and the old key's SRTCP refused once the switch-over deadline has passed.

// srtpRekeyOffer asks rtpbridge for a rekey offer and points the peer's receive side at the new
// key (rtpbridge sends with it at once).
func srtpRekeyOffer(t *testing.T, c *testserver.Client, id string, sp *srtpPeer) srtpAttr {
	t.Helper()
	var res struct {
		SDP string `json:"sdp"`
	}
	c.MustCall("endpoint.srtp_rekey", map[string]any{"endpoint_id": id}, &res)
	cr := srtpCryptos(t, res.SDP)
	if len(cr) != 1 {
		t.Fatalf("rekey offer has %d a=crypto lines", len(cr))
	}
	sp.setRX(cr[0].key)
	return cr[0]
}

// srtpCall is a session with an SDES-SRTP leg (the peer offered AES_CM_128_HMAC_SHA1_80) and a
// plain RTP leg.
type srtpCall struct {
	srv    *testserver.Server
	c      *testserver.Client
	suite  srtpSuite
	id     string // the SRTP leg
	answer string // rtpbridge's answer to the SRTP peer
	sp     *srtpPeer
	plain  *leg
}

func newSRTPCall(t *testing.T) *srtpCall {
	t.Helper()
	k := &srtpCall{srv: testserver.Start(t, nil, server.Tuning{})}
	k.c = testserver.Dial(t, k.srv)
	k.c.CreateSession()
	k.suite = srtpSuiteNamed(t, "AES_CM_128_HMAC_SHA1_80")
	k.id, k.answer, k.sp = srtpLegFromOffer(t, k.c, k.suite, "RTP/SAVP", "RTP/SAVP")
	k.plain = srtpPlainLeg(t, k.c)
	return k
}

func TestSRTPNeverDowngradedOrHalfRekeyed(t *testing.T) {
	k := newSRTPCall(t)
	srv, c, s, id, sp, plain := k.srv, k.c, k.suite, k.id, k.sp, k.plain
	srtpCheckSRTPToPlain(t, sp, plain.peer, 0x71, 100)

	rekey := srtpRekeyOffer(t, c, id, sp)
	answer := func(profile string, lines ...string) map[string]any {
		return map[string]any{"endpoint_id": id, "sdp": rtppeer.SDP(sp.port(), profile, srtpPCMU, lines...)}
	}
	// A plain answer to the rekey offer is a downgrade: refused.
	for _, profile := range []string{"RTP/AVP", "RTP/SAVP"} {
		e := c.ExpectError("endpoint.accept_answer", answer(profile), protocol.CodeEndpointError)
		if !srtpContainsAll(e.Message, []string{"crypto"}) {
			t.Errorf("plain %s answer: %q does not name the missing crypto", profile, e.Message)
		}
	}
	// A key of the wrong length is refused before anything changes.
	short := srtpCryptoLine(rekey.tag, s, s.newKey(t)[:20])
	if e := c.ExpectError("endpoint.accept_answer", answer("RTP/SAVP", short), protocol.CodeEndpointError); !srtpContainsAll(e.Message, []string{"20 bytes"}) {
		t.Errorf("short key: %q does not give its length", e.Message)
	}
	// The leg kept its keys: the peer's old key still decrypts, rtpbridge's new one encrypts.
	srtpCheckSRTPToPlain(t, sp, plain.peer, 0x72, 200)
	srtpCheckPlainToSRTP(t, plain.peer, sp, 0x73)
	srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 0)
	// And the offer still stands: the peer's proper answer (keeping its own key) is accepted.
	c.MustCall("endpoint.accept_answer", answer("RTP/SAVP", sp.cryptoLine(rekey.tag)), nil)
	srtpCheckSRTPToPlain(t, sp, plain.peer, 0x74, 300)
}

func TestSRTPSameKeyRenegotiationOpensNoReplay(t *testing.T) {
	k := newSRTPCall(t)
	srv, c, id, sp, plain := k.srv, k.c, k.id, k.sp, k.plain
	gen := func(i int) []byte { return rtppeer.Pattern(i, 160) }
	h, seen := sp.stream(rtp.Header{PayloadType: 0, SSRC: 0x81, SequenceNumber: 10}, 20, gen)
	if got := plain.peer.Collect(20, wait); len(got) != 20 {
		t.Fatalf("plain leg got %d packets", len(got))
	}
	// Renegotiation in which the peer keeps its key.
	rekey := srtpRekeyOffer(t, c, id, sp)
	c.MustCall("endpoint.accept_answer", map[string]any{"endpoint_id": id, "sdp": rtppeer.SDP(sp.port(), "RTP/SAVP", srtpPCMU, sp.cryptoLine(rekey.tag))}, nil)
	// Every packet already seen is still a replay.
	for _, b := range seen {
		sp.sendRaw(b)
	}
	srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", float64(len(seen)))
	plain.peer.ExpectNone(300 * time.Millisecond)
	// The stream itself carries on.
	sp.stream(h, 5, gen)
	if got := plain.peer.Collect(5, wait); len(got) != 5 {
		t.Fatalf("plain leg got %d packets after the renegotiation", len(got))
	}
}

func TestSRTPOldKeySRTCPRefusedAfterSwitchOver(t *testing.T) {
	k := newSRTPCall(t)
	srv, c, s, id, sp, plain := k.srv, k.c, k.suite, k.id, k.sp, k.plain
	srtpCheckSRTPToPlain(t, sp, plain.peer, 0x91, 100) // latches RTP
	oldCtx := s.context(t, sp.txKey)
	sp.sendRTCP(oldCtx, &rtcp.ReceiverReport{SSRC: 0x91}) // latches RTCP
	time.Sleep(50 * time.Millisecond)

	// The peer answers the rekey with a new key of its own and sends nothing for 5 s.
	rekey := srtpRekeyOffer(t, c, id, sp)
	newKey := s.newKey(t)
	c.MustCall("endpoint.accept_answer", map[string]any{"endpoint_id": id, "sdp": rtppeer.SDP(sp.port(), "RTP/SAVP", srtpPCMU, srtpCryptoLine(rekey.tag, s, newKey))}, nil)
	time.Sleep(5200 * time.Millisecond)

	// SRTCP under the old key is refused now: a BYE raises nothing.
	sp.sendRTCP(oldCtx, &rtcp.Goodbye{Sources: []uint32{0x91}, Reason: "old key"})
	srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 1)
	noEvent(t, c, protocol.EventRTCPBye, 300*time.Millisecond)
	// Old-key SRTP likewise.
	sp.sendRaw(sp.protect(s.context(t, sp.txKey), rtp.Header{PayloadType: 0, SSRC: 0x92, SequenceNumber: 1}, rtppeer.Pattern(1, 160)))
	srtpWaitMetric(t, srv, "rtpbridge_srtp_errors_total", 2)
	plain.peer.ExpectNone(200 * time.Millisecond)
	// The new key works for both.
	sp.sendRTCP(s.context(t, newKey), &rtcp.Goodbye{Sources: []uint32{0x91}, Reason: "new key"})
	c.WaitEvent(protocol.EventRTCPBye, wait)
	sp.tx = s.context(t, newKey)
	srtpCheckSRTPToPlain(t, sp, plain.peer, 0x93, 500)
}
