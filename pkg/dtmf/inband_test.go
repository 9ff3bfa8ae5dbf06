package dtmf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// detectAll runs pcm through a fresh detector in 20 ms pieces and returns the digits.
func detectAll(pcm []int16, rate int) []Report {
	d := NewInband(rate)
	var out []Report
	frame := rate / 50
	for len(pcm) > 0 {
		k := min(frame, len(pcm))
		out = d.Process(out, pcm[:k])
		pcm = pcm[k:]
	}
	return d.Flush(out)
}

func digitsOf(rs []Report) string {
	b := make([]byte, len(rs))
	for i, r := range rs {
		b[i] = r.Digit
	}
	return string(b)
}

// tone is one test tone: a digit's two frequencies, each scaled (off-nominal) and at its own
// level, for ms milliseconds.
type tone struct {
	digit           byte
	lowDB, highDB   float64 // dBm0 per tone
	lowMul, highMul float64 // frequency factors (1 = nominal)
	ms              int
}

func (tn tone) String() string {
	return fmt.Sprintf("%c %.0f/%.0f dBm0 ×%.3f/×%.3f %d ms", tn.digit, tn.lowDB, tn.highDB, tn.lowMul, tn.highMul, tn.ms)
}

// sequence renders tones with sox, each followed by a pause of 45-95 ms (Q.24's shortest
// pause is 40 ms), so tones start at every alignment to the detector's blocks. power is the
// signal power each sample belongs to, for addNoise.
func sequence(t testing.TB, tones []tone) (pcm []int16, power []float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	pcm = silence(8000, 30)
	for _, tn := range tones {
		lo, hi := digitFreqs(t, tn.digit)
		pcm = append(pcm, dualTone(t, 8000, lo*tn.lowMul, hi*tn.highMul, tn.lowDB, tn.highDB, tn.ms)...)
		pcm = append(pcm, silence(8000, 45+rng.IntN(51))...)
		p := (math.Pow(dbm0Volume(tn.lowDB), 2) + math.Pow(dbm0Volume(tn.highDB), 2)) / 2 * 32767 * 32767
		for len(power) < len(pcm) {
			power = append(power, p)
		}
	}
	return pcm, power
}

const allDigits = "123A456B789C*0#D"

var codecs = []string{"L16", "PCMU", "PCMA", "G722", "opus"}

// TestInbandAcceptance: the 16 digits at -3 to -25 dBm0 per tone, 40 to 200 ms long, with and
// without white noise 20 dB below the signal, through each codec (encoded and decoded by the
// ffmpeg CLI): every digit is detected exactly once, in order, with its duration to ±20 ms.
func TestInbandAcceptance(t *testing.T) {
	var tones []tone
	for _, level := range []float64{-3, -10, -17, -25} {
		for _, ms := range []int{40, 55, 100, 200} {
			for _, c := range []byte(allDigits) {
				tones = append(tones, tone{digit: c, lowDB: level, highDB: level, lowMul: 1, highMul: 1, ms: ms})
			}
		}
	}
	clean, power := sequence(t, tones)
	noisy := addNoise(t, clean, power, 8000, 20)
	total := 0
	for _, codec := range codecs {
		for _, noise := range []bool{false, true} {
			name := codec
			src := clean
			if noise {
				name, src = codec+"+noise", noisy
			}
			t.Run(name, func(t *testing.T) {
				got := detectAll(throughCodec(t, codec, src), 8000)
				checkDigits(t, tones, got)
				total += len(got)
			})
		}
	}
	t.Logf("in-band acceptance: %d digits detected of %d sent (%d tones × %d paths)", total, len(tones)*2*len(codecs), len(tones), 2*len(codecs))
}

// checkDigits compares detections with the tones sent: same digits in order, durations to
// ±20 ms.
func checkDigits(t *testing.T, tones []tone, got []Report) {
	t.Helper()
	var want strings.Builder
	for _, tn := range tones {
		want.WriteByte(tn.digit)
	}
	if digitsOf(got) != want.String() {
		t.Errorf("detected %d digits, sent %d", len(got), len(tones))
		// Name the first difference.
		for i := range min(len(got), len(tones)) {
			if got[i].Digit != tones[i].digit {
				t.Fatalf("digit %d: got %q, sent %v", i, got[i].Digit, tones[i])
			}
		}
		t.Fatalf("got %q\nwant %q", digitsOf(got), want.String())
	}
	for i, r := range got {
		if d := int(r.DurationMS(8000)) - tones[i].ms; d < -20 || d > 20 {
			t.Errorf("digit %d (%v): duration %d ms", i, tones[i], r.DurationMS(8000))
		}
	}
}

