package server_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// In-band DTMF and fax tones end to end (PROTOCOL.md §31): tones from sox, encoded by the
// ffmpeg CLI in the leg's codec, sent by a real UDP peer; what the session's shared decode
// hears is reported.

// inbandTone is one digit in an in-band test signal.
type inbandTone struct {
	digit byte
	dBm0  float64
	ms    int
}

// inbandSignal renders tones with sox at rate, 300 ms of silence first, a 60-95 ms pause after
// each.
func inbandSignal(t *testing.T, rate int, tones []inbandTone) []int16 {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	pcm := make([]int16, rate*3/10)
	for _, tn := range tones {
		lo, hi, ok := audiotest.DTMFFreqs(tn.digit)
		if !ok {
			t.Fatalf("no digit %q", tn.digit)
		}
		pcm = append(pcm, audiotest.SoxDualTone(t, rate, lo, hi, tn.dBm0, tn.dBm0, tn.ms)...)
		pcm = append(pcm, make([]int16, rate*(60+rng.IntN(36))/1000)...)
	}
	return append(pcm, make([]int16, rate/5)...)
}

func allInbandTones() []inbandTone {
	var tones []inbandTone
	for i, c := range []byte("123A456B789C*0#D") {
		tones = append(tones, inbandTone{c, -4, 45 + 10*(i%4)}, inbandTone{c, -24, 120})
	}
	return tones
}

// sendAudio sends payloads from l's peer as one stream of codec x, one per pace.
func sendAudio(l *leg, x xcodec, payloads [][]byte, pace time.Duration) {
	h := rtp.Header{PayloadType: x.pt, SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32(), SSRC: rand.Uint32(), Marker: true}
	sendPaced(l.peer, h, x.step, pace, payloads)
}

// checkInband compares dtmf events with the tones sent from endpoint id.
func checkInband(t *testing.T, got []dtmfEvent, tones []inbandTone, id string) {
	t.Helper()
	if len(got) != len(tones) {
		var s []byte
		for _, e := range got {
			s = append(s, e.Digit...)
		}
		t.Fatalf("%d dtmf events (%q), want %d", len(got), s, len(tones))
	}
	for k, ev := range got {
		tn := tones[k]
		if ev.Digit != string(tn.digit) || ev.Source != "inband" || ev.EndpointID != id || ev.DurationMS < tn.ms-20 || ev.DurationMS > tn.ms+20 {
			t.Errorf("event %d: %+v, want in-band %c of %d ms from %s", k, ev, tn.digit, tn.ms, id)
		}
	}
}

