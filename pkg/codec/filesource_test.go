package codec

import (
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// readAll decodes the whole of s in pieces of odd sizes (as a ring refill would).
func readAll(t *testing.T, s *FileSource) []int16 {
	t.Helper()
	var out []int16
	buf := make([]int16, 997)
	for {
		n, err := s.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if n == 0 {
			t.Fatal("Read returned 0 samples without io.EOF")
		}
	}
}

// TestFileSourceFormats decodes a 1 kHz tone written by the Debian ffmpeg CLI in every listed
// format: the file's own rate, mono, the right frequency, the format's SNR and duration.
func TestFileSourceFormats(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	dir := t.TempDir()
	const freq, dur = 1000.0, 2 * time.Second
	for _, f := range audiotest.FileFormats {
		t.Run(f.Name, func(t *testing.T) {
			path := audiotest.WriteToneFile(t, dir, f.Name, f, freq, 0.5, dur)
			s, err := OpenFile(path)
			if err != nil {
				t.Fatalf("OpenFile: %v", err)
			}
			defer s.Close()
			if s.Rate() != f.Rate {
				t.Errorf("rate %d Hz, want the file's %d Hz", s.Rate(), f.Rate)
			}
			pcm := readAll(t, s)
			got := time.Duration(len(pcm)) * time.Second / time.Duration(s.Rate())
			if d := got - dur; d < -30*time.Millisecond || d > 60*time.Millisecond {
				t.Errorf("decoded %v of audio, want %v", got, dur)
			}
			if s.Duration() != 0 {
				if d := s.Duration() - dur; d < -30*time.Millisecond || d > 80*time.Millisecond {
					t.Errorf("Duration %v, want about %v", s.Duration(), dur)
				}
			}
			if len(pcm) < s.Rate() {
				t.Fatalf("only %d samples", len(pcm))
			}
			mid := pcm[s.Rate()/5 : len(pcm)-s.Rate()/5]
			if fr := audiotest.DominantFrequency(mid, s.Rate()); math.Abs(fr-freq) > 5 {
				t.Errorf("dominant frequency %.1f Hz, want %g", fr, freq)
			}
			fit, err := audiotest.FitTones(mid, s.Rate(), freq)
			if err != nil {
				t.Fatal(err)
			}
			if fit.SNR() < f.MinSNR {
				t.Errorf("SNR %.1f dB, want ≥ %g dB", fit.SNR(), f.MinSNR)
			}
			// Stereo files are averaged, not summed or one channel: the level stays.
			if a := fit.Amplitudes[0]; a < 0.4 || a > 0.6 {
				t.Errorf("amplitude %.3f of full scale, want about 0.5", a)
			}
			t.Logf("%s: %d Hz, %v, SNR %.1f dB, codec %s", f.Name, s.Rate(), got, fit.SNR(), s.CodecName())
		})
	}
}

// TestFileSourceSeek seeks in a chirp (a signal that repeats nowhere) and finds by
// cross-correlation where the audio that follows comes from: sample-exact for PCM and FLAC,
// within 2 ms (the coarse seek §6 allows) for lossy formats.
func TestFileSourceSeek(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		tol  float64 // samples
	}{{"wav_s16", 0.5}, {"flac", 0.5}, {"raw_mulaw", 0.5}, {"mp3", 2e-3}, {"ogg_vorbis", 2e-3}, {"m4a_aac", 2e-3}, {"ogg_opus", 2e-3}} {
		f := formatByName(t, c.name)
		t.Run(c.name, func(t *testing.T) {
			path := audiotest.WriteExprFile(t, dir, c.name, f, audiotest.ChirpExpr, 2*time.Second)
			s, err := OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tol := c.tol
			if tol < 1 {
				tol *= float64(s.Rate()) // seconds → samples
				if c.tol == 0.5 {
					tol = 0.5
				}
			}
			check := func(pos time.Duration, pcm []int16) {
				t.Helper()
				n := s.Rate() / 10
				ref := audiotest.Chirp(s.Rate(), n, pos)
				lag, corr := audiotest.Delay(ref, pcm[:n], s.Rate()/50)
				if math.Abs(lag) > tol || corr < 0.9 {
					t.Errorf("after Seek(%v): audio is %.2f samples off the position (correlation %.2f), tolerance %.1f", pos, lag, corr, tol)
				}
			}
			// Seeks in the middle of playing, forwards and backwards.
			buf := make([]int16, s.Rate()/10)
			for _, pos := range []time.Duration{700 * time.Millisecond, 1100 * time.Millisecond, 200 * time.Millisecond, 900 * time.Millisecond} {
				if err := s.Seek(pos); err != nil {
					t.Fatalf("Seek(%v): %v", pos, err)
				}
				if n, err := s.Read(buf); err != nil || n != len(buf) {
					t.Fatalf("Read after Seek(%v): %d, %v", pos, n, err)
				}
				check(pos, buf)
			}
			// Seeks after the end (a loop's restart), each played to the end.
			for _, pos := range []time.Duration{1500 * time.Millisecond, 300 * time.Millisecond, 0, 1234 * time.Millisecond, 1234 * time.Millisecond, 20 * time.Millisecond} {
				if err := s.Seek(pos); err != nil {
					t.Fatalf("Seek(%v): %v", pos, err)
				}
				pcm := readAll(t, s)
				rest := time.Duration(len(pcm)) * time.Second / time.Duration(s.Rate())
				if d := rest - (2*time.Second - pos); d < -25*time.Millisecond || d > 60*time.Millisecond {
					t.Errorf("after Seek(%v) %v remain, want %v", pos, rest, 2*time.Second-pos)
				}
				check(pos, pcm)
			}
			// Past the end: nothing more.
			if err := s.Seek(3 * time.Second); err != nil {
				t.Fatal(err)
			}
			if n, err := s.Read(buf); n != 0 || !errors.Is(err, io.EOF) {
				t.Errorf("Read after seeking past the end: %d, %v; want 0, io.EOF", n, err)
			}
		})
	}
}

