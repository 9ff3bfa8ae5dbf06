package server_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/internal/webrtcpeer"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// WebRTC legs end to end (issue 12): a pion client (webrtcpeer, a full ICE agent like a browser)
// against rtpbridge's ICE-lite leg, plain RTP peers on the other side, audio judged by
// independent decoders (the ffmpeg CLI's libopus, the Go G.711 reference).

const (
	wrtcSeconds = 2
	wrtcTone    = 1000.0
	wrtcAmp     = 8000.0 / 32767
	// wrtcSNR is issue 12's bar for a 1 kHz tone through WebRTC ↔ PCMU.
	wrtcSNR = 30.0
)

type endpointResult struct {
	EndpointID string `json:"endpoint_id"`
	SDPAnswer  string `json:"sdp_answer"`
	SDPOffer   string `json:"sdp_offer"`
}

// pcmuLeg adds a plain RTP PCMU peer to the client's session.
func pcmuLeg(t *testing.T, c *testserver.Client) (*rtppeer.Peer, string) {
	t.Helper()
	p := rtppeer.New(t)
	var res endpointResult
	c.MustCall("endpoint.create_from_offer", map[string]any{"sdp": p.Offer([]string{"0 PCMU/8000", "101 telephone-event/8000"})}, &res)
	p.RemoteFromSDP(res.SDPAnswer, false)
	return p, res.EndpointID
}

// webrtcOfferLeg lets a pion client offer and rtpbridge answer; it waits for ICE and DTLS on
// the client and for endpoint.state_changed connecting → connected on the control connection.
func webrtcOfferLeg(t *testing.T, c *testserver.Client, codecs ...webrtcpeer.Codec) (*webrtcpeer.Peer, endpointResult) {
	t.Helper()
	wp := webrtcpeer.New(t, codecs...)
	var res endpointResult
	c.MustCall("endpoint.create_from_offer", map[string]any{"sdp": wp.Offer()}, &res)
	for _, want := range []string{"a=ice-lite", "a=setup:passive", "a=fingerprint:sha-256 ", "a=rtcp-mux", "a=group:BUNDLE", " 127.0.0.1 ", "typ host"} {
		if !strings.Contains(res.SDPAnswer, want) {
			t.Fatalf("answer lacks %q:\n%s", want, res.SDPAnswer)
		}
	}
	wp.SetAnswer(res.SDPAnswer)
	if err := wp.WaitState(webrtc.PeerConnectionStateConnected, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, res.EndpointID, "connecting", "connected")
	return wp, res
}

// waitState waits for endpoint.state_changed of id from old to new.
func waitState(t *testing.T, c *testserver.Client, id, old, new string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m := c.WaitEvent("endpoint.state_changed", time.Until(deadline))
		var ev struct{ EndpointID, OldState, NewState string }
		var raw map[string]string
		if err := json.Unmarshal(m.Data, &raw); err != nil {
			t.Fatal(err)
		}
		ev.EndpointID, ev.OldState, ev.NewState = raw["endpoint_id"], raw["old_state"], raw["new_state"]
		if ev.EndpointID != id {
			continue
		}
		if ev.OldState != old || ev.NewState != new {
			t.Fatalf("endpoint %s went %s → %s, want %s → %s", id, ev.OldState, ev.NewState, old, new)
		}
		return
	}
	t.Fatalf("no state change %s → %s for %s", old, new, id)
}

// checkTone judges decoded audio: dominant frequency within 1 % of wrtcTone, SNR at least bar.
func checkTone(t *testing.T, what string, pcm []int16, rate int, bar float64) {
	t.Helper()
	steady := steadyWindow(pcm, rate)
	if steady == nil {
		t.Fatalf("%s: only %d samples arrived", what, len(pcm))
	}
	f := audiotest.DominantFrequency(steady, rate)
	snr, err := audiotest.SNR(steady, rate, wrtcTone)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %.1f Hz, SNR %.1f dB over %d ms", what, f, snr, len(steady)*1000/rate)
	if math.Abs(f-wrtcTone)/wrtcTone > 0.01 {
		t.Errorf("%s: dominant frequency %.1f Hz, want %.0f Hz ± 1 %%", what, f, wrtcTone)
	}
	if snr < bar {
		t.Errorf("%s: SNR %.1f dB, want ≥ %.0f dB", what, snr, bar)
	}
}

