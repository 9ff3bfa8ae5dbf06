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

// OpusDemoDecode decodes Opus packets (mono) with opus_demo -d at rate Hz, libopus's own
// decoder driven by its own front end, with the packets for which lost returns true treated
// as lost (-lossfile): opus_demo then conceals them with libopus's PLC, except that the last
// frame of each gap is decoded from the next packet's in-band FEC (LBRR) when that packet
// carries any, as a receiver that honours useinbandfec does. It returns the PCM.
func OpusDemoDecode(t testing.TB, packets [][]byte, rate int, lost func(i int) bool) []int16 {
	t.Helper()
	dir := t.TempDir()
	in, lossFile, out := filepath.Join(dir, "in.bit"), filepath.Join(dir, "loss.txt"), filepath.Join(dir, "out.s16")
	var bits []byte
	var loss strings.Builder
	for i, p := range packets {
		// Length, the encoder's final range (0: opus_demo then skips its bit-exactness
		// check), the packet.
		bits = binary.BigEndian.AppendUint32(bits, uint32(len(p)))
		bits = binary.BigEndian.AppendUint32(bits, 0)
		bits = append(bits, p...)
		if lost != nil && lost(i) {
			loss.WriteString("1\n")
		} else {
			loss.WriteString("0\n")
		}
	}
	if err := os.WriteFile(in, bits, 0o600); err != nil {
		t.Fatalf("audiotest: writing %s: %v", in, err)
	}
	if err := os.WriteFile(lossFile, []byte(loss.String()), 0o600); err != nil {
		t.Fatalf("audiotest: writing %s: %v", lossFile, err)
	}
	args := []string{"-d", strconv.Itoa(rate), "1", "-lossfile", lossFile, in, out}
	if b, err := exec.Command(OpusDemo(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("audiotest: opus_demo %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("audiotest: reading opus_demo output: %v", err)
	}
	return PCMFromBytes(b)
}

// OpusHasLBRR reports whether an Opus packet carries in-band FEC (LBRR) data for the frame
// before it, as libopus's opus_packet_has_lbrr (1.5) tells: SILK and hybrid packets start
// their first frame with one VAD flag per 20 ms SILK frame and then the LBRR flag, each coded
// as a plain bit (RFC 6716 §4.2.3); CELT-only packets carry no LBRR.
func OpusHasLBRR(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	toc := p[0]
	config := toc >> 3
	if config >= 16 {
		return false
	}
	frame := 480 << (config & 1) // hybrid: 10 or 20 ms at 48 kHz
	if config < 12 {
		frame = [4]int{480, 960, 1920, 2880}[config&3]
	}
	silkFrames := max(1, frame/960)
	data := p[1:]
	skipSize := func() bool { // one frame length: 1 byte, or 2 from 252 up
		switch {
		case len(data) == 0:
			return false
		case data[0] >= 252:
			if len(data) < 2 {
				return false
			}
			data = data[2:]
		default:
			data = data[1:]
		}
		return true
	}
	switch toc & 3 {
	case 2: // two frames, the first one's length given
		if !skipSize() {
			return false
		}
	case 3: // frame count byte, padding length, frame lengths when VBR
		if len(data) == 0 {
			return false
		}
		count := data[0]
		data = data[1:]
		if count&0x40 != 0 {
			for {
				if len(data) == 0 {
					return false
				}
				b := data[0]
				data = data[1:]
				if b != 255 {
					break
				}
			}
		}
		if count&0x80 != 0 {
			for i := 1; i < int(count&0x3f); i++ {
				if !skipSize() {
					return false
				}
			}
		}
	}
	if len(data) == 0 {
		return false
	}
	lbrr := data[0]>>(7-silkFrames)&1 == 1
	if toc&4 != 0 { // stereo: the side channel's flags follow
		lbrr = lbrr || data[0]>>(6-2*silkFrames)&1 == 1
	}
	return lbrr
}
