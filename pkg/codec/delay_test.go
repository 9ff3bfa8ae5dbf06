package codec

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// maxAddedDelayMs is the most delay a Transcoder may add to speech beyond the two codecs' own.
const maxAddedDelayMs = 3.0

// TestTranscodeDelay sends speech through every transcoding path and measures, by
// cross-correlation, the delay the Transcoder adds beyond what the codecs themselves cost: the
// output (decoded by the independent judge) against the source stream as a receiver of the
// source codec would decode it, less the delay of the destination codec alone on that same
// signal. Every 20 ms packet must come out as one 20 ms frame from its own Transcode call, so
// nothing waits for the next packet and the stream's last frame is sent with its last packet.
//
// Before the resamplers padded their start (Resampler), G.711 ↔ G.722 re-framing waited for
// the next packet: 22 ms added, and the last frame never sent.
func TestTranscodeDelay(t *testing.T) {
	speech := audiotest.Speech(t)
	var report []string
	for _, pair := range [][2]Codec{
		{PCMU, G722}, {PCMA, G722}, {G722, PCMU}, {G722, PCMA},
		{PCMU, Opus}, {G722, Opus}, {Opus, PCMU}, {Opus, G722}, {PCMU, PCMA},
	} {
		src, dst := pair[0], pair[1]
		t.Run(fmt.Sprintf("%s→%s", src, dst), func(t *testing.T) {
			srcRate := src.SampleRate()
			if src == Opus {
				srcRate = 16000 // speech as a wideband Opus peer sends it
			}
			packets := encodeStream(t, src, srcRate, resample(t, speech, 16000, srcRate))

			tr, err := NewTranscoder(src, dst, DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			var out, frames [][]byte
			for i, p := range packets {
				if frames, err = tr.Transcode(frames[:0], p.payload, p.seq, p.ts); err != nil {
					t.Fatal(err)
				}
				if len(frames) != 1 {
					t.Fatalf("packet %d of %d: %d frames out, want its own frame at once", i, len(packets), len(frames))
				}
				out = append(out, append([]byte(nil), frames[0]...))
			}

			// What a receiver of the source codec hears, at the destination's rate (our
			// resampler's one-shot Resample: aligned with its input, no delay).
			rate := dst.SampleRate()
			ref := resample(t, judge(t, src, payloads(packets)), src.SampleRate(), rate)
			// The destination codec alone on that signal.
			encRate := rate
			if dst == Opus {
				encRate = srcRate
			}
			direct := judge(t, dst, payloads(encodeStream(t, dst, encRate, resample(t, ref, rate, encRate))))
			got := judge(t, dst, out)

			maxLag := rate / 20 // 50 ms
			total, corr := audiotest.Delay(ref, got, maxLag)
			codecOnly, corrDirect := audiotest.Delay(ref, direct, maxLag)
			if corr < 0.8 || corrDirect < 0.8 {
				t.Fatalf("speech not recognisable: correlation %.2f through the transcoder, %.2f through %s alone", corr, corrDirect, dst)
			}
			ms := func(samples float64) float64 { return samples * 1000 / float64(rate) }
			added := ms(total - codecOnly)
			report = append(report, fmt.Sprintf("%-10s added %5.2f ms  (total %5.2f ms, %s alone %5.2f ms, correlation %.3f)",
				src.String()+"→"+dst.String(), added, ms(total), dst, ms(codecOnly), corr))
			if added > maxAddedDelayMs || added < -0.5 {
				t.Errorf("transcoder adds %.2f ms (total %.2f ms, %s alone %.2f ms), want 0-%.0f ms",
					added, ms(total), dst, ms(codecOnly), maxAddedDelayMs)
			}
		})
	}
	t.Logf("delay added by the Transcoder, speech, 20 ms packets:\n%s", strings.Join(report, "\n"))
}

// TestTranscoderFlush ends streams whose packets do not fill whole 20 ms frames, or that pass
// through a resampler: Flush sends what is left as one last frame, so the output covers the
// whole input; it appends nothing when nothing is held, nothing when called again, and the
// transcoder refuses packets afterwards.
func TestTranscoderFlush(t *testing.T) {
	for _, c := range []struct {
		src, dst  Codec
		packetMs  int
		packets   int
		wantFlush int
	}{
		{PCMU, G722, 20, 10, 1}, // the resampler's 2 ms look-ahead
		{PCMU, G722, 30, 5, 1},  // 150 ms: 7 frames at once, 10 ms (and the look-ahead) left
		{PCMU, Opus, 20, 10, 0}, // no resampler, whole frames: nothing left
		{PCMU, PCMA, 10, 5, 1},  // 50 ms: 2 frames, 10 ms left
		{G722, PCMU, 20, 10, 1},
	} {
		t.Run(fmt.Sprintf("%s%dms→%s", c.src, c.packetMs, c.dst), func(t *testing.T) {
			rate := c.src.SampleRate()
			n := rate * c.packetMs / 1000
			frames20 := (n*c.packets + c.src.FrameSamples() - 1) / c.src.FrameSamples()
			whole := concat(payloads(encodeStream(t, c.src, rate, audiotest.Tone(rate, frames20*c.src.FrameSamples(), 0.5, 1000))))
			step := len(whole) / frames20 * c.packetMs / 20 // G.711 and G.722 code a fixed rate
			tr, err := NewTranscoder(c.src, c.dst, DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			var frames [][]byte
			total := 0
			for i := 0; i < c.packets; i++ {
				if frames, err = tr.Transcode(frames[:0], whole[i*step:(i+1)*step], uint16(i), uint32(i*c.packetMs*8)); err != nil {
					t.Fatal(err)
				}
				total += len(frames)
			}
			if want := c.packets * c.packetMs / 20; total != want {
				t.Errorf("%d frames for %d ms before Flush, want every whole frame: %d", total, c.packets*c.packetMs, want)
			}
			if frames, err = tr.Flush(frames[:0]); err != nil {
				t.Fatal(err)
			}
			if len(frames) != c.wantFlush {
				t.Errorf("Flush: %d frames, want %d", len(frames), c.wantFlush)
			}
			if frames, err = tr.Flush(frames[:0]); err != nil || len(frames) != 0 {
				t.Errorf("second Flush: %d frames, %v", len(frames), err)
			}
			if _, err := tr.Transcode(frames[:0], whole[:step], uint16(c.packets), 0); err == nil {
				t.Error("Transcode after Flush: want an error")
			}
		})
	}
}

// TestStreamResamplerPadsStart: the stream halves' resampler returns exactly what each 20 ms
// piece is worth at every rate pair the bridge uses, from the first piece on, and the stream
// it produces is the one-shot Resample output delayed by the padding (the filter's look-ahead,
// 2 ms at 8 kHz), sample for sample.
func TestStreamResamplerPadsStart(t *testing.T) {
	for _, r := range [][2]int{{8000, 16000}, {16000, 8000}, {8000, 48000}, {48000, 8000}, {16000, 48000}, {48000, 16000}} {
		t.Run(fmt.Sprintf("%d→%d", r[0], r[1]), func(t *testing.T) {
			in := audiotest.Tone(r[0], r[0], 0.5, 1000)
			rs, err := newStreamResampler(r[0], r[1])
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			var out []int16
			piece, want := r[0]/50, r[1]/50
			for off := 0; off+piece <= len(in); off += piece {
				n := len(out)
				if out, err = rs.Resample(out, in[off:off+piece]); err != nil {
					t.Fatal(err)
				}
				if len(out)-n != want {
					t.Fatalf("piece %d: %d samples out, want %d", off/piece, len(out)-n, want)
				}
			}
			plain := resample(t, in, r[0], r[1])
			pad := len(out) - len(plain)
			if lookAhead := 17 * r[1] / min(r[0], r[1]); pad <= 0 || pad > lookAhead {
				t.Fatalf("padded by %d samples, want 1-%d", pad, lookAhead)
			}
			for i, v := range out[:pad] {
				if v != 0 {
					t.Fatalf("padding sample %d is %d", i, v)
				}
			}
			if !slices.Equal(out[pad:], plain) {
				t.Error("padded stream differs from the one-shot output")
			}
			t.Logf("padded by %d samples (%.2f ms)", pad, float64(pad)*1000/float64(r[1]))
		})
	}
}
