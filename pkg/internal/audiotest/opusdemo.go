package audiotest

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// OpusDemo returns the path of opus_demo, libopus's own command-line front end, which
// ffmpeg/build.sh builds from the same pinned libopus source as the library rtpbridge links
// and installs as bin/opus_demo in the FFmpeg prefix. The prefix is the one pkg-config finds
// opus.pc in (PKG_CONFIG_PATH, as the Makefile sets it), else the repository's ffmpeg/prefix.
// The test fails if it is missing: rebuild with `make ffmpeg`.
func OpusDemo(t testing.TB) string {
	t.Helper()
	prefix := ""
	if out, err := exec.Command("pkg-config", "--variable=prefix", "opus").Output(); err == nil {
		prefix = strings.TrimSpace(string(out))
	}
	if prefix == "" {
		prefix = RepoPath(t, "ffmpeg/prefix")
	}
	path := filepath.Join(prefix, "bin", "opus_demo")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("audiotest: %s missing (ffmpeg/build.sh installs it; run `make ffmpeg`): %v", path, err)
	}
	return path
}

// OpusDemoEncode encodes pcm (mono, at rate Hz) with opus_demo -e for application ("voip",
// "audio") at bitrate bit/s with extra options (e.g. "-complexity", "9", "-inbandfec",
// "-loss", "1", "-framesize", "20") and returns its packets. opus_demo sets every option with
// opus_encoder_ctl directly, so it is a route to libopus independent of any FFmpeg wrapper. It
// pads the input's final partial frame with zeros, so it may return one packet more than there
// are whole frames.
func OpusDemoEncode(t testing.TB, pcm []int16, rate int, application string, bitrate int, extra ...string) [][]byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.s16"), filepath.Join(dir, "out.bit")
	if err := os.WriteFile(in, PCMBytes(pcm), 0o600); err != nil {
		t.Fatalf("audiotest: writing %s: %v", in, err)
	}
	args := append([]string{"-e", application, strconv.Itoa(rate), "1", strconv.Itoa(bitrate)}, extra...)
	args = append(args, in, out)
	if b, err := exec.Command(OpusDemo(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("audiotest: opus_demo %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("audiotest: reading opus_demo output: %v", err)
	}
	// opus_demo -e writes each packet as a 32-bit big-endian length, the encoder's 32-bit
	// final range (for bit-exactness checks), then the packet.
	var packets [][]byte
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatalf("audiotest: opus_demo output ends in a %d-byte fragment", len(b))
		}
		n := int(binary.BigEndian.Uint32(b))
		if n > len(b)-8 {
			t.Fatalf("audiotest: opus_demo packet of %d bytes, %d left", n, len(b)-8)
		}
		packets = append(packets, b[8:8+n])
		b = b[8+n:]
	}
	return packets
}
