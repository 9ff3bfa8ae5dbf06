package codec

import (
	"testing"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// TestSmokeToneThroughFFmpeg proves the cgo toolchain end to end (issue 2): a 1 kHz tone
// encoded and decoded through the linked FFmpeg as PCMU, PCMA, G.722 and Opus keeps its
// frequency within 1 %.
func TestSmokeToneThroughFFmpeg(t *testing.T) {
	for _, c := range Codecs() {
		t.Run(c.Name(), func(t *testing.T) {
			rate := c.SampleRate()
			pcm := audiotest.Tone(rate, rate, 0.5, 1000)
			dec, err := NewDecoder(c)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			var out []int16
			for _, p := range encodeStream(t, c, rate, pcm) {
				if out, err = dec.Decode(out, p.payload); err != nil {
					t.Fatal(err)
				}
			}
			if len(out) != len(pcm) {
				t.Errorf("decoded %d samples from %d", len(out), len(pcm))
			}
			f := audiotest.DominantFrequency(out[rate/10:], rate)
			if !within(f, 1000) {
				t.Errorf("%s round trip: %.2f Hz, want 1000 ± 1 %%", c, f)
			}
			t.Logf("%s: 1 kHz tone came back at %.3f Hz", c, f)
		})
	}
}