// TestDTMFInband: legs whose negotiation has no telephone-event (inband_dtmf "auto") speaking
// PCMU, PCMA, G.722 and Opus send the 16 digits at -4 and -24 dBm0, 45 to 120 ms long: each is
// reported once, in order, with source inband and its duration (±20 ms). Fax detection runs on
// the same leg meanwhile and hears no fax tone in them.
func TestDTMFInband(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	tones := allInbandTones()
	for _, x := range xCodecs {
		t.Run(x.name, func(t *testing.T) {
			srv := testserver.Start(t, nil, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			src := offerLeg(t, c, x)
			offerLeg(t, c, xPCMU) // where the audio goes
			c.MustCall("fax_detect.start", map[string]any{"endpoint_id": src.id}, nil)
			time.Sleep(400 * time.Millisecond) // the in-band tap is set up on the session's timer
			rate := audiotest.CodecSampleRate(x.name)
			payloads := audiotest.EncodePayloads(t, x.name, inbandSignal(t, rate, tones))
			before := srv.MetricValue(t, "rtpbridge_dtmf_events_total")
			goSend(t, func() { sendAudio(src, x, payloads, 5*time.Millisecond) })
			msgs := collectEvents(t, c, protocol.EventDTMF, len(tones), 20*time.Second, time.Second)
			checkInband(t, dtmfEvents(t, msgs), tones, src.id)
			if v := srv.MetricValue(t, "rtpbridge_dtmf_events_total") - before; int(v) != len(tones) {
				t.Errorf("rtpbridge_dtmf_events_total rose by %v for %d digits", v, len(tones))
			}
		})
	}
}

// TestDTMFInbandModes: inband_dtmf "auto" leaves legs with telephone-event alone (their
// digits come as events), "always" detects tones on them too, "off" on none.
func TestDTMFInbandModes(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	tones := allInbandTones()[:8]
	payloads := audiotest.EncodePayloads(t, "PCMU", inbandSignal(t, 8000, tones))
	for _, tc := range []struct {
		mode    string
		withTE  bool
		detects bool
	}{
		{"auto", true, false},
		{"always", true, true},
		{"off", false, false},
	} {
		t.Run(fmt.Sprintf("%s/te=%v", tc.mode, tc.withTE), func(t *testing.T) {
			srv := testserver.Start(t, func(cfg *config.Config) { cfg.InbandDTMF = tc.mode }, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			var src *leg
			if tc.withTE {
				src = offerLeg(t, c, xPCMU, "101 telephone-event/8000")
			} else {
				src = offerLeg(t, c, xPCMU)
			}
			offerLeg(t, c, xPCMU)
			time.Sleep(400 * time.Millisecond)
			goSend(t, func() { sendAudio(src, xPCMU, payloads, 5*time.Millisecond) })
			want := 0
			if tc.detects {
				want = len(tones)
			}
			got := dtmfEvents(t, collectEvents(t, c, protocol.EventDTMF, max(want, 1), 4*time.Second, time.Second))
			if !tc.detects {
				if len(got) != 0 {
					t.Fatalf("%d dtmf events with inband_dtmf %q: %+v", len(got), tc.mode, got)
				}
				return
			}
			checkInband(t, got, tones, src.id)
		})
	}
}

// faxEventMsg is a fax.* event's data.
type faxEventMsg struct {
	EndpointID string `json:"endpoint_id"`
	Error      string `json:"error"`
}

// TestFaxDetect: fax_detect.start on PCMU, G.722 and Opus legs; a fax caller's CNG (1100 Hz,
// 0.5 s on, 3 s off) and a called fax's CED (2100 Hz, with phase reversals) from sox, sent in
// real time, are each reported once (per burst), within 300 ms of their onset; session.info
// lists the endpoint while detection is on; after fax_detect.stop nothing is reported.
func TestFaxDetect(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	for _, x := range []xcodec{xPCMU, xG722, xOpus} {
		t.Run(x.name, func(t *testing.T) {
			t.Parallel()
			srv := testserver.Start(t, nil, server.Tuning{})
			c := testserver.Dial(t, srv)
			c.CreateSession()
			src := offerLeg(t, c, x)
			offerLeg(t, c, xPCMU)
			c.MustCall("fax_detect.start", map[string]any{"endpoint_id": src.id}, nil)
			var info struct {
				FaxDetectActive []string `json:"fax_detect_active"`
			}
			c.MustCall("session.info", nil, &info)
			if len(info.FaxDetectActive) != 1 || info.FaxDetectActive[0] != src.id {
				t.Fatalf("fax_detect_active %v, want [%s]", info.FaxDetectActive, src.id)
			}

			rate := audiotest.CodecSampleRate(x.name)
			vol := fmt.Sprintf("%.6f", audiotest.DBm0Volume(-12))
			silence := func(ms int) []int16 { return make([]int16, rate*ms/1000) }
			var pcm []int16
			var onsets []int // frame index of each tone's start
			var kinds []string
			add := func(kind string, tone []int16) {
				onsets = append(onsets, len(pcm)/(rate/50))
				kinds = append(kinds, kind)
				pcm = append(pcm, tone...)
			}
			pcm = append(pcm, silence(400)...)
			for range 2 {
				add(protocol.EventFaxCNGDetected, audiotest.Sox(t, rate, []string{"-n"}, "synth", "0.5", "sine", "1100", "vol", vol))
				pcm = append(pcm, silence(3000)...)
			}
			var ced []int16
			for i := range 4 {
				ced = append(ced, audiotest.Sox(t, rate, []string{"-n"}, "synth", "0.45", "sine", "2100", "0", fmt.Sprint(50*(i%2)), "vol", vol)...)
			}
			add(protocol.EventFaxCEDDetected, ced)
			pcm = append(pcm, silence(500)...)
			payloads := audiotest.EncodePayloads(t, x.name, pcm)

			// Real time: the time each frame went out is when its audio "happened".
			sentAt := make([]time.Time, len(payloads))
			var mu sync.Mutex
			stop := make(chan struct{})
			goSend(t, func() {
				h := rtp.Header{PayloadType: x.pt, SequenceNumber: 7, Timestamp: 99, SSRC: 0xfa5, Marker: true}
				start := time.Now()
				for i, p := range payloads {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					sentAt[i] = time.Now()
					mu.Unlock()
					src.peer.Send(h, p)
					h.SequenceNumber++
					h.Timestamp += x.step
					h.Marker = false
					time.Sleep(time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond)))
				}
			})
			for k, kind := range kinds {
				m := c.WaitEvent(kind, 6*time.Second)
				at := time.Now()
				var ev faxEventMsg
				if err := json.Unmarshal(m.Data, &ev); err != nil || ev.EndpointID != src.id {
					t.Fatalf("%s: %s", kind, m.Raw)
				}
				mu.Lock()
				onset := sentAt[onsets[k]]
				mu.Unlock()
				if d := at.Sub(onset); onset.IsZero() || d < 0 || d > 300*time.Millisecond {
					t.Errorf("%s %d: reported %v after the tone's onset, want within 300 ms", kind, k, d)
				} else {
					t.Logf("%s %d: reported %v after the onset", kind, k, d.Round(time.Millisecond))
				}
			}
			// Nothing after stop.
			close(stop)
			c.MustCall("fax_detect.stop", map[string]any{"endpoint_id": src.id}, nil)
			c.MustCall("session.info", nil, &info)
			if len(info.FaxDetectActive) != 0 {
				t.Errorf("fax_detect_active %v after stop", info.FaxDetectActive)
			}
			e := c.ExpectError("fax_detect.stop", map[string]any{"endpoint_id": src.id}, protocol.CodeFaxDetectError)
			if e.Message != "Fax detection not active for endpoint" {
				t.Errorf("stop again: %q", e.Message)
			}
			goSend(t, func() { sendAudio(src, x, payloads[onsets[0]:onsets[0]+40], 20*time.Millisecond) })
			if got := collectEvents(t, c, protocol.EventFaxCNGDetected, 1, 1500*time.Millisecond, 0); len(got) != 0 {
				t.Errorf("fax.cng_detected after fax_detect.stop: %s", got[0].Raw)
			}
		})
	}
}

