package recording

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// feedTwoParties plays party A (440 Hz from 0 to 2 s, silent 1.0-1.2 s) and party B (1000 Hz
// from 0.5 s to 2 s) into r in 20 ms pieces at their wall-clock moments, unpaced.
func feedTwoParties(r *Recorder, rate int) {
	a, b := r.NewTrack(), r.NewTrack()
	frame := rate / 50
	toneA := audiotest.Tone(rate, 2*rate, 0.3, 440)
	toneB := audiotest.Tone(rate, 2*rate, 0.3, 1000)
	t0 := r.Started()
	for i := 0; i < 100; i++ {
		end := t0.Add(time.Duration(i+1) * 20 * time.Millisecond)
		if i < 50 || i >= 60 {
			a.Audio(toneA[i*frame:(i+1)*frame], end)
		}
		if i >= 25 {
			b.Audio(toneB[i*frame:(i+1)*frame], end)
		}
	}
}

func TestDecodedSeparateAndMixed(t *testing.T) {
	for _, tc := range []struct {
		container string
		rate      int
		channels  int
		minSNR    float64
	}{
		{"wav", 16000, 2, 30}, {"wav", 8000, 1, 30}, {"wav", 48000, 2, 30}, {"ogg", 16000, 2, 20}, {"ogg", 48000, 1, 20},
	} {
		name := tc.container + "-" + strconv.Itoa(tc.rate) + "-" + strconv.Itoa(tc.channels)
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rec."+tc.container)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			r, err := NewDecoded(f, DecodedFormat{Container: tc.container, Rate: tc.rate, Channels: tc.channels}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			feedTwoParties(r, tc.rate)
			stopAndWait(t, r)
			if r.Packets() != 90+75 || r.Dropped() != 0 {
				t.Fatalf("frames %d dropped %d, want 165 and 0", r.Packets(), r.Dropped())
			}
			p := audiotest.FFprobe(t, path)
			wantCodec := map[string]string{"wav": "pcm_s16le", "ogg": "opus"}[tc.container]
			if p.Codec != wantCodec || p.Channels != tc.channels || math.Abs(p.Duration-2) > 0.1 {
				t.Fatalf("ffprobe: %+v", p)
			}
			const judge = 16000
			ch := audiotest.DecodeChannels(t, path, tc.channels, judge)
			sec := func(pcm []int16, from, to float64) []int16 { return pcm[int(from*judge):int(to*judge)] }
			if tc.channels == 2 {
				// Channel 1 holds only A, channel 2 only B.
				for _, c := range []struct {
					pcm          []int16
					freq, silent float64
				}{{ch[0], 440, 1000}, {ch[1], 1000, 440}} {
					fit, err := audiotest.FitTones(sec(c.pcm, 1.4, 1.9), judge, c.freq, c.silent)
					if err != nil {
						t.Fatal(err)
					}
					if fit.SNR() < tc.minSNR || fit.Amplitudes[0] < 0.25 || fit.Amplitudes[1] > 0.003 {
						t.Fatalf("channel of %v Hz: SNR %.1f dB, amplitudes %v", c.freq, fit.SNR(), fit.Amplitudes)
					}
				}
				// B starts at 0.5 s, A's gap is silence: both within 20 ms.
				if on := audiotest.Onset(ch[1], judge); math.Abs(float64(on)/judge-0.5) > 0.02 {
					t.Fatalf("B starts at %.3f s, want 0.5", float64(on)/judge)
				}
				if on := audiotest.Onset(sec(ch[0], 1.0, 2), judge); math.Abs(float64(on)/judge-0.2) > 0.02 {
					t.Fatalf("A resumes at %.3f s after 1.0, want 0.2", float64(on)/judge)
				}
				if v := audiotest.RMS(sec(ch[0], 1.03, 1.17)); v > 0.01 {
					t.Fatalf("A's gap holds rms %.3f", v)
				}
				return
			}
			// Mixed: both tones in the one channel once B has joined, A alone before.
			fit, err := audiotest.FitTones(sec(ch[0], 1.4, 1.9), judge, 440, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if fit.SNR() < tc.minSNR || fit.Amplitudes[0] < 0.25 || fit.Amplitudes[1] < 0.25 {
				t.Fatalf("mixed: SNR %.1f dB, amplitudes %v", fit.SNR(), fit.Amplitudes)
			}
			fit, _ = audiotest.FitTones(sec(ch[0], 0.1, 0.45), judge, 440, 1000)
			if fit.Amplitudes[1] > 0.003 {
				t.Fatalf("mixed before B joined: amplitudes %v", fit.Amplitudes)
			}
		})
	}
}

// TestDecodedWAVSurvivesCrash: a WAV recording whose process dies before the trailer still
// plays up to its last flush (the header's sizes are rewritten as it grows).
func TestDecodedWAVSurvivesCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.wav")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewDecoded(f, DecodedFormat{Container: "wav", Rate: 16000, Channels: 1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := r.NewTrack()
	tone := audiotest.Tone(16000, 100*320, 0.3, 440)
	for i := 0; i < 100; i++ {
		tr.Audio(tone[i*320:(i+1)*320], time.Now())
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1200 * time.Millisecond) // a file flush with the sizes
	// Copy the file as it is now: what a SIGKILL would leave.
	snap, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	stopAndWait(t, r)
	cut := filepath.Join(t.TempDir(), "cut.wav")
	if err := os.WriteFile(cut, snap, 0o644); err != nil {
		t.Fatal(err)
	}
	if p := audiotest.FFprobe(t, cut); p.Codec != "pcm_s16le" || p.Duration < 1.5 {
		t.Fatalf("cut file: %+v", p)
	}
	pcm := audiotest.DecodeChannels(t, cut, 1, 16000)[0]
	if len(pcm) < 16000*3/2 {
		t.Fatalf("cut file plays %d samples", len(pcm))
	}
	if f := audiotest.DominantFrequency(pcm[8000:16000], 16000); math.Abs(f-440) > 5 {
		t.Fatalf("cut file: dominant %.1f Hz", f)
	}
}
