package tone

import (
	"math"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// play reads frames until the tone stops sending or max frames, returning the samples.
func play(t *testing.T, tn *Tone, max int) []int16 {
	t.Helper()
	var out []int16
	frame := make([]int16, endpoint.FrameSamples(tn.Rate()))
	for range max {
		if !tn.ReadFrame(frame, time.Time{}) {
			break
		}
		out = append(out, frame...)
	}
	return out
}

func TestCadences(t *testing.T) {
	for _, c := range []struct {
		name     string
		freqs    []float64
		on, off  int // ms
		duration time.Duration
	}{
		{"ringback", []float64{440, 480}, 2000, 4000, 13 * time.Second},
		{"ringing", []float64{440, 480}, 0, 0, 3 * time.Second},
		{"busy", []float64{480, 620}, 500, 500, 3 * time.Second},
		{"beep", []float64{1000}, 0, 0, 2 * time.Second},
		{"sine", []float64{2345}, 0, 0, 2 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, err := Lookup(c.name, 2345)
			if err != nil {
				t.Fatal(err)
			}
			s := &recorder{}
			tn := New(uuid.New(), spec, c.duration)
			if err := tn.Start(nil, s); err != nil {
				t.Fatal(err)
			}
			pcm := play(t, tn, 10000)
			if got := time.Duration(len(pcm)) * time.Second / Rate; got != c.duration {
				t.Errorf("generated %v, want duration_ms %v", got, c.duration)
			}
			if tn.State() != endpoint.StateFinished || len(s.events) != 1 || s.events[0] != "endpoint.tone.finished" {
				t.Errorf("state %s, events %v; want finished and one endpoint.tone.finished", tn.State(), s.events)
			}
			period := (c.on + c.off) * Rate / 1000
			for i := 0; i < len(pcm); i += Rate / 100 { // every 10 ms
				k := i
				wantOn := period == 0 || k%period < c.on*Rate/1000
				seg := pcm[i : i+Rate/100]
				var peak int16
				for _, v := range seg {
					peak = max(peak, v, -v)
				}
				if wantOn != (peak > 1000) {
					t.Fatalf("at %v: on=%v (peak %d), want on=%v", time.Duration(i)*time.Second/Rate, peak > 1000, peak, wantOn)
				}
			}
			// The first on-phase: exactly the tones, at 8000 per component (the sum halved).
			n := Rate / 2
			fit, err := audiotest.FitTones(pcm[:n], Rate, c.freqs...)
			if err != nil {
				t.Fatal(err)
			}
			want := 8000.0 / 32768
			if len(c.freqs) == 2 {
				want /= 2
			}
			for i, a := range fit.Amplitudes {
				if math.Abs(a-want) > want*0.01 {
					t.Errorf("%g Hz amplitude %.4f, want %.4f", c.freqs[i], a, want)
				}
			}
			if fit.SNR() < 60 {
				t.Errorf("SNR %.1f dB: not a clean tone", fit.SNR())
			}
		})
	}
}

// TestPhaseContinuity: the oscillator runs on through frames and off phases, so the signal
// after an off phase continues the sine the on phase started.
func TestPhaseContinuity(t *testing.T) {
	spec, _ := Lookup("busy", 0)
	tn := New(uuid.New(), spec, -1)
	_ = tn.Start(nil, &recorder{})
	pcm := play(t, tn, 75) // 1.5 s: on, off, on
	second := pcm[Rate : Rate+Rate/2]
	for i, v := range second {
		k := float64(Rate + i)
		want := 4000 * (math.Sin(2*math.Pi*480*k/Rate) + math.Sin(2*math.Pi*620*k/Rate))
		if math.Abs(float64(v)-want) > 1 {
			t.Fatalf("sample %d of the second on phase: %d, want %.0f", i, v, want)
		}
	}
}

func TestDurationEdgeCases(t *testing.T) {
	spec, _ := Lookup("beep", 0)
	// 0: finished at once, nothing sent.
	s := &recorder{}
	tn := New(uuid.New(), spec, 0)
	_ = tn.Start(nil, s)
	if pcm := play(t, tn, 10); len(pcm) != 0 || len(s.events) != 1 {
		t.Errorf("duration 0: %d samples, events %v", len(pcm), s.events)
	}
	// 30 ms: one full frame and a half one padded with silence.
	s = &recorder{}
	tn = New(uuid.New(), spec, 30*time.Millisecond)
	_ = tn.Start(nil, s)
	pcm := play(t, tn, 10)
	if len(pcm) != 320 || len(s.events) != 1 {
		t.Fatalf("30 ms: %d samples, events %v", len(pcm), s.events)
	}
	for _, v := range pcm[240:] {
		if v != 0 {
			t.Fatal("the padding after duration_ms is not silence")
		}
	}
	if _, err := Lookup("dialtone", 0); err == nil {
		t.Error("unknown tone accepted")
	}
}

func TestReadFrameDoesNotAllocate(t *testing.T) {
	spec, _ := Lookup("ringback", 0)
	tn := New(uuid.New(), spec, -1)
	_ = tn.Start(nil, &recorder{})
	frame := make([]int16, 160)
	if n := testing.AllocsPerRun(1000, func() { tn.ReadFrame(frame, time.Time{}) }); n != 0 {
		t.Errorf("ReadFrame allocates %.1f times per frame", n)
	}
}

func BenchmarkReadFrame(b *testing.B) {
	spec, _ := Lookup("ringing", 0)
	tn := New(uuid.New(), spec, -1)
	_ = tn.Start(nil, &recorder{})
	frame := make([]int16, 160)
	b.ReportAllocs()
	for b.Loop() {
		tn.ReadFrame(frame, time.Time{})
	}
}
