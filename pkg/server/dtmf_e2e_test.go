package server_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// End-to-end DTMF (issue 14, PROTOCOL.md §16, §31): digits sent by real UDP peers as RFC 4733
// events are reported once each; injected digits are checked field by field as a peer
// receives them.

// dtmfEvent is a dtmf event's data.
type dtmfEvent struct {
	EndpointID string `json:"endpoint_id"`
	Digit      string `json:"digit"`
	DurationMS int    `json:"duration_ms"`
	Source     string `json:"source"`
}

// collectEvents gathers events called name until n have come (then waits settle more for any
// extra) or timeout passes.
func collectEvents(t *testing.T, c *testserver.Client, name string, n int, timeout, settle time.Duration) []testserver.Message {
	t.Helper()
	var out []testserver.Message
	deadline := time.After(timeout)
	var extra <-chan time.Time
	for {
		select {
		case m, ok := <-c.Messages:
			if !ok {
				t.Fatal("connection closed")
			}
			if m.Event != name {
				continue
			}
			out = append(out, m)
			if len(out) == n {
				extra = time.After(settle)
			}
		case <-extra:
			return out
		case <-deadline:
			return out
		}
	}
}

func dtmfEvents(t *testing.T, msgs []testserver.Message) []dtmfEvent {
	t.Helper()
	out := make([]dtmfEvent, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Data, &out[i]); err != nil {
			t.Fatalf("dtmf event %s: %v", m.Raw, err)
		}
	}
	return out
}

// goSend runs a peer's sending in a goroutine the test owns: the test's end waits for it, so
// nothing is sent on a socket that its cleanup closed.
func goSend(t *testing.T, send func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		send()
	}()
	t.Cleanup(func() { <-done })
}

// tePacket is one telephone-event packet a peer sends.
type tePacket struct {
	ts      uint32
	marker  bool
	payload []byte
}

// tePress is an RFC 4733 sender's packets for one key press of ms at clock from ts: one per
// 20 ms with the duration so far (the first marked), three end packets; presses beyond 65535
// ticks in segments (§2.5.1.5), each new one's timestamp the previous one's plus its length.
func tePress(digit byte, ts, ms, clock uint32) []tePacket {
	id := map[byte]byte{'*': 10, '#': 11, 'A': 12, 'B': 13, 'C': 14, 'D': 15}[digit]
	if digit >= '0' && digit <= '9' {
		id = digit - '0'
	}
	ticks, step := ms*clock/1000, clock/50
	seg := uint32(0xffff) - uint32(0xffff)%step
	var out []tePacket
	for e := step; e < ticks; e += step {
		k := (e - 1) / seg
		out = append(out, tePacket{ts + k*seg, e == step, dtmfPayload(id, false, 10, uint16(e-k*seg))})
	}
	k := (ticks - 1) / seg
	for range 3 {
		out = append(out, tePacket{ts + k*seg, len(out) == 0, dtmfPayload(id, true, 10, uint16(ticks-k*seg))})
	}
	return out
}

// impairment changes a press's packets on the way.
type impairment string

const (
	clean      impairment = "clean"
	duplicated impairment = "duplicated"  // every packet twice
	noEnds     impairment = "no-ends"     // all three end packets lost
	reordered  impairment = "reordered"   // neighbours swapped
	lossy      impairment = "lossy-start" // the marked first packet and some updates lost
)

func (im impairment) apply(p []tePacket) []tePacket {
	var out []tePacket
	switch im {
	case duplicated:
		for _, x := range p {
			out = append(out, x, x)
		}
	case noEnds:
		out = p[:len(p)-3]
	case reordered:
		out = append(out, p...)
		for i := 0; i+1 < len(out); i += 2 {
			out[i], out[i+1] = out[i+1], out[i]
		}
	case lossy:
		for i, x := range p {
			if i == 0 || i%3 == 1 && !(x.payload[1]&0x80 != 0) {
				continue
			}
			out = append(out, x)
		}
	default:
		out = p
	}
	return out
}

// teScript is a sequence of presses with their impairments.
type tePressSpec struct {
	digit byte
	ms    uint32
	im    impairment
}