// background runs a sender on its own goroutine; the test waits for it before its peers close.
func background(t *testing.T, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	t.Cleanup(func() { <-done })
}

// sendWebRTCTone streams a 1 kHz tone from the pion client in its codec.
func sendWebRTCTone(t *testing.T, wp *webrtcpeer.Peer, codec string, seconds int) {
	t.Helper()
	rate := audiotest.CodecSampleRate(codec)
	payloads := audiotest.EncodePayloads(t, codec, audiotest.Tone(rate, seconds*rate, wrtcAmp, wrtcTone))
	step := uint32(160)
	if codec == "opus" {
		step = 960
	}
	wp.Stream(rtp.Header{SequenceNumber: 100, Timestamp: 5000, SSRC: 0x1234, Marker: true}, step, 20*time.Millisecond, payloads)
}

// pcmuFromPeer decodes the PCMU packets an RTP peer received.
func pcmuFromPeer(pkts []rtppeer.Packet) []int16 {
	var pcm []int16
	for _, p := range pkts {
		if p.Header.PayloadType == 0 {
			pcm = append(pcm, audiotest.DecodeULaw(p.Payload)...)
		}
	}
	return pcm
}

// opusFromClient decodes the Opus packets a pion client received.
func opusFromClient(t *testing.T, pkts []webrtcpeer.Packet, pt uint8) []int16 {
	t.Helper()
	var payloads [][]byte
	for _, p := range pkts {
		if p.Header.PayloadType == pt {
			payloads = append(payloads, p.Payload)
		}
	}
	if len(payloads) == 0 {
		t.Fatalf("no PT %d packets among %d", pt, len(pkts))
	}
	return audiotest.DecodePayloads(t, "opus", payloads)
}

// TestWebRTCClientOffersToneBothWays: a pion client offers, rtpbridge answers; ICE and DTLS come
// up, the endpoint goes connecting → connected, and a 1 kHz tone crosses WebRTC(Opus) ↔ PCMU
// in both directions at the right frequency and SNR ≥ 30 dB.
func TestWebRTCClientOffersToneBothWays(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	peer, _ := pcmuLeg(t, c)
	wp, wl := webrtcOfferLeg(t, c, webrtcpeer.Opus)
	for _, want := range []string{"a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1", "telephone-event/48000"} {
		if !strings.Contains(wl.SDPAnswer, want) {
			t.Errorf("answer lacks %q:\n%s", want, wl.SDPAnswer)
		}
	}

	t.Run("webrtc to pcmu", func(t *testing.T) {
		peer.Drain()
		background(t, func() { sendWebRTCTone(t, wp, "opus", wrtcSeconds) })
		got := collectQuiet(peer, wrtcSeconds*50, 500*time.Millisecond, 10*time.Second)
		checkTone(t, "opus → PCMU", pcmuFromPeer(got), 8000, wrtcSNR)
	})
	t.Run("pcmu to webrtc", func(t *testing.T) {
		wp.Drain()
		payloads := audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, wrtcSeconds*8000, wrtcAmp, wrtcTone))
		background(t, func() {
			sendPaced(peer, rtp.Header{SequenceNumber: 1, Timestamp: 160, SSRC: 0xabc, Marker: true}, 160, 20*time.Millisecond, payloads)
		})
		got := wp.Collect(wrtcSeconds*50, 500*time.Millisecond, 10*time.Second)
		checkTone(t, "PCMU → opus", opusFromClient(t, got, 111), 48000, wrtcSNR)
	})

	m := c.Call("session.info", nil)
	var raw struct {
		Endpoints []map[string]any `json:"endpoints"`
	}
	if err := json.Unmarshal(m.Result, &raw); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range raw.Endpoints {
		if e["endpoint_id"] == wl.EndpointID {
			found = true
			if e["endpoint_type"] != "webrtc" || e["state"] != "connected" || e["codec"] != "opus" {
				t.Errorf("session.info entry %v, want webrtc, connected, opus", e)
			}
		}
	}
	if !found {
		t.Errorf("session.info lacks the WebRTC endpoint: %s", m.Result)
	}
}
