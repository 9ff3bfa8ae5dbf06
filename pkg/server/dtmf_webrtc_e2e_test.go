package server_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/internal/webrtcpeer"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// rawTrack is a pion TrackLocal that writes packets with the payload type the test gives
// (pion's static tracks stamp their codec's on everything): how a browser's RTCDTMFSender
// puts telephone-events on its audio stream.
type rawTrack struct {
	mu    sync.Mutex
	ws    webrtc.TrackLocalWriter
	ssrc  webrtc.SSRC
	bound chan struct{}
}

func newRawTrack() *rawTrack { return &rawTrack{bound: make(chan struct{})} }

func (r *rawTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ws, r.ssrc = ctx.WriteStream(), ctx.SSRC()
	close(r.bound)
	return ctx.CodecParameters()[0], nil
}

func (r *rawTrack) Unbind(webrtc.TrackLocalContext) error { return nil }
func (r *rawTrack) ID() string                            { return "audio" }
func (r *rawTrack) RID() string                           { return "" }
func (r *rawTrack) StreamID() string                      { return "webrtcpeer" }
func (r *rawTrack) Kind() webrtc.RTPCodecType             { return webrtc.RTPCodecTypeAudio }

func (r *rawTrack) write(t *testing.T, h rtp.Header, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h.Version, h.SSRC = 2, uint32(r.ssrc)
	if _, err := r.ws.WriteRTP(&h, payload); err != nil {
		t.Errorf("write: %v", err)
	}
}

// TestDTMFWebRTC: a browser-like pion client on an Opus WebRTC leg (telephone-event/48000)
// sends digits as RFC 4733 events — with lost and repeated packets and a long one — and each
// is reported once with its duration at 48 kHz; a digit injected into the WebRTC leg reaches
// the client as §16's packets on the leg's stream, on the negotiated telephone-event PT.
func TestDTMFWebRTC(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	wp, res := webrtcOfferLeg(t, c, webrtcpeer.Opus)
	tePT := sdpPT(res.SDPAnswer, "telephone-event/48000")
	if tePT < 0 {
		t.Fatalf("answer has no telephone-event/48000:\n%s", res.SDPAnswer)
	}
	pcmu, pcmuID := pcmuLeg(t, c) // the digits are forwarded to it too

	track := newRawTrack()
	if err := wp.Sender.ReplaceTrack(track); err != nil {
		t.Fatal(err)
	}
	select {
	case <-track.bound:
	case <-time.After(5 * time.Second):
		t.Fatal("track not bound")
	}
	presses := []tePressSpec{{'7', 120, clean}, {'0', 200, duplicated}, {'#', 1500, clean}, {'#', 100, noEnds}, {'A', 80, lossy}}
	goSend(t, func() {
		ts, seq := rand.Uint32(), uint16(rand.Uint32())
		for _, p := range presses {
			for _, x := range p.im.apply(tePress(p.digit, ts, p.ms, 48000)) {
				track.write(t, rtp.Header{PayloadType: uint8(tePT), SequenceNumber: seq, Timestamp: x.ts, Marker: x.marker}, x.payload)
				seq++
				time.Sleep(2 * time.Millisecond)
			}
			ts += (p.ms + 80) * 48
		}
	})
	got := dtmfEvents(t, collectEvents(t, c, protocol.EventDTMF, len(presses), 15*time.Second, time.Second))
	if len(got) != len(presses) {
		t.Fatalf("%d dtmf events %+v, want %d", len(got), got, len(presses))
	}
	for k, ev := range got {
		p := presses[k]
		want := int(p.ms)
		if p.im == noEnds {
			want -= 20
		}
		if ev.Digit != string(p.digit) || ev.EndpointID != res.EndpointID || ev.Source != "rfc4733" || ev.DurationMS < want-20 || ev.DurationMS > want+20 {
			t.Errorf("event %d: %+v, want %c of %d ms from %s", k, ev, p.digit, want, res.EndpointID)
		}
	}

	// Forwarded to the PCMU leg on its telephone-event PT 101, durations at 8000: the first
	// press (120 ms) ends with 960 ticks.
	var fwd []rtppeer.Packet
	for _, p := range collectQuiet(pcmu, 10000, 300*time.Millisecond, 5*time.Second) {
		if p.Header.PayloadType == 101 {
			fwd = append(fwd, p)
		}
	}
	if len(fwd) < 10 || fwd[0].Payload[0] != 7 || !fwd[0].Header.Marker {
		t.Fatalf("the PCMU leg received %d telephone-events: %+v", len(fwd), fwd)
	}
	for _, p := range fwd {
		if p.Payload[0] == 7 && p.Payload[1]&0x80 != 0 && binary.BigEndian.Uint16(p.Payload[2:]) != 960 {
			t.Errorf("forwarded end of 7: duration %d, want 960 (120 ms at 8000)", binary.BigEndian.Uint16(p.Payload[2:]))
		}
	}

	// From the PCMU leg to the WebRTC client: PT 101 of its telephone-event/48000, ×6.
	wp.Drain()
	goSend(t, func() { sendPresses(pcmu, 101, 0x77, 8000, []tePressSpec{{'3', 100, clean}}) })
	if got := dtmfEvents(t, collectEvents(t, c, protocol.EventDTMF, 1, 5*time.Second, 300*time.Millisecond)); len(got) != 1 || got[0].EndpointID != pcmuID || got[0].Digit != "3" {
		t.Fatalf("digit from the PCMU leg: %+v", got)
	}
	var back []webrtcpeer.Packet
	for _, p := range wp.Collect(1000, 300*time.Millisecond, 3*time.Second) {
		if p.Header.PayloadType == uint8(tePT) {
			back = append(back, p)
		}
	}
	if len(back) != 7 || binary.BigEndian.Uint16(back[6].Payload[2:]) != 4800 {
		t.Fatalf("the WebRTC client received %d telephone-events (%v), want 7 ending at 4800 ticks", len(back), back)
	}

	// Injection into the WebRTC leg.
	wp.Drain()
	c.MustCall("endpoint.dtmf.inject", map[string]any{"endpoint_id": res.EndpointID, "digit": "C", "duration_ms": 90, "volume": 12}, nil)
	pkts := wp.Collect(100, 500*time.Millisecond, 5*time.Second)
	var ev []webrtcpeer.Packet
	for _, p := range pkts {
		if p.Header.PayloadType == uint8(tePT) {
			ev = append(ev, p)
		}
	}
	if len(ev) != 7 { // ceil(90/20) = 5, + 2
		t.Fatalf("the client received %d telephone-event packets of %d, want 7", len(ev), len(pkts))
	}
	for k, p := range ev {
		end, dur := p.Payload[1]&0x80 != 0, binary.BigEndian.Uint16(p.Payload[2:])
		wantDur := uint16(90 * 48)
		if k < 4 {
			wantDur = uint16((k + 1) * 960)
		}
		if p.Payload[0] != 14 || end != (k >= 4) || p.Payload[1]&0x3f != 12 || dur != wantDur || p.Header.Marker != (k == 0) ||
			p.Header.Timestamp != ev[0].Header.Timestamp || (k > 0 && p.Header.SequenceNumber != ev[k-1].Header.SequenceNumber+1) {
			t.Errorf("packet %d: %s payload %x", k, fmt.Sprintf("%+v", p.Header), p.Payload)
		}
	}
}
