package server_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// Tone endpoints end to end (PROTOCOL.md §19): each tone played into a PCMU peer, its
// frequencies and cadence measured on what arrives, duration_ms and endpoint.tone.finished.

// createTone calls endpoint.create_tone and returns the endpoint id.
func createTone(t *testing.T, c *testserver.Client, params map[string]any) (string, time.Time) {
	t.Helper()
	var res struct {
		EndpointID string `json:"endpoint_id"`
		Tone       string `json:"tone"`
	}
	c.MustCall("endpoint.create_tone", params, &res)
	if res.EndpointID == "" || res.Tone != params["tone"] {
		t.Fatalf("create_tone result %+v for %v", res, params)
	}
	return res.EndpointID, time.Now()
}

// waitToneFinished waits for endpoint.tone.finished of id.
func waitToneFinished(t *testing.T, c *testserver.Client, id string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ev := c.WaitEvent(protocol.EventToneFinished, time.Until(deadline))
		at := time.Now()
		var data map[string]any
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data["endpoint_id"] == id {
			return at
		}
	}
}

// onOff splits 8 kHz pcm into 20 ms frames and reports for each whether it carries tone
// (RMS above 1/10 of the tone's) — the cadence as the peer heard it.
func onOff(pcm []int16) []bool {
	var out []bool
	for off := 0; off+160 <= len(pcm); off += 160 {
		var e float64
		for _, v := range pcm[off : off+160] {
			e += float64(v) * float64(v)
		}
		out = append(out, math.Sqrt(e/160) > 400)
	}
	return out
}

// edges returns the frame indexes where onOff changes value.
func edges(v []bool) []int {
	var out []int
	for i := 1; i < len(v); i++ {
		if v[i] != v[i-1] {
			out = append(out, i)
		}
	}
	return out
}

// TestToneE2E plays each tone of §19 with a duration into its own PCMU peer and checks
// frequencies, cadence edges (within one 20 ms frame), the length of what was sent and the
// finished event.
func TestToneE2E(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	for _, c := range []struct {
		tone     string
		freq     float64 // sine only
		want     []float64
		duration time.Duration
		edges    []time.Duration // on→off and off→on times
	}{
		{"ringback", 0, []float64{440, 480}, 6500 * time.Millisecond, []time.Duration{2 * time.Second, 6 * time.Second}},
		{"ringing", 0, []float64{440, 480}, 1500 * time.Millisecond, nil},
		{"busy", 0, []float64{480, 620}, 2200 * time.Millisecond, []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second}},
		{"beep", 0, []float64{1000}, 1500 * time.Millisecond, nil},
		{"sine", 1234, []float64{1234}, 1500 * time.Millisecond, nil},
	} {
		t.Run(c.tone, func(t *testing.T) {
			t.Parallel()
			cl := testserver.Dial(t, srv)
			cl.CreateSession()
			l := legFromOffer(t, cl, "recvonly", xPCMU.format())
			params := map[string]any{"tone": c.tone, "duration_ms": c.duration.Milliseconds()}
			if c.freq != 0 {
				params["frequency"] = c.freq
			}
			id, created := createTone(t, cl, params)
			at := waitToneFinished(t, cl, id, c.duration+3*time.Second)
			if d := at.Sub(created) - c.duration; d < -100*time.Millisecond || d > 100*time.Millisecond {
				t.Errorf("endpoint.tone.finished %v after creation, want %v", at.Sub(created), c.duration)
			}
			pkts := collectQuiet(l.peer, 1000, 200*time.Millisecond, 2*time.Second)
			checkOutgoing(t, pkts, 0, 160)
			pcm := decodeLeg(t, xPCMU, pkts)
			if got := time.Duration(len(pcm)) * time.Second / 8000; got != c.duration.Truncate(20*time.Millisecond) && got != c.duration.Truncate(20*time.Millisecond)+20*time.Millisecond {
				t.Errorf("%v of audio sent, want %v (duration_ms)", got, c.duration)
			}
			// Frequencies, from 50-450 ms (on in every cadence).
			on := pcm[400:3600]
			fit, err := audiotest.FitTones(on, 8000, c.want...)
			if err != nil {
				t.Fatal(err)
			}
			if fit.SNR() < 30 {
				t.Errorf("SNR %.1f dB against %v Hz: other frequencies present", fit.SNR(), c.want)
			}
			// §19: 8000 peak per component, a dual tone's sum halved.
			wantAmp := 8000.0 / 32768
			if len(c.want) == 2 {
				wantAmp /= 2
			}
			for i, a := range fit.Amplitudes {
				if math.Abs(a-wantAmp)/wantAmp > 0.05 {
					t.Errorf("%g Hz at amplitude %.4f, want %.4f", c.want[i], a, wantAmp)
				}
			}
			got := edges(onOff(pcm))
			if len(got) != len(c.edges) {
				t.Fatalf("cadence edges at frames %v, want at %v", got, c.edges)
			}
			for i, e := range c.edges {
				if d := time.Duration(got[i])*20*time.Millisecond - e; d < -20*time.Millisecond || d > 20*time.Millisecond {
					t.Errorf("cadence edge %d at %v, want %v ± 20 ms", i, time.Duration(got[i])*20*time.Millisecond, e)
				}
			}
		})
	}
}

// TestToneParamsE2E: validation, the state machine and durations of 0 and none.
func TestToneParamsE2E(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	for _, p := range []map[string]any{
		{},
		{"tone": "dialtone"},
		{"tone": "sine", "frequency": 19.9},
		{"tone": "sine", "frequency": 20001},
		{"tone": "beep", "frequency": 5}, // checked whenever present
		{"tone": "beep", "duration_ms": -1},
	} {
		c.ExpectError("endpoint.create_tone", p, protocol.CodeInvalidParams)
	}
	// duration_ms 0 finishes at once; the endpoint stays, finished, with no state_changed.
	id, _ := createTone(t, c, map[string]any{"tone": "beep", "duration_ms": 0})
	waitToneFinished(t, c, id, time.Second)
	info := c.SessionInfo()
	if len(info.Endpoints) != 1 || info.Endpoints[0].State != "finished" || info.Endpoints[0].EndpointType != "tone" ||
		info.Endpoints[0].Direction != "sendonly" || info.Endpoints[0].Codec != nil {
		t.Errorf("session.info endpoints %+v, want one finished sendonly tone with codec null", info.Endpoints)
	}
	// No duration: plays until removed; no finished event.
	l := legFromOffer(t, c, "recvonly", xPCMU.format())
	id2, _ := createTone(t, c, map[string]any{"tone": "ringing"})
	if n := len(l.peer.Collect(50, 3*time.Second)); n < 50 {
		t.Fatalf("only %d packets from a tone without duration", n)
	}
	c.MustCall("endpoint.remove", map[string]any{"endpoint_id": id2}, nil)
	time.Sleep(100 * time.Millisecond)
	l.peer.Drain()
	l.peer.ExpectNone(300 * time.Millisecond)
	// Tones are not files.
	c.ExpectError("endpoint.file.pause", map[string]any{"endpoint_id": id}, protocol.CodeEndpointError)
}
