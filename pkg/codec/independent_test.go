package codec

import (
	"bytes"
	"testing"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// TestG711DecoderMatchesReference decodes every code word with FFmpeg and with the Go
// reference decoder.
func TestG711DecoderMatchesReference(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, c := range []struct {
		codec Codec
		ref   func([]byte) []int16
	}{{PCMU, audiotest.DecodeULaw}, {PCMA, audiotest.DecodeALaw}} {
		d, err := NewDecoder(c.codec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decode(nil, all)
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := c.ref(all)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s code %#02x: FFmpeg %d, reference %d", c.codec, i, got[i], want[i])
			}
		}
	}
}

// TestG711EncoderRoundTrip: encoding what the reference decoder produced gives back the code
// words (G.711 reconstruction levels are fixed points of encode∘decode).
func TestG711EncoderRoundTrip(t *testing.T) {
	for _, c := range []struct {
		codec Codec
		ref   func([]byte) []int16
	}{{PCMU, audiotest.DecodeULaw}, {PCMA, audiotest.DecodeALaw}} {
		codes := make([]byte, 160)
		for i := range codes {
			codes[i] = byte(i * 255 / 159)
		}
		if c.codec == PCMU {
			codes[0x7f*159/255] = 0xff // µ-law has two zeros; 0x7f encodes back as 0xff
		}
		enc, err := NewEncoder(c.codec, 8000, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		got, err := enc.Encode(nil, c.ref(codes))
		enc.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i := range codes {
			if got[i] != codes[i] && !(c.codec == PCMU && codes[i] == 0x7f) {
				t.Errorf("%s: code %#02x → %d → %#02x", c.codec, codes[i], c.ref(codes[i : i+1])[0], got[i])
			}
		}
	}
}

// TestG722DecoderMatchesCLI decodes G.722 made by the Debian ffmpeg CLI with our decoder and
// with the CLI: same algorithm, separate builds, identical samples expected.
func TestG722DecoderMatchesCLI(t *testing.T) {
	pcm := audiotest.Tone(16000, 16000, 0.4, 440, 1200)
	g722 := audiotest.FFmpegEncode(t, pcm, 16000, "g722", "g722")
	want := audiotest.FFmpegDecode(t, "g722", g722, 0)
	d, err := NewDecoder(G722)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got []int16
	for off := 0; off < len(g722); off += 160 {
		if got, err = d.Decode(got, g722[off:min(off+160, len(g722))]); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d samples, CLI %d", len(got), len(want))
	}
	diff := 0
	for i := range got {
		if got[i] != want[i] {
			diff++
		}
	}
	if diff > 0 {
		t.Errorf("%d of %d samples differ from the CLI's decode", diff, len(got))
	}
}

// TestOpusEncoderSettings proves the libopus settings by an independent route: the Debian
// ffmpeg CLI's own libopus wrapper, told VoIP, 24 kbit/s, 20 ms, FEC with 1 % expected loss
// and complexity 9, produces byte-identical packets from the same speech; with FEC off (or
// another complexity) the packets differ, so the comparison is sensitive to those settings.
func TestOpusEncoderSettings(t *testing.T) {
	speech := audiotest.Speech(t)[:16000*3]
	ours := payloads(encodeStream(t, Opus, 16000, speech))
	cli := func(extra ...string) [][]byte {
		args := append([]string{"-application", "voip", "-b:a", "24k", "-frame_duration", "20"}, extra...)
		ogg := audiotest.FFmpegEncode(t, speech, 16000, "ogg", "libopus", args...)
		p, err := audiotest.ReadOggPackets(ogg)
		if err != nil {
			t.Fatal(err)
		}
		return p[2:]
	}
	// The CLI flushes one more, padded, packet at the end of its input; compare the rest.
	same := func(a, b [][]byte) bool {
		if len(b) != len(a)+1 {
			return false
		}
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	if ref := cli("-fec", "1", "-packet_loss", "1", "-compression_level", "9"); !same(ours, ref) {
		t.Errorf("our Opus packets differ from libopus driven by the CLI with the documented settings (%d vs %d packets)", len(ours), len(ref))
	}
	if same(ours, cli("-fec", "0", "-compression_level", "9")) {
		t.Error("packets identical with FEC off: the comparison cannot see the FEC setting")
	}
	if same(ours, cli("-fec", "1", "-packet_loss", "1", "-compression_level", "5")) {
		t.Error("packets identical at complexity 5: the comparison cannot see the complexity")
	}
	var size int
	for _, p := range ours {
		size += len(p)
	}
	if kbps := float64(size*8) / (float64(len(ours)) * 0.02) / 1000; kbps < 18 || kbps > 30 {
		t.Errorf("speech encoded at %.1f kbit/s, want about 24", kbps)
	}
}

// TestOpusComplexityOption checks that Options.OpusComplexity reaches libopus.
func TestOpusComplexityOption(t *testing.T) {
	speech := audiotest.Speech(t)[:16000]
	enc := func(cx int) []byte {
		e, err := NewEncoder(Opus, 16000, Options{OpusComplexity: cx})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		var all []byte
		for _, f := range audiotest.Frames(speech, e.FrameSize()) {
			if all, err = e.Encode(all, f); err != nil {
				t.Fatal(err)
			}
		}
		return all
	}
	if bytes.Equal(enc(0), enc(9)) {
		t.Error("complexity 0 and 9 give identical streams")
	}
}
