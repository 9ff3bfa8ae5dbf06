package bridge

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
)

func frameOf(v int16) []int16 {
	f := make([]int16, frameSamples)
	for i := range f {
		f[i] = v
	}
	return f
}

// Frames cross in order, each way; the reader waits for a frame of slack after running dry,
// and a lone frame plays one tick late rather than never.
func TestPairCarriesFramesBothWays(t *testing.T) {
	a, b := NewPair(uuid.New(), uuid.New(), endpoint.SendRecv)
	got := make([]int16, frameSamples)
	a.WriteFrame(frameOf(1), time.Now())
	if b.ReadFrame(got, time.Now()) {
		t.Fatal("a single frame played without priming")
	}
	a.WriteFrame(frameOf(2), time.Now())
	for _, want := range []int16{1, 2} {
		if !b.ReadFrame(got, time.Now()) || got[0] != want || got[frameSamples-1] != want {
			t.Fatalf("b read %d, want %d", got[0], want)
		}
	}
	if b.ReadFrame(got, time.Now()) {
		t.Fatal("read from an empty ring")
	}
	b.WriteFrame(frameOf(7), time.Now())
	if a.ReadFrame(got, time.Now()) {
		t.Fatal("lone frame played at once")
	}
	if !a.ReadFrame(got, time.Now()) || got[0] != 7 {
		t.Fatalf("lone frame did not play on the next tick: %d", got[0])
	}
}

// A writer that runs ahead loses its oldest frames, counted; the ring never grows.
func TestRingDropsOldest(t *testing.T) {
	a, b := NewPair(uuid.New(), uuid.New(), endpoint.SendRecv)
	for i := 0; i < ringFrames+3; i++ {
		a.WriteFrame(frameOf(int16(i)), time.Now())
	}
	if d := a.Dropped(); d != 3 {
		t.Fatalf("dropped %d, want 3", d)
	}
	got := make([]int16, frameSamples)
	if !b.ReadFrame(got, time.Now()) || got[0] != 3 {
		t.Fatalf("oldest kept frame is %d, want 3", got[0])
	}
}

// Directions mirror, and closing one half stops both and runs OnClose once.
func TestMirrorAndClose(t *testing.T) {
	for d, want := range map[endpoint.Direction]endpoint.Direction{
		endpoint.SendRecv: endpoint.SendRecv, endpoint.SendOnly: endpoint.RecvOnly, endpoint.RecvOnly: endpoint.SendOnly,
	} {
		a, b := NewPair(uuid.New(), uuid.New(), d)
		if a.Direction() != d || b.Direction() != want {
			t.Errorf("%s: halves %s/%s", d, a.Direction(), b.Direction())
		}
	}
	a, b := NewPair(uuid.New(), uuid.New(), endpoint.SendRecv)
	calls := 0
	a.OnClose(func() { calls++ })
	b.OnClose(func() { calls++ })
	a.WriteFrame(frameOf(1), time.Now())
	a.WriteFrame(frameOf(1), time.Now())
	a.Close()
	b.Close()
	a.Close()
	if calls != 1 {
		t.Fatalf("OnClose ran %d times", calls)
	}
	if b.ReadFrame(make([]int16, frameSamples), time.Now()) {
		t.Fatal("audio crossed a closed bridge")
	}
	if a.Type() != "bridge" || a.CodecName() != "L16/48000" || !a.Relay() || a.Rate() != 48000 || a.PCM() == nil || a.RTP() != nil {
		t.Fatal("bridge leg description")
	}
}

// Frames cross without allocating.
func TestNoAllocs(t *testing.T) {
	a, b := NewPair(uuid.New(), uuid.New(), endpoint.SendRecv)
	in, out := frameOf(5), make([]int16, frameSamples)
	if n := testing.AllocsPerRun(500, func() {
		a.WriteFrame(in, time.Time{})
		b.ReadFrame(out, time.Time{})
	}); n != 0 {
		t.Fatalf("%v allocations per frame", n)
	}
}
