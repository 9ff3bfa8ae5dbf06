package codec

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
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

// TestOpusEncoderSettings proves the libopus settings by an independent route: opus_demo,
// libopus's own front end built from the same pinned source (ffmpeg/build.sh), told VoIP,
// 24 kbit/s, 20 ms and complexity 9 through opus_encoder_ctl, with libopus's defaults for FEC
// and expected loss (none: a path that reports no loss), produces byte-identical packets from
// the same speech; with FEC on (or another complexity) the packets differ, so the comparison
// is sensitive to those settings. The protection SetLossProtection sets while encoding
// (FECPolicy) reaches libopus the same way: FEC at 1 % expected loss is byte-identical to
// opus_demo -inbandfec -loss 1, and differs from -loss 10. When the Debian ffmpeg CLI links
// the same libopus version (on trixie), its own libopus wrapper must agree too; encoders of
// different libopus versions differ by design, so on an older Debian that comparison is left
// out.
func TestOpusEncoderSettings(t *testing.T) {
	speech := audiotest.Speech(t)[:16000*3]
	ours := payloads(encodeStream(t, Opus, 16000, speech))
	fec1 := encodeOpusProtected(t, speech, LossProtection{FEC: true, ExpectedLoss: 1})
	demo := func(extra ...string) [][]byte {
		return audiotest.OpusDemoEncode(t, speech, 16000, "voip", 24000, append([]string{"-framesize", "20"}, extra...)...)
	}
	// Both references flush one more, padded, packet at the end of their input; compare the rest.
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
	if ref := demo("-complexity", "9"); !same(ours, ref) {
		t.Errorf("our Opus packets differ from libopus driven by opus_demo with the documented settings (%d vs %d packets)", len(ours), len(ref))
	}
	if same(ours, demo("-complexity", "9", "-inbandfec", "-loss", "1")) {
		t.Error("packets identical with FEC on: the comparison cannot see the FEC setting")
	}
	if same(ours, demo("-complexity", "5")) {
		t.Error("packets identical at complexity 5: the comparison cannot see the complexity")
	}
	if ref := demo("-complexity", "9", "-inbandfec", "-loss", "1"); !same(fec1, ref) {
		t.Errorf("with FEC at 1 %% set while open, our packets differ from opus_demo -inbandfec -loss 1 (%d vs %d packets)", len(fec1), len(ref))
	}
	if same(fec1, demo("-complexity", "9", "-inbandfec", "-loss", "10")) {
		t.Error("packets identical at 10 % expected loss: the comparison cannot see the expected loss")
	}

	if cliOpus, pinned := debianLibopusVersion(t), pinnedOpusVersion(t); cliOpus != pinned {
		t.Logf("the Debian ffmpeg CLI links libopus %s, rtpbridge %s: no byte comparison with the CLI", cliOpus, pinned)
	} else {
		cli := func(extra ...string) [][]byte {
			args := append([]string{"-application", "voip", "-b:a", "24k", "-frame_duration", "20"}, extra...)
			ogg := audiotest.FFmpegEncode(t, speech, 16000, "ogg", "libopus", args...)
			p, err := audiotest.ReadOggPackets(ogg)
			if err != nil {
				t.Fatal(err)
			}
			return p[2:]
		}
		if ref := cli("-compression_level", "9"); !same(ours, ref) {
			t.Errorf("our Opus packets differ from libopus %s driven by the CLI with the documented settings (%d vs %d packets)", pinned, len(ours), len(ref))
		}
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

// pinnedOpusVersion returns the libopus version ffmpeg/versions.env pins (OPUS_UPSTREAM_VERSION).
func pinnedOpusVersion(t *testing.T) string {
	b, err := os.ReadFile(audiotest.RepoPath(t, "ffmpeg/versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "OPUS_UPSTREAM_VERSION="); ok {
			return v
		}
	}
	t.Fatal("ffmpeg/versions.env pins no OPUS_UPSTREAM_VERSION")
	return ""
}

// debianLibopusVersion returns the upstream version of the Debian libopus0 package the ffmpeg
// CLI links ("1.3.1" for 1.3.1-3), or "unknown".
func debianLibopusVersion(t *testing.T) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "libopus0").Output()
	if err != nil || len(out) == 0 {
		return "unknown"
	}
	v := string(out)
	if i := strings.Index(v, ":"); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		v = v[:i]
	}
	return v
}