// sendPresses sends the presses from peer on PT pt at clock, 2 ms apart (the detector goes by
// timestamps, not arrival), 80 ms of timestamps between presses.
func sendPresses(peer *rtppeer.Peer, pt uint8, ssrc, clock uint32, presses []tePressSpec) {
	ts := rand.Uint32()
	seq := uint16(rand.Uint32())
	for _, p := range presses {
		for _, x := range p.im.apply(tePress(p.digit, ts, p.ms, clock)) {
			peer.Send(rtp.Header{PayloadType: pt, SequenceNumber: seq, Timestamp: x.ts, SSRC: ssrc, Marker: x.marker}, x.payload)
			seq++
			time.Sleep(2 * time.Millisecond)
		}
		ts += p.ms*clock/1000 + 80*clock/1000
	}
}

// TestDTMFDetectRFC4733: three legs of different codecs and telephone-event clocks — PCMU and
// G.722 at 8000, Opus at 48000 — each send digits with duplicated, lost, reordered end and
// start packets, the same digit twice in a row, a digit longer than 65535 ticks, and a last
// digit whose end never comes. Each is reported once, by its leg, in order, with its duration
// (±20 ms), source rfc4733, and counted in rtpbridge_dtmf_events_total; the forwarded copies
// are not reported again.
func TestDTMFDetectRFC4733(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	type legSpec struct {
		x     xcodec
		te    string
		clock uint32
		long  uint32 // ms beyond 65535 ticks
	}
	specs := []legSpec{
		{xPCMU, "101 telephone-event/8000", 8000, 8500},
		{xOpus, "110 telephone-event/48000", 48000, 1500},
		{xG722, "101 telephone-event/8000", 8000, 8300},
	}
	legs := make([]*leg, len(specs))
	for i, sp := range specs {
		legs[i] = offerLeg(t, c, sp.x, sp.te)
	}
	before := srv.MetricValue(t, "rtpbridge_dtmf_events_total")
	total := 0
	for i, sp := range specs {
		presses := []tePressSpec{
			{'1', 100, clean}, {'2', 160, duplicated}, {'3', 200, noEnds}, {'3', 120, clean},
			{'4', 100, reordered}, {'5', sp.long, clean}, {'*', 140, lossy}, {'5', 100, noEnds},
			{'5', 100, lossy}, {'D', 60, reordered}, {'#', 140, noEnds},
		}
		pt := uint8(sdpPT(legs[i].sdp, fmt.Sprintf("telephone-event/%d", sp.clock)))
		goSend(t, func() { sendPresses(legs[i].peer, pt, 0x5000+uint32(i), sp.clock, presses) })
		// The last digit has no end: reported 3 s after its last packet.
		got := dtmfEvents(t, collectEvents(t, c, protocol.EventDTMF, len(presses), 20*time.Second, time.Second))
		if len(got) != len(presses) {
			t.Fatalf("%s leg: %d dtmf events %+v, want %d", sp.x.name, len(got), got, len(presses))
		}
		for k, ev := range got {
			p := presses[k]
			want := p.ms
			if p.im == noEnds {
				want -= 20 // the last update seen is one packet short of the press
			}
			if ev.Digit != string(p.digit) || ev.EndpointID != legs[i].id || ev.Source != "rfc4733" {
				t.Errorf("%s leg, event %d: %+v, want digit %c from %s, source rfc4733", sp.x.name, k, ev, p.digit, legs[i].id)
			}
			if d := ev.DurationMS - int(want); d < -20 || d > 20 {
				t.Errorf("%s leg, event %d (%c, %s): %d ms, want %d ± 20", sp.x.name, k, p.digit, p.im, ev.DurationMS, want)
			}
		}
		total += len(presses)
	}
	if v := srv.MetricValue(t, "rtpbridge_dtmf_events_total") - before; int(v) != total {
		t.Errorf("rtpbridge_dtmf_events_total rose by %v, %d digits were reported", v, total)
	}
}