// TestFaxDetectErrors: FAX_DETECT_ERROR for an unknown endpoint; INVALID_PARAMS without one.
func TestFaxDetectErrors(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	l := offerLeg(t, c, xPCMU)
	unknown := map[string]any{"endpoint_id": "6f1c0000-0000-4000-8000-000000000000"}
	for _, m := range []string{"fax_detect.start", "fax_detect.stop"} {
		if e := c.ExpectError(m, unknown, protocol.CodeFaxDetectError); e.Message != "Endpoint not found" {
			t.Errorf("%s: %q", m, e.Message)
		}
		c.ExpectError(m, map[string]any{}, protocol.CodeInvalidParams)
		c.ExpectError(m, map[string]any{"endpoint_id": "x"}, protocol.CodeInvalidParams)
	}
	c.ExpectError("fax_detect.stop", map[string]any{"endpoint_id": l.id}, protocol.CodeFaxDetectError)
	// Starting twice restarts; one stop ends it.
	c.MustCall("fax_detect.start", map[string]any{"endpoint_id": l.id}, nil)
	c.MustCall("fax_detect.start", map[string]any{"endpoint_id": l.id}, nil)
	c.MustCall("fax_detect.stop", map[string]any{"endpoint_id": l.id}, nil)
	c.ExpectError("fax_detect.stop", map[string]any{"endpoint_id": l.id}, protocol.CodeFaxDetectError)
}
