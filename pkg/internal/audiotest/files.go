package audiotest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// ParseWAV returns the samples and rate of a mono 16-bit PCM WAV file.
func ParseWAV(b []byte) ([]int16, int, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("audiotest: not a RIFF/WAVE file")
	}
	var rate int
	fmtSeen := false
	for off := 12; off+8 <= len(b); {
		id := string(b[off : off+4])
		size := int(binary.LittleEndian.Uint32(b[off+4:]))
		body := off + 8
		if size < 0 || body+size > len(b) {
			return nil, 0, fmt.Errorf("audiotest: WAV chunk %q overruns the file", id)
		}
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, 0, errors.New("audiotest: short WAV fmt chunk")
			}
			format := binary.LittleEndian.Uint16(b[body:])
			channels := binary.LittleEndian.Uint16(b[body+2:])
			rate = int(binary.LittleEndian.Uint32(b[body+4:]))
			bits := binary.LittleEndian.Uint16(b[body+14:])
			if format != 1 || channels != 1 || bits != 16 {
				return nil, 0, fmt.Errorf("audiotest: WAV is format %d, %d channels, %d bits; want PCM mono 16-bit", format, channels, bits)
			}
			fmtSeen = true
		case "data":
			if !fmtSeen {
				return nil, 0, errors.New("audiotest: WAV data before fmt")
			}
			pcm := make([]int16, size/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(b[body+2*i:]))
			}
			return pcm, rate, nil
		}
		off = body + size + size&1
	}
	return nil, 0, errors.New("audiotest: WAV without data chunk")
}

// RepoPath returns the absolute path of rel, a path relative to the repository root (the
// directory holding go.mod, found by walking up from the test's working directory).
func RepoPath(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("audiotest: working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, rel)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("audiotest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Speech returns the committed speech sample media/speech-16k.wav (16 kHz mono).
func Speech(t testing.TB) []int16 {
	t.Helper()
	b, err := os.ReadFile(RepoPath(t, "media/speech-16k.wav"))
	if err != nil {
		t.Fatalf("audiotest: reading speech sample: %v", err)
	}
	pcm, rate, err := ParseWAV(b)
	if err != nil {
		t.Fatalf("audiotest: speech sample: %v", err)
	}
	if rate != 16000 {
		t.Fatalf("audiotest: speech sample is %d Hz, want 16000", rate)
	}
	return pcm
}

// PCMBytes returns pcm as little-endian bytes (s16le).
func PCMBytes(pcm []int16) []byte {
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

// PCMFromBytes parses little-endian 16-bit samples (s16le); a trailing odd byte is ignored.
func PCMFromBytes(b []byte) []int16 {
	pcm := make([]int16, len(b)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return pcm
}
