package server_test

import (
	"math"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

// Shared playback end to end (PROTOCOL.md §18): sessions playing one source with shared: true
// hear one stream; a late subscriber joins where it is; pause is per endpoint; the stream's
// end finishes every subscriber.

// stepsFile writes 3 s of a tone stepping up 400 Hz every 500 ms (400 … 2400 Hz): where in
// the file a piece of audio comes from shows in its frequency.
func stepsFile(t *testing.T, dir string) string {
	t.Helper()
	f := audiotest.FileFormat{Ext: ".wav", Rate: 16000, Channels: 1, Args: []string{"-c:a", "pcm_s16le", "-f", "wav"}}
	return audiotest.WriteExprFile(t, dir, "steps", f, "0.5*sin(2*PI*400*(1+floor(t/0.5))*t)", 3*time.Second)
}

// stepAt is the frequency of stepsFile at position p.
func stepAt(p time.Duration) float64 { return 400 * (1 + math.Floor(p.Seconds()/0.5)) }

func TestPlaybackSharedE2E(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv, dir := startPlayback(t, nil)
	path := stepsFile(t, dir)

	a := testserver.Dial(t, srv)
	a.CreateSession()
	la := legFromOffer(t, a, "recvonly", xPCMU.format())
	b := testserver.Dial(t, srv)
	b.CreateSession()
	lb := legFromOffer(t, b, "recvonly", xPCMU.format())

	ida, startA := createFile(t, a, map[string]any{"source": path, "shared": true})
	var info struct {
		Endpoints []map[string]any `json:"endpoints"`
	}
	a.MustCall("session.info", nil, &info)
	for _, ep := range info.Endpoints {
		id, shared := ep["shared_playback_id"]
		switch {
		case ep["endpoint_id"] == ida && id != path:
			t.Errorf("shared file endpoint: shared_playback_id %v, want the source path %s", id, path)
		case ep["endpoint_id"] != ida && shared:
			t.Errorf("endpoint %v is not a shared playback but has shared_playback_id %v", ep["endpoint_id"], id)
		}
	}
	if e := a.ExpectError("endpoint.file.seek", map[string]any{"endpoint_id": ida, "position_ms": 100}, protocol.CodeEndpointError); e.Message == "" {
		t.Error("seek on a shared endpoint: no message")
	}
	time.Sleep(time.Second)
	// B joins a second in, with its own start_ms and loop_count, which do not apply.
	idb, startB := createFile(t, b, map[string]any{"source": path, "shared": true, "start_ms": 2500, "loop_count": 3})
	joinedAt := startB.Sub(startA)
	time.Sleep(400 * time.Millisecond)
	b.MustCall("endpoint.file.pause", map[string]any{"endpoint_id": idb}, nil)
	time.Sleep(500 * time.Millisecond)
	b.MustCall("endpoint.file.resume", map[string]any{"endpoint_id": idb}, nil)

	_, endA := waitFinished(t, a, ida, 5*time.Second)
	_, endB := waitFinished(t, b, idb, 5*time.Second)
	if d := endA.Sub(startA); d < 2900*time.Millisecond || d > 3100*time.Millisecond {
		t.Errorf("first subscriber finished after %v, want the file's 3 s", d)
	}
	if d := endB.Sub(endA); d < -100*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("subscribers finished %v apart: the stream's end finishes both", d)
	}

	segA := segmentsAt(decodeLeg(t, xPCMU, collectQuiet(la.peer, 1000, 200*time.Millisecond, 2*time.Second)))
	segB := segmentsAt(decodeLeg(t, xPCMU, collectQuiet(lb.peer, 1000, 200*time.Millisecond, 2*time.Second)))
	// A hears the whole file in order: 30 segments of 100 ms, 5 per step.
	if len(segA) < 29 || len(segA) > 30 {
		t.Fatalf("first subscriber got %d segments of 100 ms, want 30: %v", len(segA), segA)
	}
	for i, f := range segA {
		if want := stepAt(time.Duration(i)*100*time.Millisecond + 50*time.Millisecond); math.Abs(f-want) > 20 {
			t.Errorf("first subscriber, segment %d: %g Hz, want %g", i, f, want)
		}
	}
	// B starts where the stream was when it joined (not at its own start_ms 2.5 s) and,
	// with 500 ms paused, hears about 3 s − join − 0.5 s.
	if want := stepAt(joinedAt + 50*time.Millisecond); math.Abs(segB[0]-want) > 20 && math.Abs(segB[0]-stepAt(joinedAt+150*time.Millisecond)) > 20 {
		t.Errorf("second subscriber starts at %g Hz, want %g (the stream at %v)", segB[0], want, joinedAt)
	}
	wantB := 3*time.Second - joinedAt - 500*time.Millisecond
	if got := time.Duration(len(segB)) * 100 * time.Millisecond; got < wantB-300*time.Millisecond || got > wantB+200*time.Millisecond {
		t.Errorf("second subscriber heard %v, want about %v", got, wantB)
	}
	if last := segB[len(segB)-1]; last != 2400 {
		t.Errorf("second subscriber ends at %g Hz, want 2400 (the stream's end)", last)
	}
}

// segmentsAt is segments for 8 kHz audio: the dominant frequency of each 100 ms.
func segmentsAt(pcm []int16) []float64 { return segments(pcm) }
