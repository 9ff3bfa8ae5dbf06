package server_test

import (
	"encoding/json"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/internal/webrtcpeer"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// serverOfferLeg makes rtpbridge offer (create_offer type webrtc), lets the pion client answer and
// hands the answer back with accept_answer, as raw SDP or as the JSON a browser serialises.
func serverOfferLeg(t *testing.T, c *testserver.Client, asJSON bool, codecs ...webrtcpeer.Codec) (*webrtcpeer.Peer, endpointResult) {
	t.Helper()
	var res endpointResult
	c.MustCall("endpoint.create_offer", map[string]any{"type": "webrtc"}, &res)
	for _, want := range []string{"a=ice-lite", "a=setup:actpass", "a=fingerprint:sha-256 ", "a=rtcp-mux", "a=group:BUNDLE",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 9 0 8 101 110", "a=rtpmap:110 telephone-event/48000", "a=rtpmap:101 telephone-event/8000",
		"a=fmtp:111 minptime=10;useinbandfec=1", " 127.0.0.1 ", "typ host"} {
		if !strings.Contains(res.SDPOffer, want) {
			t.Fatalf("offer lacks %q:\n%s", want, res.SDPOffer)
		}
	}
	wp := webrtcpeer.New(t, codecs...)
	answer := wp.Answer(res.SDPOffer)
	sdp := answer
	if asJSON {
		b, _ := json.Marshal(map[string]string{"type": "answer", "sdp": answer})
		sdp = string(b)
	}
	c.MustCall("endpoint.accept_answer", map[string]any{"endpoint_id": res.EndpointID, "sdp": sdp}, nil)
	if err := wp.WaitState(webrtc.PeerConnectionStateConnected, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, res.EndpointID, "connecting", "connected")
	return wp, res
}

// TestWebRTCServerOffers: rtpbridge offers, the client answers (raw SDP and the JSON form), the
// leg connects and audio crosses to and from a PCMU peer. A second accept_answer has no pending
// offer to complete.
func TestWebRTCServerOffers(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	for _, tc := range []struct {
		name   string
		json   bool
		codec  webrtcpeer.Codec
		audio  string
		pt     uint8
		tePT   string
		teRate string
	}{
		{"raw sdp, opus", false, webrtcpeer.Opus, "opus", 111, "110", "48000"},
		{"json answer, PCMU", true, webrtcpeer.PCMU, "PCMU", 0, "101", "8000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.Start(t, nil, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			peer, _ := pcmuLeg(t, c)
			wp, wl := serverOfferLeg(t, c, tc.json, tc.codec)
			if d := wp.PC.RemoteDescription(); d == nil || !strings.Contains(d.SDP, "telephone-event/"+tc.teRate) {
				t.Errorf("offer has no telephone-event/%s", tc.teRate)
			}

			peer.Drain()
			background(t, func() { sendWebRTCTone(t, wp, tc.audio, wrtcSeconds) })
			got := collectQuiet(peer, wrtcSeconds*50, 500*time.Millisecond, 10*time.Second)
			checkTone(t, tc.audio+" → PCMU", pcmuFromPeer(got), 8000, wrtcSNR)

			wp.Drain()
			payloads := audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, wrtcSeconds*8000, wrtcAmp, wrtcTone))
			background(t, func() {
				sendPaced(peer, rtp.Header{SequenceNumber: 1, Timestamp: 160, SSRC: 0xabc, Marker: true}, 160, 20*time.Millisecond, payloads)
			})
			pkts := wp.Collect(wrtcSeconds*50, 500*time.Millisecond, 10*time.Second)
			if tc.audio == "opus" {
				checkTone(t, "PCMU → opus", opusFromClient(t, pkts, tc.pt), 48000, wrtcSNR)
			} else {
				var pcm []int16
				for _, p := range pkts {
					if p.Header.PayloadType == tc.pt {
						pcm = append(pcm, audiotest.DecodeULaw(p.Payload)...)
					}
				}
				checkTone(t, "PCMU → PCMU (WebRTC)", pcm, 8000, wrtcSNR)
			}

			e := c.ExpectError("endpoint.accept_answer", map[string]any{"endpoint_id": wl.EndpointID, "sdp": wp.PC.LocalDescription().SDP}, protocol.CodeEndpointError)
			if e.Message != "No pending offer to accept answer for" {
				t.Errorf("second accept_answer: %q", e.Message)
			}
		})
	}
}

