package audiotest

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDominantFrequency(t *testing.T) {
	for _, rate := range []int{8000, 16000, 48000} {
		for _, f := range []float64{440, 1000, 1200, 3111.7} {
			pcm := Tone(rate, rate/2, 0.3, f)
			got := DominantFrequency(pcm, rate)
			if math.Abs(got-f) > 0.05 {
				t.Errorf("rate %d: tone %.1f Hz measured %.3f Hz", rate, f, got)
			}
		}
	}
}

func TestDominantFrequenciesTwoTone(t *testing.T) {
	pcm := Tone(8000, 4000, 0.3, 440, 1200)
	got := DominantFrequencies(pcm, 8000, 2)
	if len(got) != 2 {
		t.Fatalf("got %d peaks, want 2", len(got))
	}
	lo, hi := math.Min(got[0], got[1]), math.Max(got[0], got[1])
	if math.Abs(lo-440) > 0.05 || math.Abs(hi-1200) > 0.05 {
		t.Errorf("two-tone measured %.3f and %.3f Hz, want 440 and 1200", lo, hi)
	}
}

func TestDominantFrequencyWithNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pcm := Tone(16000, 8000, 0.2, 1000)
	for i := range pcm {
		pcm[i] += int16(rng.NormFloat64() * 600)
	}
	if got := DominantFrequency(pcm, 16000); math.Abs(got-1000) > 1 {
		t.Errorf("noisy 1 kHz tone measured %.3f Hz", got)
	}
}

func TestDominantFrequencyStrongestFirst(t *testing.T) {
	a := Tone(8000, 4000, 0.1, 440)
	b := Tone(8000, 4000, 0.4, 1200)
	for i := range a {
		a[i] += b[i]
	}
	got := DominantFrequencies(a, 8000, 2)
	if math.Abs(got[0]-1200) > 0.05 || math.Abs(got[1]-440) > 0.05 {
		t.Errorf("got %v, want [1200 440]", got)
	}
}

func TestSNRClean(t *testing.T) {
	pcm := Tone(8000, 8000, 0.3, 1000)
	snr, err := SNR(pcm, 8000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// Only 16-bit rounding noise: 0.3 full scale against a 1/sqrt(12) LSB quantiser ≈ 85 dB.
	if snr < 80 {
		t.Errorf("clean tone SNR %.1f dB, want ≥ 80", snr)
	}
}

func TestSNRKnownNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const amp = 0.3
	pcm := Tone(16000, 32000, amp, 440, 1200)
	sigPower := 2 * amp * amp / 2                           // two sines of peak amp
	noiseRMS := math.Sqrt(sigPower / math.Pow(10, 30.0/10)) // 30 dB below
	for i := range pcm {
		pcm[i] += int16(math.Round(rng.NormFloat64() * noiseRMS * 32768))
	}
	snr, err := SNR(pcm, 16000, 440, 1200)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(snr-30) > 0.5 {
		t.Errorf("SNR %.2f dB, want 30 ± 0.5", snr)
	}
}

func TestSNRDelayAndGainAreFitted(t *testing.T) {
	src := Tone(8000, 9000, 0.3, 440, 1200)
	// A delay of 37 samples and a gain of 0.5 must not count as noise.
	pcm := make([]int16, 8000)
	for i := range pcm {
		pcm[i] = src[i+37] / 2
	}
	f, err := FitTones(pcm, 8000, 440, 1200)
	if err != nil {
		t.Fatal(err)
	}
	if f.SNR() < 70 {
		t.Errorf("delayed tone SNR %.1f dB, want ≥ 70", f.SNR())
	}
	for i, a := range f.Amplitudes {
		if math.Abs(a-0.15) > 0.001 {
			t.Errorf("amplitude %d = %.4f, want 0.15", i, a)
		}
	}
}

func TestSNRWrongFrequencyIsNoise(t *testing.T) {
	pcm := Tone(8000, 8000, 0.3, 1000)
	snr, err := SNR(pcm, 8000, 1010)
	if err != nil {
		t.Fatal(err)
	}
	if snr > 0 {
		t.Errorf("fitting the wrong frequency gave SNR %.1f dB, want < 0", snr)
	}
}

func TestG711KnownValues(t *testing.T) {
	ulaw := map[byte]int16{0xff: 0, 0x7f: 0, 0x80: 32124, 0x00: -32124, 0xfe: 8, 0x7e: -8, 0xef: 132}
	for code, want := range ulaw {
		if got := ULawToLinear(code); got != want {
			t.Errorf("µ-law %#02x = %d, want %d", code, got, want)
		}
	}
	alaw := map[byte]int16{0xd5: 8, 0x55: -8, 0xaa: 32256, 0x2a: -32256, 0xd4: 24, 0xc5: 264}
	for code, want := range alaw {
		if got := ALawToLinear(code); got != want {
			t.Errorf("A-law %#02x = %d, want %d", code, got, want)
		}
	}
}