// TestDTMFInject: endpoint.dtmf.inject into a PCMU leg (clock 8000) and an Opus leg (clock
// 48000) while they receive audio. The peer gets exactly §16's packets — n = ceil(d/20 ms);
// n−1 updates with E=0 and 20 ms steps of duration, the first marked; three E=1 ends with the
// full duration; volume as asked; one timestamp; 20 ms apart — on the leg's own stream: the
// same SSRC as the audio, sequence numbers continuing the audio's with no gap, no audio while
// the digit plays, and the audio after it resuming (marked) at a timestamp past the event.
func TestDTMFInject(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dst     xcodec
		te      string
		clock   uint32
		ms      uint32
		digit   string
		eventID byte
	}{
		{"PCMU", xPCMU, "101 telephone-event/8000", 8000, 100, "9", 9},
		{"opus", xOpus, "110 telephone-event/48000", 48000, 250, "b", 13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.Start(t, nil, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			src := offerLeg(t, c, xPCMU, "101 telephone-event/8000")
			dst := offerLeg(t, c, tc.dst, tc.te)
			tePT := uint8(sdpPT(dst.sdp, fmt.Sprintf("telephone-event/%d", tc.clock)))

			// Audio from src for 1.6 s; the digit is injected 0.5 s in.
			stop := make(chan struct{})
			go func() {
				h := rtp.Header{PayloadType: 0, SequenceNumber: 100, Timestamp: 5000, SSRC: 0xabc, Marker: true}
				payload := make([]byte, 160)
				for i := range payload {
					payload[i] = 0xff // µ-law silence
				}
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for range 80 {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					src.peer.Send(h, payload)
					h.SequenceNumber++
					h.Timestamp += 160
					h.Marker = false
				}
			}()
			defer close(stop)
			time.Sleep(500 * time.Millisecond)
			c.MustCall("endpoint.dtmf.inject", map[string]any{"endpoint_id": dst.id, "digit": tc.digit, "duration_ms": tc.ms, "volume": 7}, nil)
			got := collectQuiet(dst.peer, 1000, 300*time.Millisecond, 5*time.Second)

			n := int((tc.ms + 19) / 20)
			first, last := -1, -1
			for i, p := range got {
				if p.Header.PayloadType == tePT {
					if first < 0 {
						first = i
					}
					last = i
				} else if p.Header.PayloadType != tc.dst.pt {
					t.Fatalf("packet %d: PT %d", i, p.Header.PayloadType)
				}
			}
			if first < 1 || last == len(got)-1 {
				t.Fatalf("no audio around the event: %d packets, event at %d..%d", len(got), first, last)
			}
			ev := got[first : last+1]
			if len(ev) != n+2 {
				t.Fatalf("%d packets from the first event packet to the last, want %d (no audio between them)", len(ev), n+2)
			}
			full := uint16(min(uint64(tc.ms)*uint64(tc.clock)/1000, 65535))
			for k, p := range ev {
				if p.Header.PayloadType != tePT || len(p.Payload) != 4 {
					t.Fatalf("event packet %d: PT %d, %d bytes (audio during the digit?)", k, p.Header.PayloadType, len(p.Payload))
				}
				id, end, vol, dur := p.Payload[0], p.Payload[1]&0x80 != 0, p.Payload[1]&0x3f, binary.BigEndian.Uint16(p.Payload[2:])
				wantEnd, wantDur := k >= n-1, full
				if !wantEnd {
					wantDur = uint16(uint32(k+1) * tc.clock / 50)
				}
				if id != tc.eventID || end != wantEnd || vol != 7 || dur != wantDur || p.Payload[1]&0x40 != 0 {
					t.Errorf("event packet %d: event %d E=%v volume %d duration %d, want %d E=%v 7 %d", k, id, end, vol, dur, tc.eventID, wantEnd, wantDur)
				}
				if p.Header.Marker != (k == 0) {
					t.Errorf("event packet %d: marker %v", k, p.Header.Marker)
				}
				if p.Header.Timestamp != ev[0].Header.Timestamp {
					t.Errorf("event packet %d: timestamp %d, the event's is %d", k, p.Header.Timestamp, ev[0].Header.Timestamp)
				}
			}
			span := ev[len(ev)-1].At.Sub(ev[0].At)
			if want := time.Duration(n+1) * 20 * time.Millisecond; span < want-15*time.Millisecond || span > want+60*time.Millisecond {
				t.Errorf("the event's packets span %v, want %v (20 ms apart)", span, want)
			}
			// One continuous stream: one SSRC, sequence +1 throughout.
			for i := 1; i < len(got); i++ {
				if got[i].Header.SSRC != got[0].Header.SSRC {
					t.Fatalf("packet %d: SSRC %08x, stream's is %08x", i, got[i].Header.SSRC, got[0].Header.SSRC)
				}
				if got[i].Header.SequenceNumber != got[i-1].Header.SequenceNumber+1 {
					t.Fatalf("packet %d: sequence %d after %d", i, got[i].Header.SequenceNumber, got[i-1].Header.SequenceNumber)
				}
			}
			before, after := got[first-1].Header, got[last+1].Header
			if d := int32(ev[0].Header.Timestamp - before.Timestamp); d <= 0 || d > int32(tc.clock/10) {
				t.Errorf("the event's timestamp is %d ticks after the audio before it", d)
			}
			spanTicks := uint32(n+1) * tc.clock / 50
			if d := after.Timestamp - ev[0].Header.Timestamp; d < spanTicks || d > spanTicks+tc.clock/10 {
				t.Errorf("audio resumes %d ticks after the event's timestamp, want past its span of %d", d, spanTicks)
			}
			if !after.Marker {
				t.Error("the first audio packet after the event has no marker bit")
			}
		})
	}
}