var iceUfrag = regexp.MustCompile(`a=ice-ufrag:(\S+)`)
var hostCandidate = regexp.MustCompile(`a=candidate:\S+ 1 udp \d+ (\S+ \d+) typ host`)

// TestWebRTCICERestart: endpoint.ice_restart gives an offer with fresh ICE credentials and the
// same candidate; once the client's answer is accepted, audio keeps flowing both ways.
func TestWebRTCICERestart(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	peer, _ := pcmuLeg(t, c)
	wp, wl := webrtcOfferLeg(t, c, webrtcpeer.Opus)

	var res struct {
		SDPOffer string `json:"sdp_offer"`
	}
	c.MustCall("endpoint.ice_restart", map[string]any{"endpoint_id": wl.EndpointID}, &res)
	oldUfrag, newUfrag := iceUfrag.FindStringSubmatch(wl.SDPAnswer), iceUfrag.FindStringSubmatch(res.SDPOffer)
	if oldUfrag == nil || newUfrag == nil || oldUfrag[1] == newUfrag[1] {
		t.Fatalf("ICE restart offer keeps or lacks ice-ufrag (%v → %v):\n%s", oldUfrag, newUfrag, res.SDPOffer)
	}
	oldCand, newCand := hostCandidate.FindStringSubmatch(wl.SDPAnswer), hostCandidate.FindStringSubmatch(res.SDPOffer)
	if oldCand == nil || newCand == nil || oldCand[1] != newCand[1] {
		t.Fatalf("ICE restart changed the candidate: %v → %v", oldCand, newCand)
	}
	answer := wp.Answer(res.SDPOffer)
	c.MustCall("endpoint.accept_answer", map[string]any{"endpoint_id": wl.EndpointID, "sdp": answer}, nil)
	time.Sleep(500 * time.Millisecond) // the client's checks on the new credentials

	peer.Drain()
	background(t, func() { sendWebRTCTone(t, wp, "opus", wrtcSeconds) })
	got := collectQuiet(peer, wrtcSeconds*50, 500*time.Millisecond, 10*time.Second)
	checkTone(t, "after ICE restart, opus → PCMU", pcmuFromPeer(got), 8000, wrtcSNR)

	wp.Drain()
	payloads := audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, wrtcSeconds*8000, wrtcAmp, wrtcTone))
	background(t, func() {
		sendPaced(peer, rtp.Header{SequenceNumber: 1, Timestamp: 160, SSRC: 0xabc, Marker: true}, 160, 20*time.Millisecond, payloads)
	})
	pkts := wp.Collect(wrtcSeconds*50, 500*time.Millisecond, 10*time.Second)
	checkTone(t, "after ICE restart, PCMU → opus", opusFromClient(t, pkts, 111), 48000, wrtcSNR)

	c.ExpectError("endpoint.ice_restart", map[string]any{"endpoint_id": "00000000-0000-0000-0000-000000000001"}, protocol.CodeEndpointError)
	_, rtpID := pcmuLeg(t, c)
	if e := c.ExpectError("endpoint.ice_restart", map[string]any{"endpoint_id": rtpID}, protocol.CodeEndpointError); e.Message != "Not a WebRTC endpoint" {
		t.Errorf("ice_restart on RTP: %q", e.Message)
	}
}