// TestG711MatchesFFmpegCLI decodes every code word with the ffmpeg CLI and with the Go
// reference decoder: they must agree exactly.
func TestG711MatchesFFmpegCLI(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, c := range []struct {
		format string
		decode func([]byte) []int16
	}{{"mulaw", DecodeULaw}, {"alaw", DecodeALaw}} {
		want := FFmpegDecode(t, c.format, all, 0)
		got := c.decode(all)
		if len(want) != 256 {
			t.Fatalf("%s: ffmpeg decoded %d samples, want 256", c.format, len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s code %#02x: Go %d, ffmpeg %d", c.format, i, got[i], want[i])
			}
		}
	}
}

func TestOpusPacketSamples(t *testing.T) {
	cases := []struct {
		pkt  []byte
		want int
	}{
		{[]byte{0x08}, 960},        // config 1: SILK NB 20 ms, one frame
		{[]byte{0x18}, 2880},       // config 3: SILK NB 60 ms
		{[]byte{0x78}, 960},        // config 15: Hybrid FB 20 ms
		{[]byte{0xf8}, 960},        // config 31: CELT FB 20 ms
		{[]byte{0xe0}, 120},        // config 28: CELT FB 2.5 ms
		{[]byte{0xf9, 0, 0}, 1920}, // code 1: two frames of 20 ms
		{[]byte{0x0b, 0x03}, 2880}, // code 3: three frames of 20 ms
		{[]byte{0x0b, 0x83}, 2880}, // code 3 with VBR flag: count is the low 6 bits
		{[]byte{0x00, 0, 0}, 480},  // config 0: SILK NB 10 ms
		{[]byte{0x60}, 480},        // config 12: Hybrid SWB 10 ms
		{[]byte{0x68}, 960},        // config 13: Hybrid SWB 20 ms
	}
	for _, c := range cases {
		got, err := OpusPacketSamples(c.pkt)
		if err != nil || got != c.want {
			t.Errorf("TOC %#02x: got %d, %v; want %d", c.pkt[0], got, err, c.want)
		}
	}
	if _, err := OpusPacketSamples(nil); err == nil {
		t.Error("empty packet: want an error")
	}
	if _, err := OpusPacketSamples([]byte{0x03}); err == nil {
		t.Error("code-3 packet without count byte: want an error")
	}
}

// TestOggRoundTrip encodes a tone to Ogg Opus with the CLI, re-muxes its packets with
// WriteOggOpus and decodes the result with the CLI again: the tone must survive.
func TestOggRoundTrip(t *testing.T) {
	pcm := Tone(48000, 48000, 0.3, 1000)
	ogg := FFmpegEncode(t, pcm, 48000, "ogg", "libopus", "-b:a", "32k")
	packets, err := ReadOggPackets(ogg)
	if err != nil {
		t.Fatal(err)
	}
	if len(packets) < 10 || string(packets[0][:8]) != "OpusHead" || string(packets[1][:8]) != "OpusTags" {
		t.Fatalf("unexpected Ogg Opus stream: %d packets", len(packets))
	}
	audio := packets[2:]
	file, err := WriteOggOpus(audio, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ReadOggPackets(file)
	if err != nil {
		t.Fatalf("re-reading our own Ogg file: %v", err)
	}
	if len(again) != len(audio)+2 {
		t.Fatalf("our Ogg file holds %d packets, want %d", len(again), len(audio)+2)
	}
	out := FFmpegDecode(t, "ogg", file, 0)
	if len(out) < 40000 {
		t.Fatalf("decoded %d samples, want about 48000", len(out))
	}
	if f := DominantFrequency(out[4800:len(out)-4800], 48000); math.Abs(f-1000) > 10 {
		t.Errorf("decoded tone at %.2f Hz, want 1000", f)
	}
	// A corrupted byte must be caught by the CRC.
	file[len(file)-3] ^= 0xff
	if _, err := ReadOggPackets(file); err == nil {
		t.Error("corrupted Ogg page: want a CRC error")
	}
}

func TestFFmpegDecodeG722(t *testing.T) {
	pcm := Tone(16000, 16000, 0.3, 1000)
	g722 := FFmpegEncode(t, pcm, 16000, "g722", "g722")
	if len(g722) != 8000 {
		t.Fatalf("G.722 of 1 s is %d bytes, want 8000", len(g722))
	}
	out := FFmpegDecode(t, "g722", g722, 0)
	if len(out) != 16000 {
		t.Fatalf("decoded %d samples, want 16000", len(out))
	}
	if f := DominantFrequency(out[1600:], 16000); math.Abs(f-1000) > 1 {
		t.Errorf("G.722 round trip at %.2f Hz, want 1000", f)
	}
}

func TestSpeech(t *testing.T) {
	pcm := Speech(t)
	if sec := float64(len(pcm)) / 16000; sec < 5 || sec > 8 {
		t.Errorf("speech sample lasts %.2f s, want 5–8 s", sec)
	}
	var peak int16
	for _, v := range pcm {
		if v > peak {
			peak = v
		}
	}
	if peak < 3000 {
		t.Errorf("speech sample peak %d: looks silent", peak)
	}
}

func TestParseWAVRejects(t *testing.T) {
	if _, _, err := ParseWAV([]byte("RIFF\x00\x00\x00\x00WAVE")); err == nil {
		t.Error("WAV without chunks: want an error")
	}
	if _, _, err := ParseWAV([]byte("not a wav file at all")); err == nil {
		t.Error("garbage: want an error")
	}
}