func formatByName(t *testing.T, name string) audiotest.FileFormat {
	for _, f := range audiotest.FileFormats {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no format %s", name)
	return audiotest.FileFormat{}
}

// TestFileSourceBadInput: every kind of unplayable file is an error naming the problem, and
// a file cut short plays what it has.
func TestFileSourceBadInput(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	dir := t.TempDir()
	wav := audiotest.WriteToneFile(t, dir, "good", formatByName(t, "wav_s16"), 440, 0.5, time.Second)
	data, err := os.ReadFile(wav)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	yamaha := filepath.Join(dir, "yamaha.wav")
	audiotest.RunFFmpeg(t, "-f", "lavfi", "-i", "sine=d=1", "-c:a", "adpcm_yamaha", "-f", "wav", "-y", yamaha)
	for _, c := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.wav"), "No such file"},
		{"directory", dir, "not a readable audio file"},
		{"text", write("notes.wav", []byte(strings.Repeat("this is not audio\n", 100))), "not a readable audio file"},
		{"empty", write("empty.mp3", nil), "not a readable audio file"},
		{"truncated header", write("cut.wav", data[:20]), "not a readable audio file"},
		{"codec not built", yamaha, "adpcm_yamaha is not supported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := OpenFile(c.path)
			if err == nil {
				// Some broken files open; then they must not decode to anything.
				_, err = s.Read(make([]int16, 160))
				s.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	t.Run("truncated data plays what it has", func(t *testing.T) {
		s, err := OpenFile(write("half.wav", data[:len(data)/2]))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		pcm := readAll(t, s)
		if got := time.Duration(len(pcm)) * time.Second / 44100; got < 450*time.Millisecond || got > 550*time.Millisecond {
			t.Errorf("decoded %v of a half file of 1 s", got)
		}
	})
	t.Run("closed", func(t *testing.T) {
		s, err := OpenFile(wav)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		s.Close()
		if _, err := s.Read(make([]int16, 10)); err == nil {
			t.Error("Read after Close succeeded")
		}
	})
}

// FuzzFileSource: a downloaded file is bytes from the network that libavformat and libavcodec
// parse; whatever they are, opening and decoding them ends with audio or an error, never a
// crash or a hang. The extension picks the probing path (raw formats by extension).
func FuzzFileSource(f *testing.F) {
	dir := f.TempDir()
	for _, name := range []string{"wav_s16", "mp3", "ogg_vorbis", "flac", "m4a_aac", "raw_g722", "caf_alac"} {
		for _, ff := range audiotest.FileFormats {
			if ff.Name != name {
				continue
			}
			if _, err := os.Stat(audiotest.FFmpegCLI); err != nil {
				break
			}
			p := audiotest.WriteToneFile(f, dir, name, ff, 440, 0.5, 200*time.Millisecond)
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, uint8(len(name)))
		}
	}
	f.Add([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), uint8(0))
	f.Add([]byte{0xff, 0xfb, 0x90, 0x00}, uint8(1))
	exts := []string{".wav", ".mp3", ".ogg", ".flac", ".m4a", ".g722", ".ul", ".bin", ".caf", ".webm"}
	f.Fuzz(func(t *testing.T, data []byte, ext uint8) {
		p := filepath.Join(t.TempDir(), "in"+exts[int(ext)%len(exts)])
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenFile(p)
		if err != nil {
			return
		}
		defer s.Close()
		buf := make([]int16, 4096)
		total := 0
		for range 10000 {
			n, err := s.Read(buf)
			total += n
			if err != nil {
				return
			}
		}
		// 10,000 reads of 4096 samples from a fuzz input of a few KiB: a decoder looping.
		if total > 40<<20 {
			t.Fatalf("decoded %d samples from %d bytes", total, len(data))
		}
	})
}