// TestWebRTCPeerVanishes: when the client goes away the leg goes connected → disconnected and
// endpoint.media_timeout reports the gap.
func TestWebRTCPeerVanishes(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv := testserver.Start(t, func(c *config.Config) { c.MediaTimeoutSecs = 2 }, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	wp, wl := webrtcOfferLeg(t, c, webrtcpeer.Opus)
	sendWebRTCTone(t, wp, "opus", 1)
	wp.Close()

	sawTimeout, sawDisconnected := false, false
	deadline := time.Now().Add(20 * time.Second)
	for (!sawTimeout || !sawDisconnected) && time.Now().Before(deadline) {
		m := c.Next(time.Until(deadline))
		var d map[string]any
		_ = json.Unmarshal(m.Data, &d)
		if d["endpoint_id"] != wl.EndpointID {
			continue
		}
		switch m.Event {
		case "endpoint.media_timeout":
			sawTimeout = true
			if ms, _ := d["duration_ms"].(float64); ms < 2000 {
				t.Errorf("media_timeout duration_ms %v, want > 2000", d["duration_ms"])
			}
		case "endpoint.state_changed":
			if d["old_state"] == "connected" && d["new_state"] == "disconnected" {
				sawDisconnected = true
			}
		}
	}
	if !sawTimeout || !sawDisconnected {
		t.Fatalf("media_timeout %v, connected → disconnected %v", sawTimeout, sawDisconnected)
	}
}

// TestWebRTCBadOffers: WebRTC offers without fingerprint, without audio, with a DTLS role or ICE
// option we cannot serve or with garbage candidates get ENDPOINT_ERROR naming the problem, and
// leave no endpoint, socket or goroutine behind.
func TestWebRTCBadOffers(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	good := webrtcpeer.New(t, webrtcpeer.Opus).Offer()
	drop := func(prefix string) string {
		var out []string
		for _, l := range strings.Split(good, "\r\n") {
			if !strings.HasPrefix(l, prefix) {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\r\n")
	}
	replace := func(prefix, with string) string {
		var out []string
		for _, l := range strings.Split(good, "\r\n") {
			if strings.HasPrefix(l, prefix) {
				l = with
			}
			out = append(out, l)
		}
		return strings.Join(out, "\r\n")
	}
	cases := []struct{ name, sdp, want string }{
		{"no fingerprint", drop("a=fingerprint:"), "no a=fingerprint"},
		{"no audio", strings.Replace(good, "m=audio ", "m=video ", 1), "no audio section"},
		{"holdconn", replace("a=setup:", "a=setup:holdconn"), `unsupported DTLS setup role "holdconn"`},
		{"ice options", strings.Replace(good, "a=group:BUNDLE", "a=ice-options:frobnicate\r\na=group:BUNDLE", 1), `unsupported ICE option "frobnicate"`},
		{"garbage candidate", strings.Replace(good, "a=end-of-candidates", "a=candidate:garbage\r\na=end-of-candidates", 1), "invalid ICE candidate"},
		{"no ice-pwd", drop("a=ice-pwd:"), "no a=ice-pwd"},
		{"plain rtp profile", strings.Replace(good, "UDP/TLS/RTP/SAVPF", "RTP/AVP", 1), "only UDP/TLS/RTP/SAVPF"},
		{"no codec", strings.NewReplacer("opus/48000/2", "iLBC/8000", "telephone-event", "x-event").Replace(good), "No supported codec in offer"},
	}
	run := func() {
		for _, tc := range cases {
			e := c.ExpectError("endpoint.create_from_offer", map[string]any{"sdp": tc.sdp}, protocol.CodeEndpointError)
			if !strings.Contains(e.Message, tc.want) {
				t.Errorf("%s: error %q, want it to name %q", tc.name, e.Message, tc.want)
			}
		}
	}
	run() // warm up
	g0, fd0 := runtime.NumGoroutine(), openFiles(t)
	for range 5 {
		run()
	}
	testserver.Eventually(t, 5*time.Second, "goroutines and files back to where they were", func() bool {
		return runtime.NumGoroutine() <= g0 && openFiles(t) <= fd0
	})
	m := c.Call("session.info", nil)
	var info struct {
		Endpoints []any `json:"endpoints"`
	}
	if err := json.Unmarshal(m.Result, &info); err != nil || len(info.Endpoints) != 0 {
		t.Fatalf("session.info after refused offers: %s", m.Result)
	}
	// accept_answer on a WebRTC endpoint without a pending offer, and with garbage.
	_, wl := webrtcOfferLeg(t, c, webrtcpeer.Opus)
	if e := c.ExpectError("endpoint.accept_answer", map[string]any{"endpoint_id": wl.EndpointID, "sdp": good}, protocol.CodeEndpointError); e.Message != "No pending offer to accept answer for" {
		t.Errorf("accept_answer without offer: %q", e.Message)
	}
	var off endpointResult
	c.MustCall("endpoint.create_offer", map[string]any{"type": "webrtc"}, &off)
	for _, bad := range []struct{ sdp, want string }{
		{`{"type":"offer","sdp":"v=0"}`, `expected "answer"`},
		{`{"type":"answer"`, "does not parse"},
		{replace("a=setup:", "a=setup:actpass"), `"actpass" in an answer`},
	} {
		if e := c.ExpectError("endpoint.accept_answer", map[string]any{"endpoint_id": off.EndpointID, "sdp": bad.sdp}, protocol.CodeEndpointError); !strings.Contains(e.Message, bad.want) {
			t.Errorf("accept_answer %q: %q, want %q", bad.sdp, e.Message, bad.want)
		}
	}
}

// TestWebRTCThreePartyMix: WebRTC (Opus) + PCMU + G.722 in one session. The WebRTC client sends
// 1 kHz and the PCMU phone 600 Hz: the G.722 phone hears both, the WebRTC client hears 600 Hz.
func TestWebRTCThreePartyMix(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	pcmu, _ := pcmuLeg(t, c)
	g722 := rtppeer.New(t)
	var gl endpointResult
	c.MustCall("endpoint.create_from_offer", map[string]any{"sdp": g722.Offer([]string{"9 G722/8000"})}, &gl)
	g722.RemoteFromSDP(gl.SDPAnswer, false)
	wp, _ := webrtcOfferLeg(t, c, webrtcpeer.Opus)

	pcmu.Drain()
	g722.Drain()
	wp.Drain()
	const seconds = 3
	background(t, func() { sendWebRTCTone(t, wp, "opus", seconds) })
	pcm600 := audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, seconds*8000, wrtcAmp, 600))
	background(t, func() {
		sendPaced(pcmu, rtp.Header{SequenceNumber: 1, Timestamp: 160, SSRC: 0xabc, Marker: true}, 160, 20*time.Millisecond, pcm600)
	})

	gPkts := collectQuiet(g722, seconds*50, 500*time.Millisecond, 15*time.Second)
	var gPayloads [][]byte
	for _, p := range gPkts {
		if p.Header.PayloadType == 9 {
			gPayloads = append(gPayloads, p.Payload)
		}
	}
	wPkts := wp.Collect(seconds*50, 500*time.Millisecond, 15*time.Second)

	gPCM := steadyWindow(audiotest.DecodePayloads(t, "G722", gPayloads), 16000)
	if gPCM == nil {
		t.Fatalf("G.722 phone got %d packets", len(gPkts))
	}
	fit, err := audiotest.FitTones(gPCM, 16000, 600, 1000)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("G.722 phone hears 600 Hz at %.3f, 1 kHz at %.3f, SNR %.1f dB", fit.Amplitudes[0], fit.Amplitudes[1], fit.SNR())
	for i, f := range []float64{600, 1000} {
		if fit.Amplitudes[i] < wrtcAmp/2 {
			t.Errorf("G.722 phone: %v Hz at %.3f of full scale, want about %.3f", f, fit.Amplitudes[i], wrtcAmp)
		}
	}
	if fit.SNR() < 20 {
		t.Errorf("G.722 phone: mix SNR %.1f dB, want ≥ 20 dB", fit.SNR())
	}

	wPCM := steadyWindow(opusFromClient(t, wPkts, 111), 48000)
	wfit, err := audiotest.FitTones(wPCM, 48000, 600, 1000)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WebRTC client hears 600 Hz at %.3f, 1 kHz at %.3f, SNR %.1f dB", wfit.Amplitudes[0], wfit.Amplitudes[1], wfit.SNR())
	if wfit.Amplitudes[0] < wrtcAmp/2 || wfit.Amplitudes[1] > wrtcAmp/20 {
		t.Errorf("WebRTC client: 600 Hz %.3f (want about %.3f), own 1 kHz %.3f (want none)", wfit.Amplitudes[0], wrtcAmp, wfit.Amplitudes[1])
	}
}

// TestWebRTCStats: stats events report packets, bytes, loss, jitter and RTT for a WebRTC leg from
// its RTP and RTCP (D5): rtpbridge's sender reports, the client's receiver reports.
func TestWebRTCStats(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	peer, _ := pcmuLeg(t, c)
	wp, wl := webrtcOfferLeg(t, c, webrtcpeer.Opus)
	c.MustCall("stats.subscribe", map[string]any{"interval_ms": 1000}, nil)
	const seconds = 8
	background(t, func() { sendWebRTCTone(t, wp, "opus", seconds) })
	payloads := audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, seconds*8000, wrtcAmp, 600))
	background(t, func() {
		sendPaced(peer, rtp.Header{SequenceNumber: 1, Timestamp: 160, SSRC: 0xabc, Marker: true}, 160, 20*time.Millisecond, payloads)
	})

	type stats struct {
		EndpointID string `json:"endpoint_id"`
		Inbound    struct {
			Packets     uint64  `json:"packets"`
			Bytes       uint64  `json:"bytes"`
			PacketsLost int64   `json:"packets_lost"`
			JitterMS    float64 `json:"jitter_ms"`
		} `json:"inbound"`
		Outbound struct {
			Packets uint64 `json:"packets"`
			Bytes   uint64 `json:"bytes"`
		} `json:"outbound"`
		RTTMS *float64 `json:"rtt_ms"`
		Codec string   `json:"codec"`
		State string   `json:"state"`
	}
	var last stats
	deadline := time.Now().Add((seconds + 4) * time.Second)
	for time.Now().Before(deadline) {
		m := c.WaitEvent("stats", time.Until(deadline))
		var ev struct {
			Endpoints []stats `json:"endpoints"`
		}
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		for _, s := range ev.Endpoints {
			if s.EndpointID == wl.EndpointID {
				last = s
			}
		}
		if last.RTTMS != nil && last.Inbound.Packets > 200 && last.Outbound.Packets > 200 {
			break
		}
	}
	b, _ := json.Marshal(last)
	t.Logf("WebRTC leg stats: %s", b)
	if last.RTTMS == nil || *last.RTTMS < 0 || *last.RTTMS > 1000 {
		t.Errorf("rtt_ms %v, want a measured round trip", last.RTTMS)
	}
	if last.Inbound.Packets <= 200 || last.Inbound.Bytes == 0 || last.Outbound.Packets <= 200 || last.Outbound.Bytes == 0 {
		t.Errorf("packet counters: %s", b)
	}
	if last.Inbound.PacketsLost != 0 || last.Inbound.JitterMS < 0 || last.Inbound.JitterMS > 100 {
		t.Errorf("loss %d, jitter %.2f ms on loopback", last.Inbound.PacketsLost, last.Inbound.JitterMS)
	}
	if last.Codec != "opus" || last.State != "connected" {
		t.Errorf("codec %q state %q", last.Codec, last.State)
	}
}
