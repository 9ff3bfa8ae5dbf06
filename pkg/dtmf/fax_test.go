package dtmf

import (
	"fmt"
	"math"
	"testing"
)

// faxEvents runs pcm through a fresh detector in 20 ms pieces and returns each tone reported
// with the sample index at which it was (the end of the piece that reported it).
type faxEvent struct {
	tone FaxTone
	at   int
}

func detectFax(pcm []int16, rate int) []faxEvent {
	f := NewFax(rate)
	var evs []faxEvent
	var out []FaxTone
	frame := rate / 50
	for i := 0; i < len(pcm); i += frame {
		end := min(i+frame, len(pcm))
		out = f.Process(out[:0], pcm[i:end])
		for _, tn := range out {
			evs = append(evs, faxEvent{tn, end})
		}
	}
	return evs
}

// cngCadence is a fax caller's CNG from sox: bursts of freq Hz, 0.5 s on and 3 s off, at
// level dBm0; onsets are the sample indexes where bursts start.
func cngCadence(t testing.TB, freq, level float64, bursts int) (pcm []int16, onsets []int) {
	pcm = silence(8000, 137)
	for range bursts {
		onsets = append(onsets, len(pcm))
		pcm = append(pcm, sox(t, 8000, []string{"-n"}, "synth", "0.5", "sine", ftoa(freq), "vol", fmt.Sprintf("%.6f", dbm0Volume(level)))...)
		pcm = append(pcm, silence(8000, 3000)...)
	}
	return pcm, onsets
}

// cedTone is a called fax's answer tone from sox: freq Hz for 3.15 s at level dBm0, with a
// phase reversal every 450 ms when reversals is set (V.25 ANSam / V.8 with echo cancellers).
func cedTone(t testing.TB, freq, level float64, reversals bool) (pcm []int16, onset int) {
	pcm = silence(8000, 251)
	onset = len(pcm)
	for i := range 7 {
		phase := "0"
		if reversals && i%2 == 1 {
			phase = "50" // percent of a cycle: 180°
		}
		// 0.45 s of 2100 Hz is a whole number of cycles, so each segment starts at phase 0
		// plus its own shift.
		pcm = append(pcm, sox(t, 8000, []string{"-n"}, "synth", "0.45", "sine", ftoa(freq), "0", phase, "vol", fmt.Sprintf("%.6f", dbm0Volume(level)))...)
	}
	return append(pcm, silence(8000, 500)...), onset
}

// TestFaxTones: CNG cadences and CED tones (plain and with phase reversals) from sox, at the
// edges of their frequency tolerance and at -6 to -40 dBm0, through each codec, are each
// reported once per burst, within 300 ms of its onset; tones outside the tolerance are not.
func TestFaxTones(t *testing.T) {
	type tc struct {
		name   string
		pcm    []int16
		onsets []int
		want   FaxTone
	}
	var cases []tc
	for _, freq := range []float64{1062, 1100, 1138} {
		for _, level := range []float64{-6, -20, -40} {
			pcm, onsets := cngCadence(t, freq, level, 3)
			cases = append(cases, tc{fmt.Sprintf("CNG %.0f Hz %.0f dBm0", freq, level), pcm, onsets, CNG})
		}
	}
	for _, freq := range []float64{2086, 2100, 2114} {
		for _, level := range []float64{-6, -20, -40} {
			for _, rev := range []bool{false, true} {
				pcm, onset := cedTone(t, freq, level, rev)
				cases = append(cases, tc{fmt.Sprintf("CED %.0f Hz %.0f dBm0 reversals %v", freq, level, rev), pcm, []int{onset}, CED})
			}
		}
	}
	// With white noise 20 dB below the tone.
	for _, level := range []float64{-10, -35} {
		pcm, onsets := cngCadence(t, 1100, level, 2)
		power := make([]float64, len(pcm))
		for i := range power {
			power[i] = math.Pow(dbm0Volume(level)*32767, 2) / 2
		}
		cases = append(cases, tc{fmt.Sprintf("CNG %.0f dBm0 + noise", level), addNoise(t, pcm, power, 8000, 20), onsets, CNG})
		ced, onset := cedTone(t, 2100, level, true)
		cases = append(cases, tc{fmt.Sprintf("CED %.0f dBm0 + noise", level), addNoise(t, ced, power[:len(ced)], 8000, 20), []int{onset}, CED})
	}
	// Out of tolerance: nothing.
	for _, freq := range []float64{1030, 1170} {
		pcm, _ := cngCadence(t, freq, -10, 2)
		cases = append(cases, tc{fmt.Sprintf("CNG %.0f Hz (off)", freq), pcm, nil, CNG})
	}
	for _, freq := range []float64{2060, 2140} {
		pcm, _ := cedTone(t, freq, -10, false)
		cases = append(cases, tc{fmt.Sprintf("CED %.0f Hz (off)", freq), pcm, nil, CED})
	}
	// One signal per path: the cases one after another, a second apart.
	var all []int16
	var onsets []int
	var want []FaxTone
	for _, c := range cases {
		for _, o := range c.onsets {
			onsets = append(onsets, len(all)+o)
			want = append(want, c.want)
		}
		all = append(all, c.pcm...)
		all = append(all, silence(8000, 1000)...)
	}
	worst := 0
	for _, codec := range codecs {
		got := detectFax(throughCodec(t, codec, all), 8000)
		if len(got) != len(onsets) {
			t.Errorf("via %s: %d reports, want %d", codec, len(got), len(onsets))
		}
		for i, ev := range got {
			// Match each report to the latest onset before it.
			k := -1
			for j, o := range onsets {
				if o <= ev.at {
					k = j
				}
			}
			if k < 0 {
				t.Errorf("via %s: report %v before any tone", codec, ev.tone)
				continue
			}
			delay := (ev.at - onsets[k]) * 1000 / 8000
			worst = max(worst, delay)
			if ev.tone != want[k] || delay > 300 {
				t.Errorf("via %s: report %d is %v %d ms after onset %d (%v)", codec, i, ev.tone, delay, k, want[k])
			}
		}
	}
	t.Logf("fax tones: %d cases × %d paths, slowest report %d ms after onset", len(cases), len(codecs), worst)
}

// TestFaxNoFalseTones: DTMF never looks like a fax tone (speech and music: TestTalkOff).
func TestFaxNoFalseTones(t *testing.T) {
	var tones []tone
	for _, c := range []byte(allDigits) {
		for _, ms := range []int{100, 500} {
			tones = append(tones, tone{digit: c, lowDB: -5, highDB: -5, lowMul: 1, highMul: 1, ms: ms})
		}
	}
	digits, _ := sequence(t, tones)
	for _, codec := range []string{"L16", "G722", "opus"} {
		if got := detectFax(throughCodec(t, codec, digits), 8000); len(got) != 0 {
			t.Errorf("DTMF via %s: %v", codec, got)
		}
	}
}
