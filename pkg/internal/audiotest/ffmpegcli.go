package audiotest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// FFmpegCLI is the Debian ffmpeg program used as an independent judge. It is a separate
// FFmpeg build (Debian's, with its own decoders) from the static one rtpbridge links.
const FFmpegCLI = "/usr/bin/ffmpeg"

// RequireFFmpeg skips the test when the ffmpeg CLI is not installed.
func RequireFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(FFmpegCLI); err != nil {
		t.Skipf("audiotest: %s is not installed (apt-get install ffmpeg); skipping a check that needs the independent ffmpeg CLI", FFmpegCLI)
	}
}

// RunFFmpeg runs the ffmpeg CLI with args (after -hide_banner -loglevel error -nostdin) and
// returns its standard output; the test fails if ffmpeg fails.
func RunFFmpeg(t testing.TB, args ...string) []byte {
	t.Helper()
	RequireFFmpeg(t)
	full := append([]string{"-hide_banner", "-loglevel", "error", "-nostdin"}, args...)
	cmd := exec.Command(FFmpegCLI, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("audiotest: ffmpeg %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// FFmpegDecode decodes data, a file in the ffmpeg input format format ("mulaw", "alaw",
// "g722", "ogg", "wav", ...), with the ffmpeg CLI and returns mono 16-bit PCM. With rate 0 the
// decoder's own rate is kept (8000 for G.711, 16000 for G.722, 48000 for Opus), so no
// resampling muddies the judgement; otherwise the CLI resamples to rate.
func FFmpegDecode(t testing.TB, format string, data []byte, rate int) []int16 {
	t.Helper()
	return FFmpegDecodeWith(t, format, "", data, rate)
}

// FFmpegDecodeWith is FFmpegDecode with the CLI's decoder chosen by name (e.g. "libopus"
// instead of FFmpeg's native "opus"); an empty decoder lets the CLI choose.
func FFmpegDecodeWith(t testing.TB, format, decoder string, data []byte, rate int) []int16 {
	t.Helper()
	RequireFFmpeg(t)
	in := filepath.Join(t.TempDir(), "in."+format)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatalf("audiotest: writing %s: %v", in, err)
	}
	args := []string{"-f", format}
	if decoder != "" {
		args = append(args, "-c:a", decoder)
	}
	args = append(args, "-i", in, "-ac", "1")
	if rate > 0 {
		args = append(args, "-ar", strconv.Itoa(rate))
	}
	args = append(args, "-f", "s16le", "-c:a", "pcm_s16le", "pipe:1")
	return PCMFromBytes(RunFFmpeg(t, args...))
}

// FFmpegEncode encodes pcm (mono, at rate Hz) with the ffmpeg CLI into the output format
// format using codec and any extra output options, and returns the file's bytes. It gives
// tests packets from an encoder that is not the one under test.
func FFmpegEncode(t testing.TB, pcm []int16, rate int, format, codec string, extra ...string) []byte {
	t.Helper()
	RequireFFmpeg(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.s16")
	if err := os.WriteFile(in, PCMBytes(pcm), 0o600); err != nil {
		t.Fatalf("audiotest: writing %s: %v", in, err)
	}
	args := []string{"-f", "s16le", "-ar", strconv.Itoa(rate), "-ac", "1", "-i", in, "-c:a", codec}
	args = append(args, extra...)
	args = append(args, "-f", format, "pipe:1")
	return RunFFmpeg(t, args...)
}
