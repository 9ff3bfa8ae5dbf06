package codec

import (
	"fmt"
	"math"
	"testing"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// TestResampler converts tones between the rates the bridge uses: frequency kept, length
// kept over a stream fed in odd-sized pieces, SNR high.
func TestResampler(t *testing.T) {
	for _, r := range [][2]int{{8000, 16000}, {16000, 8000}, {8000, 48000}, {48000, 8000}, {16000, 48000}, {48000, 16000}} {
		t.Run(fmt.Sprintf("%d→%d", r[0], r[1]), func(t *testing.T) {
			rs, err := NewResampler(r[0], r[1])
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			if rs.InRate() != r[0] || rs.OutRate() != r[1] {
				t.Fatalf("rates %d→%d", rs.InRate(), rs.OutRate())
			}
			in := audiotest.Tone(r[0], r[0], 0.5, 1000)
			var out []int16
			for off, step := 0, 0; off < len(in); off += step {
				step = min(len(in)-off, 37+off%400) // odd, varying piece sizes
				if out, err = rs.Resample(out, in[off:off+step]); err != nil {
					t.Fatal(err)
				}
			}
			// libswresample's default filter holds back 16 samples at the lower of the two rates.
			if want, tol := r[1], 24*max(1, r[1]/r[0]); math.Abs(float64(len(out)-want)) > float64(tol) {
				t.Errorf("%d samples out for 1 s, want %d (less the filter delay)", len(out), want)
			}
			steady := out[r[1]/10 : len(out)-r[1]/10]
			if f := audiotest.DominantFrequency(steady, r[1]); math.Abs(f-1000) > 0.1 {
				t.Errorf("tone at %.3f Hz", f)
			}
			if snr, _ := audiotest.SNR(steady, r[1], 1000); snr < 50 {
				t.Errorf("SNR %.1f dB, want ≥ 50", snr)
			}
		})
	}
}

// TestReframeG711PacketSizes sends G.711 in 10 ms and 30 ms packets: the encoders still get
// exact 20 ms frames.
func TestReframeG711PacketSizes(t *testing.T) {
	pcm := audiotest.Tone(8000, 16000, 0.5, 1000)
	ulaw := concat(payloads(encodeStream(t, PCMU, 8000, pcm)))
	for _, ms := range []int{10, 30} {
		for _, dst := range []Codec{G722, Opus, PCMA} {
			t.Run(fmt.Sprintf("PCMU%dms→%s", ms, dst), func(t *testing.T) {
				n := 8 * ms
				var packets []packet
				for i := 0; (i+1)*n <= len(ulaw); i++ {
					packets = append(packets, packet{ulaw[i*n : (i+1)*n], uint16(i), uint32(i * n)})
				}
				out := transcodeAll(t, PCMU, dst, packets)
				checkReframed(t, dst, out, len(packets)*ms)
			})
		}
	}
}

// TestReframeOpusPacketSizes sends Opus in 10, 40 and 60 ms packets made by the Debian ffmpeg
// CLI's libopus (not our encoder).
func TestReframeOpusPacketSizes(t *testing.T) {
	pcm := audiotest.Tone(48000, 96000, 0.5, 1000)
	for _, ms := range []int{10, 40, 60} {
		ogg := audiotest.FFmpegEncode(t, pcm, 48000, "ogg", "libopus", "-b:a", "32k", "-frame_duration", fmt.Sprint(ms))
		pkts, err := audiotest.ReadOggPackets(ogg)
		if err != nil {
			t.Fatal(err)
		}
		var packets []packet
		for i, p := range pkts[2:] {
			if n, _ := audiotest.OpusPacketSamples(p); n != ms*48 {
				t.Fatalf("CLI made a %d-sample packet, want %d ms", n, ms)
			}
			packets = append(packets, packet{p, uint16(60000 + i), uint32(i * ms * 48)})
		}
		for _, dst := range []Codec{PCMU, G722} {
			t.Run(fmt.Sprintf("opus%dms→%s", ms, dst), func(t *testing.T) {
				out := transcodeAll(t, Opus, dst, packets)
				checkReframed(t, dst, out, len(packets)*ms)
			})
		}
	}
}

// checkReframed checks that out holds one 20 ms payload per 20 ms of input (less one held
// back by the resampler's delay) and that the tone survived.
func checkReframed(t *testing.T, dst Codec, out [][]byte, inputMs int) {
	t.Helper()
	if want := inputMs / 20; len(out) < want-1 || len(out) > want {
		t.Errorf("%d payloads for %d ms of input, want %d", len(out), inputMs, want)
	}
	got := judge(t, dst, out)
	rate := dst.SampleRate()
	steady := steadyState(got, rate)
	if f := audiotest.DominantFrequency(steady, rate); !within(f, 1000) {
		t.Errorf("tone at %.2f Hz", f)
	}
	if snr, _ := audiotest.SNR(steady, rate, 1000); snr < minSNR(Opus, dst) {
		t.Errorf("SNR %.1f dB", snr)
	}
}

func payloads(p []packet) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i].payload
	}
	return out
}