// TestInbandRejection: what Q.24 says must not be taken for a digit gives nothing, clean and
// through each codec: tones off their frequency by ±3.5 % (one or both), tones shorter than
// 23 ms, tones below the level range, twist beyond the limits, single tones.
func TestInbandRejection(t *testing.T) {
	var tones []tone
	for _, c := range []byte(allDigits) {
		for _, mul := range []float64{0.965, 1.035} {
			tones = append(tones,
				tone{digit: c, lowDB: -3, highDB: -3, lowMul: mul, highMul: mul, ms: 100},
				tone{digit: c, lowDB: -10, highDB: -10, lowMul: mul, highMul: 1, ms: 100},
				tone{digit: c, lowDB: -10, highDB: -10, lowMul: 1, highMul: mul, ms: 100})
		}
		for _, ms := range []int{10, 15, 20, 22} {
			tones = append(tones, tone{digit: c, lowDB: -3, highDB: -3, lowMul: 1, highMul: 1, ms: ms})
		}
		tones = append(tones,
			tone{digit: c, lowDB: -40, highDB: -40, lowMul: 1, highMul: 1, ms: 100}, // too weak
			tone{digit: c, lowDB: -5, highDB: -17, lowMul: 1, highMul: 1, ms: 100},  // normal twist 12 dB
			tone{digit: c, lowDB: -15, highDB: -7, lowMul: 1, highMul: 1, ms: 100},  // reverse twist 8 dB
			tone{digit: c, lowDB: -5, highDB: -90, lowMul: 1, highMul: 1, ms: 100},  // low tone alone
			tone{digit: c, lowDB: -90, highDB: -5, lowMul: 1, highMul: 1, ms: 100})  // high tone alone
	}
	pcm, _ := sequence(t, tones)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			if got := detectAll(throughCodec(t, codec, pcm), 8000); len(got) != 0 {
				t.Errorf("%d of %d non-digits detected: %q", len(got), len(tones), digitsOf(got))
			}
		})
	}
	t.Logf("in-band rejection: %d tones per path that must not be digits", len(tones))
}

// TestInbandTolerance: what Q.24 says must be accepted at the edges: ±1.5 % frequency error
// (each tone and both), 8 dB normal and 4 dB reverse twist, 40 ms tones; an interruption of
// 10 ms does not split a digit, a pause of 40 ms separates two presses of the same key.
func TestInbandTolerance(t *testing.T) {
	var tones []tone
	for _, c := range []byte(allDigits) {
		for _, mul := range []float64{0.985, 1.015} {
			tones = append(tones,
				tone{digit: c, lowDB: -10, highDB: -10, lowMul: mul, highMul: mul, ms: 45},
				tone{digit: c, lowDB: -25, highDB: -25, lowMul: mul, highMul: 2 - mul, ms: 60})
		}
		tones = append(tones,
			tone{digit: c, lowDB: -10, highDB: -18, lowMul: 1, highMul: 1, ms: 60}, // normal twist 8 dB
			tone{digit: c, lowDB: -14, highDB: -10, lowMul: 1, highMul: 1, ms: 60}) // reverse twist 4 dB
	}
	pcm, _ := sequence(t, tones)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			checkDigits(t, tones, detectAll(throughCodec(t, codec, pcm), 8000))
		})
	}

	// One press interrupted for 10 ms; then the same key twice with a 40 ms pause.
	lo, hi := digitFreqs(t, '5')
	press := func(ms int) []int16 { return dualTone(t, 8000, lo, hi, -10, -10, ms) }
	var pcm2 []int16
	pcm2 = append(pcm2, silence(8000, 33)...)
	pcm2 = append(pcm2, press(70)...)
	pcm2 = append(pcm2, silence(8000, 10)...)
	pcm2 = append(pcm2, press(70)...)
	pcm2 = append(pcm2, silence(8000, 100)...)
	pcm2 = append(pcm2, press(60)...)
	pcm2 = append(pcm2, silence(8000, 40)...)
	pcm2 = append(pcm2, press(60)...)
	pcm2 = append(pcm2, silence(8000, 100)...)
	for _, codec := range codecs {
		got := detectAll(throughCodec(t, codec, pcm2), 8000)
		if digitsOf(got) != "555" {
			t.Errorf("%s: interrupted press and a repeated key: got %q %v, want \"555\"", codec, digitsOf(got), got)
		} else if d := got[0].DurationMS(8000); d < 130 || d > 170 {
			t.Errorf("%s: interrupted press lasted %d ms, want 150", codec, d)
		}
	}
}