// TestDTMFInjectErrors: §6's errors.
func TestDTMFInjectErrors(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	withTE := offerLeg(t, c, xPCMU, "101 telephone-event/8000")
	without := offerLeg(t, c, xPCMA)
	tone, _ := createTone(t, c, map[string]any{"tone": "ringback"})
	inject := func(params map[string]any) map[string]any { return params }

	for _, bad := range []map[string]any{
		inject(map[string]any{"endpoint_id": withTE.id}),                                     // no digit
		inject(map[string]any{"endpoint_id": withTE.id, "digit": "E"}),                       // not a digit
		inject(map[string]any{"endpoint_id": withTE.id, "digit": "12"}),                      // two
		inject(map[string]any{"endpoint_id": withTE.id, "digit": ""}),                        // none
		inject(map[string]any{"endpoint_id": withTE.id, "digit": "1", "duration_ms": 0}),     // too short
		inject(map[string]any{"endpoint_id": withTE.id, "digit": "1", "duration_ms": 10001}), // too long
		inject(map[string]any{"endpoint_id": withTE.id, "digit": "1", "volume": 64}),         // too loud
		inject(map[string]any{"endpoint_id": withTE.id, "digit": "1", "volume": -1}),         // negative
		inject(map[string]any{"endpoint_id": "not-a-uuid", "digit": "1"}),                    // bad id
		inject(map[string]any{"digit": "1"}),                                                 // no id
		inject(map[string]any{"endpoint_id": withTE.id, "digit": "1", "duration_ms": "160"}), // wrong type
	} {
		c.ExpectError("endpoint.dtmf.inject", bad, protocol.CodeInvalidParams)
	}
	for _, tc := range []struct {
		params map[string]any
		msg    string
	}{
		{map[string]any{"endpoint_id": "6f1c0000-0000-4000-8000-000000000000", "digit": "1"}, "Endpoint not found"},
		{map[string]any{"endpoint_id": tone, "digit": "1"}, "Cannot inject DTMF into file endpoint"},
		{map[string]any{"endpoint_id": without.id, "digit": "1"}, "Endpoint has no telephone-event payload type"},
	} {
		if e := c.ExpectError("endpoint.dtmf.inject", tc.params, protocol.CodeEndpointError); e.Message != tc.msg {
			t.Errorf("%v: %q, want %q", tc.params, e.Message, tc.msg)
		}
	}
	// One at a time per session; the next is accepted once the first has finished.
	c.MustCall("endpoint.dtmf.inject", map[string]any{"endpoint_id": withTE.id, "digit": "a", "duration_ms": 200}, nil)
	if e := c.ExpectError("endpoint.dtmf.inject", map[string]any{"endpoint_id": withTE.id, "digit": "1"}, protocol.CodeEndpointError); e.Message != "DTMF injection already in progress" {
		t.Errorf("second injection: %q", e.Message)
	}
	time.Sleep(300 * time.Millisecond)
	c.MustCall("endpoint.dtmf.inject", map[string]any{"endpoint_id": withTE.id, "digit": "1", "duration_ms": 40}, nil)
	time.Sleep(150 * time.Millisecond) // 40 ms: four packets over 60 ms
	// Removing the target cancels the injection: another may start at once.
	c.MustCall("endpoint.dtmf.inject", map[string]any{"endpoint_id": withTE.id, "digit": "2", "duration_ms": 5000}, nil)
	c.MustCall("endpoint.remove", map[string]any{"endpoint_id": withTE.id}, nil)
	other := offerLeg(t, c, xPCMU, "101 telephone-event/8000")
	c.MustCall("endpoint.dtmf.inject", map[string]any{"endpoint_id": other.id, "digit": "3"}, nil)
}
