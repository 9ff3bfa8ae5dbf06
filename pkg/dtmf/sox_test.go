package dtmf

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// Test signals come from sox (Debian package sox, in the Makefile's TEST_TOOLS): an
// independent generator, so the detectors are judged on audio they did not make.

// sox runs sox (see audiotest.Sox).
func sox(t testing.TB, rate int, in []string, effects ...string) []int16 {
	t.Helper()
	return audiotest.Sox(t, rate, in, effects...)
}

// dbm0Volume is the sox volume factor (of a full-scale sine) for a tone at level dBm0.
func dbm0Volume(level float64) float64 { return audiotest.DBm0Volume(level) }

// dualTone is a DTMF-like pair from sox: low and high frequencies at their levels (dBm0),
// ms long, at rate.
func dualTone(t testing.TB, rate int, low, high, lowDBm0, highDBm0 float64, ms int) []int16 {
	t.Helper()
	return audiotest.SoxDualTone(t, rate, low, high, lowDBm0, highDBm0, ms)
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }

// digitFreqs are the row and column frequencies of a keypad digit.
func digitFreqs(t testing.TB, c byte) (float64, float64) {
	t.Helper()
	for i, k := range keypad {
		if k == c {
			return rowFreqs[i/4], colFreqs[i%4]
		}
	}
	t.Fatalf("no digit %q", c)
	return 0, 0
}

// silence is ms of digital silence at rate.
func silence(rate, ms int) []int16 { return make([]int16, rate*ms/1000) }

// addNoise adds white noise from sox at snr dB below the signal: power[i] is the signal
// power that sample i belongs to (a tone's, carried on through the pause after it), so each
// tone gets the same signal-to-noise ratio whatever its level.
func addNoise(t testing.TB, pcm []int16, power []float64, rate int, snr float64) []int16 {
	t.Helper()
	noise := sox(t, rate, []string{"-n"}, "synth", fmt.Sprintf("%.4f", float64(len(pcm))/float64(rate)+0.1),
		"whitenoise", "gain", "-10")
	var pn float64
	for _, v := range noise[:len(pcm)] {
		pn += float64(v) * float64(v)
	}
	pn /= float64(len(pcm))
	out := make([]int16, len(pcm))
	for i, v := range pcm {
		k := math.Sqrt(power[i] / pn / math.Pow(10, snr/10))
		out[i] = int16(max(-32768, min(32767, math.Round(float64(v)+k*float64(noise[i])))))
	}
	return out
}

// resample converts pcm from one rate to another with sox (its default high-quality rate
// effect).
func resample(t testing.TB, pcm []int16, from, to int) []int16 {
	t.Helper()
	if from == to {
		return pcm
	}
	in := filepath.Join(t.TempDir(), "in.raw")
	if err := os.WriteFile(in, audiotest.PCMBytes(pcm), 0o600); err != nil {
		t.Fatal(err)
	}
	return sox(t, to, []string{"-t", "raw", "-r", strconv.Itoa(from), "-e", "signed", "-b", "16", "-c", "1", in})
}

// throughCodec sends 8 kHz audio through an encode and decode of codec with the ffmpeg CLI
// (an independent implementation), at the codec's own rate, and back to 8 kHz: what a
// session's tap sees of a leg speaking that codec. "L16" leaves the audio alone.
func throughCodec(t testing.TB, codec string, pcm []int16) []int16 {
	t.Helper()
	if codec == "L16" {
		return pcm
	}
	rate := audiotest.CodecSampleRate(codec)
	up := resample(t, pcm, 8000, rate)
	if frame := rate / 50; len(up)%frame != 0 {
		up = append(up, make([]int16, frame-len(up)%frame)...)
	}
	dec := audiotest.DecodePayloads(t, codec, audiotest.EncodePayloads(t, codec, up))
	return resample(t, dec, rate, 8000)
}
