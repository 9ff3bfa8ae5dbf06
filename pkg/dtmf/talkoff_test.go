package dtmf

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// speechText is read by every voice; digits and times are spelled out too, as an IVR's
// callers would say them.
const speechText = `Thank you for calling. Your call is important to us. Please listen carefully, as our menu
options have recently changed. For billing questions, please say billing or stay on the line.
The quick brown fox jumps over the lazy dog while the five boxing wizards jump quickly. She sells
sea shells by the sea shore, and the shells she sells are surely sea shells. My number is
seven one two, four four nine, three eight six zero, and my account ends in nine nine one.
We meet at half past eleven on Tuesday, the twenty third of October, near the old railway
station. How much wood would a woodchuck chuck if a woodchuck could chuck wood? Peter Piper
picked a peck of pickled peppers. Whether the weather is warm or cold, we will weather the
weather whatever the weather. I would like to speak to an agent about my order, which has not
arrived yet; the tracking code is alpha bravo charlie delta echo foxtrot. Oh no, that's not
right at all! Yes, yes, absolutely, hmm, well, let me think about it for a moment. Good
morning, good afternoon, good evening and goodnight. Ring, ring, beep, beep, la la la la la.
Ooooh, aaaah, eeeee, mmmmm. One, two, three, four, five, six, seven, eight, nine, ten, star,
hash, pound, zero.`

// voices are espeak-ng voices and pitches: men, women, several languages and accents.
var voices = []struct{ voice, pitch, speed string }{
	{"en-us", "50", "160"}, {"en-us+f3", "70", "170"}, {"en-gb+m3", "40", "150"},
	{"en-gb-scotland+f4", "80", "175"}, {"de+f2", "65", "160"}, {"fr+m7", "30", "155"},
	{"es+f5", "90", "180"}, {"en-us+Annie", "60", "165"}, {"en-gb-x-rp+f1", "99", "140"},
	{"en-us+m1", "20", "190"},
}

// talkoffSpeech is at least minutes of espeak-ng speech in every voice, at 8 kHz.
func talkoffSpeech(t testing.TB, minutes float64) []int16 {
	t.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng is not installed (apt-get install espeak-ng)")
	}
	dir := t.TempDir()
	var pcm []int16
	for i := 0; float64(len(pcm)) < minutes*60*8000; i++ {
		v := voices[i%len(voices)]
		wav := filepath.Join(dir, fmt.Sprintf("s%d.wav", i))
		cmd := exec.Command("espeak-ng", "-v", v.voice, "-p", v.pitch, "-s", v.speed, "-w", wav, speechText)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("espeak-ng %s: %v\n%s", v.voice, err, out)
		}
		// Loudness varies too: from a quiet talker to one shouting into the handset.
		pcm = append(pcm, sox(t, 8000, []string{wav}, "gain", "-n", fmt.Sprint(-1-(i%4)*6))...)
	}
	return pcm
}

// notes is three octaves and a half of the chromatic scale as sox names them.
var notes = strings.Fields("C3 C#3 D3 D#3 E3 F3 F#3 G3 G#3 A3 A#3 B3 C4 C#4 D4 D#4 E4 F4 F#4 G4 G#4 A4 A#4 B4 C5 C#5 D5 D#5 E5 F5 F#5 G5 G#5 A5 A#5 B5 C6 C#6 D6 D#6 E6 F6 F#6 G6")

// talkoffMusic is at least minutes of music from sox's synthesiser at 8 kHz: chords and
// melodies from plucked strings, sawtooth, square and triangle voices with harmonics,
// percussion from noise bursts, in random keys and tempos.
func talkoffMusic(t testing.TB, minutes float64) []int16 {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	instruments := []string{"pluck", "sawtooth", "square", "triangle", "pluck", "trapezium"}
	var pcm []int16
	for float64(len(pcm)) < minutes*60*8000 {
		// One phrase of 40 segments per sox run.
		args := []string{}
		root := rng.IntN(12)
		inst := instruments[rng.IntN(len(instruments))]
		lead := instruments[rng.IntN(len(instruments))]
		beat := 0.15 + rng.Float64()*0.35
		for i := range 40 {
			if i > 0 {
				args = append(args, ":")
			}
			if rng.IntN(6) == 0 { // a drum hit
				args = append(args, "synth", fmt.Sprintf("%.3f", beat), "pinknoise", "fade", "q", "0.002", fmt.Sprintf("%.3f", beat), fmt.Sprintf("%.3f", beat*0.9), "gain", "-8")
				continue
			}
			deg := []int{0, 2, 4, 5, 7, 9, 11}
			base := root + deg[rng.IntN(7)]
			chord := []string{notes[base%len(notes)], notes[(base+4)%len(notes)], notes[(base+7)%len(notes)]}
			melody := notes[(base+12+deg[rng.IntN(7)])%len(notes)]
			args = append(args, "synth", fmt.Sprintf("%.3f", beat),
				inst, chord[0], inst, chord[1], inst, chord[2], lead, melody,
				"remix", "-", "fade", "q", "0.01", fmt.Sprintf("%.3f", beat), "0.03", "gain", "-n", fmt.Sprint(-3-rng.IntN(15)))
		}
		pcm = append(pcm, sox(t, 8000, []string{"-n"}, args...)...)
	}
	return pcm
}

// TestTalkOff: ten minutes of speech (espeak-ng, ten voices and languages, four loudnesses)
// and ten minutes of synthesised music give no DTMF digit and no fax tone, as decoded from
// each codec.
func TestTalkOff(t *testing.T) {
	for _, src := range []struct {
		name string
		pcm  []int16
	}{{"speech", talkoffSpeech(t, 10)}, {"music", talkoffMusic(t, 10)}} {
		for _, codec := range []string{"L16", "PCMU", "G722", "opus"} {
			pcm := throughCodec(t, codec, src.pcm)
			digits := detectAll(pcm, 8000)
			fax := detectFax(pcm, 8000)
			t.Logf("talk-off %s via %s: %.1f min, %d digits, %d fax tones", src.name, codec, float64(len(pcm))/8000/60, len(digits), len(fax))
			if len(digits) != 0 {
				t.Errorf("%s via %s: %d digits detected: %q", src.name, codec, len(digits), digitsOf(digits))
			}
			if len(fax) != 0 {
				t.Errorf("%s via %s: fax tones detected: %v", src.name, codec, fax)
			}
		}
	}
}
