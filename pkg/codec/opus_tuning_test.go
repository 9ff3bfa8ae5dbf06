package codec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// TestOpusTwoToneTuning measures what the Opus settings PROTOCOL.md §12 fixes (VoIP, 24 kbit/s,
// here constrained VBR, fed at the source's own rate) cost on issue 4's two-tone signal (440 + 1200 Hz, 4000
// peak each), against the alternatives: a 12 kHz feed from G.711, CBR, 32 kbit/s, the audio
// application, and FFmpeg's default unconstrained VBR. The source is first put through its own
// codec, as it arrives from a G.711 or G.722 peer; the Opus stream is decoded with libopus at
// 48 kHz.
//
// It asserts only that every setting carries the tones (SNR above 10 dB); the figures are the
// evidence behind issue 4's open quality question, printed with -v.
func TestOpusTwoToneTuning(t *testing.T) {
	const seconds = 3
	freqs := []float64{440, 1200}
	protocol := protocolOpusTuning()
	cbr, vbr, faster, audio := protocol, protocol, protocol, protocol
	cbr.vbr = "off"
	vbr.vbr = "on"
	faster.bitrate = 32000
	audio.application = "audio"
	rows := []struct {
		name   string
		tuning opusTuning
		rate   func(src Codec) int
	}{
		{"ours: voip, 24 kbit/s CVBR, source rate", protocol, Codec.SampleRate},
		{"fed at 12 kHz (G.711 only)", protocol, func(Codec) int { return 12000 }},
		{"CBR 24 kbit/s", cbr, Codec.SampleRate},
		{"unconstrained VBR 24 kbit/s", vbr, Codec.SampleRate},
		{"32 kbit/s CVBR", faster, Codec.SampleRate},
		{"application audio", audio, Codec.SampleRate},
	}
	var report strings.Builder
	for _, src := range []Codec{PCMU, PCMA, G722} {
		in := roundTrip(t, src, audiotest.Tone(src.SampleRate(), seconds*src.SampleRate(), 4000.0/32767, freqs...))
		for _, row := range rows {
			rate := row.rate(src)
			if rate == 12000 && src == G722 {
				continue
			}
			enc, err := newEncoder(Opus, rate, DefaultOptions(), row.tuning)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := NewDecoderRate(Opus, 48000)
			if err != nil {
				t.Fatal(err)
			}
			var out []int16
			var bytes, frames int
			for _, fr := range audiotest.Frames(resample(t, in, src.SampleRate(), rate), enc.FrameSize()) {
				p, err := enc.Encode(nil, fr)
				if err != nil {
					t.Fatal(err)
				}
				if out, err = dec.Decode(out, p); err != nil {
					t.Fatal(err)
				}
				bytes += len(p)
				frames++
			}
			enc.Close()
			dec.Close()
			// The e2e test's window: 600 ms of codec start-up and a 100 ms tail left out.
			snr, err := audiotest.SNR(out[48000*6/10:len(out)-4800], 48000, freqs...)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&report, "\n%-4s→opus  %-46s SNR %5.1f dB  %4.1f kbit/s", src, row.name, snr, float64(bytes*8)/float64(frames)/20)
			if snr < 10 {
				t.Errorf("%s→opus, %s: SNR %.1f dB, the tones are lost", src, row.name, snr)
			}
		}
	}
	t.Logf("two-tone 440+1200 Hz into Opus by encoder setting:%s", report.String())
}

// roundTrip puts pcm (at c's sample rate) through c's encoder and decoder, as a peer sending c
// would deliver it.
func roundTrip(t testing.TB, c Codec, pcm []int16) []int16 {
	t.Helper()
	enc, err := NewEncoder(c, c.SampleRate(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, err := NewDecoder(c)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var out []int16
	for _, fr := range audiotest.Frames(pcm, enc.FrameSize()) {
		p, err := enc.Encode(nil, fr)
		if err != nil {
			t.Fatal(err)
		}
		if out, err = dec.Decode(out, p); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// BenchmarkOpusTuning is the cost side of TestOpusTwoToneTuning: encoding 20 ms of speech as
// it arrives from a PCMU leg (decoded to 8 kHz; resampled beforehand for the 12 kHz feed, so
// that row leaves out the resampler's few µs) under each setting.
func BenchmarkOpusTuning(b *testing.B) {
	// The speech sample as a PCMU peer delivers it: 8 kHz through G.711.
	speech := roundTrip(b, PCMU, resample(b, audiotest.Speech(b), 16000, 8000))
	protocol := protocolOpusTuning()
	audio, faster := protocol, protocol
	audio.application = "audio"
	faster.bitrate = 32000
	for _, run := range []struct {
		name   string
		tuning opusTuning
		rate   int
	}{
		{"protocol_8k", protocol, 8000},
		{"protocol_12k", protocol, 12000},
		{"32kbps_8k", faster, 8000},
		{"audio_8k", audio, 8000},
	} {
		b.Run(run.name, func(b *testing.B) {
			enc, err := newEncoder(Opus, run.rate, DefaultOptions(), run.tuning)
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			frames := audiotest.Frames(resample(b, speech, 8000, run.rate), enc.FrameSize())
			var out []byte
			b.ReportAllocs()
			cpu := startCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if out, err = enc.Encode(out[:0], frames[i%len(frames)]); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}