// TestMixerHalves uses the two halves as the mixer will: sources decoded to a common 48 kHz,
// summed, encoded once per destination from 48 kHz.
func TestMixerHalves(t *testing.T) {
	a := tonePacketsAt(t, PCMU, 440)
	b := tonePacketsAt(t, G722, 1200)
	da, err := NewStreamDecoder(PCMU, 48000)
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	db, err := NewStreamDecoder(G722, 48000)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if da.Rate() != 48000 || da.Codec() != PCMU {
		t.Fatalf("stream decoder rate %d codec %v", da.Rate(), da.Codec())
	}
	for _, dst := range []Codec{PCMA, G722, Opus} {
		enc, err := NewStreamEncoder(dst, 48000, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		if enc.Rate() != 48000 || enc.EncoderRate() != dst.SampleRate() || enc.Codec() != dst {
			t.Fatalf("%s stream encoder: rate %d, encoder rate %d", dst, enc.Rate(), enc.EncoderRate())
		}
	}
	var pa, pb []int16
	for i := range a {
		if pa, err = da.Decode(pa, a[i].payload, a[i].seq, a[i].ts); err != nil {
			t.Fatal(err)
		}
		if pb, err = db.Decode(pb, b[i].payload, b[i].seq, b[i].ts); err != nil {
			t.Fatal(err)
		}
	}
	n := min(len(pa), len(pb))
	mix := make([]int16, n)
	for i := range mix {
		mix[i] = int16(max(-32768, min(32767, int32(pa[i])+int32(pb[i]))))
	}
	for _, dst := range []Codec{PCMA, G722, Opus} {
		enc, err := NewStreamEncoder(dst, 48000, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		var out, frames [][]byte
		for off := 0; off < len(mix); off += 960 {
			if frames, err = enc.Encode(frames[:0], mix[off:min(off+960, len(mix))]); err != nil {
				t.Fatal(err)
			}
			for _, f := range frames {
				out = append(out, append([]byte(nil), f...))
			}
		}
		enc.Close()
		got := judge(t, dst, out)
		rate := dst.SampleRate()
		steady := steadyState(got, rate)
		snr, err := audiotest.SNR(steady, rate, 440, 1200)
		if err != nil {
			t.Fatal(err)
		}
		if snr < minSNR(PCMU, dst) {
			t.Errorf("mix → %s: SNR %.1f dB", dst, snr)
		}
		t.Logf("PCMU 440 Hz + G722 1200 Hz mixed at 48 kHz → %s: SNR %.1f dB", dst, snr)
	}
}

func tonePacketsAt(t *testing.T, c Codec, freq float64) []packet {
	rate := c.SampleRate()
	return encodeStream(t, c, rate, audiotest.Tone(rate, 2*rate, 0.25, freq))
}
