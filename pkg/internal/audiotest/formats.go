package audiotest

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// FileFormat is an audio file format file playback must read (PROTOCOL.md §29, D18), with
// how the Debian ffmpeg CLI writes a test file in it.
type FileFormat struct {
	// Name identifies the case in test names.
	Name string
	// Ext is the file name extension, with the dot. Raw formats (G.711, G.722, GSM) carry
	// no header, so FFmpeg recognises them by this extension alone.
	Ext string
	// Rate and Channels are what the file is written with; Rate is also the rate a decoder
	// reports for it.
	Rate, Channels int
	// Args are the ffmpeg output options (codec, muxer, bitrate).
	Args []string
	// MinSNR is the SNR, in dB, a correct decode of a full-scale/2 tone reaches at the file's
	// own rate: high for lossless formats, the codec's own limit for lossy ones.
	MinSNR float64
}

// FileFormats is every file format that playback is shown to read. AMR is missing: Debian's
// ffmpeg CLI has no AMR encoder, so no test file can be made here.
var FileFormats = []FileFormat{
	{"wav_s16", ".wav", 44100, 2, []string{"-c:a", "pcm_s16le", "-f", "wav"}, 60},
	{"wav_u8", ".wav", 8000, 1, []string{"-c:a", "pcm_u8", "-f", "wav"}, 35},
	{"wav_s24", ".wav", 48000, 2, []string{"-c:a", "pcm_s24le", "-f", "wav"}, 60},
	{"wav_s32", ".wav", 32000, 1, []string{"-c:a", "pcm_s32le", "-f", "wav"}, 60},
	{"wav_f32", ".wav", 48000, 2, []string{"-c:a", "pcm_f32le", "-f", "wav"}, 60},
	{"wav_f64", ".wav", 22050, 1, []string{"-c:a", "pcm_f64le", "-f", "wav"}, 60},
	{"wav_mulaw", ".wav", 8000, 1, []string{"-c:a", "pcm_mulaw", "-f", "wav"}, 33},
	{"wav_alaw", ".wav", 8000, 1, []string{"-c:a", "pcm_alaw", "-f", "wav"}, 33},
	{"wav_adpcm_ms", ".wav", 16000, 1, []string{"-c:a", "adpcm_ms", "-f", "wav"}, 25},
	{"wav_adpcm_ima", ".wav", 16000, 2, []string{"-c:a", "adpcm_ima_wav", "-f", "wav"}, 25},
	{"wav_gsm_ms", ".wav", 8000, 1, []string{"-c:a", "libgsm_ms", "-f", "wav"}, 8},
	{"w64", ".w64", 44100, 2, []string{"-c:a", "pcm_s16le", "-f", "w64"}, 60},
	{"mp3", ".mp3", 44100, 2, []string{"-c:a", "libmp3lame", "-b:a", "192k", "-f", "mp3"}, 30},
	{"ogg_vorbis", ".ogg", 44100, 2, []string{"-c:a", "libvorbis", "-q:a", "6", "-f", "ogg"}, 30},
	{"ogg_opus", ".opus", 48000, 2, []string{"-c:a", "libopus", "-b:a", "128k", "-f", "ogg"}, 25},
	{"ogg_flac", ".oga", 44100, 2, []string{"-c:a", "flac", "-f", "ogg"}, 60},
	{"flac", ".flac", 48000, 2, []string{"-c:a", "flac", "-f", "flac"}, 60},
	{"m4a_aac", ".m4a", 44100, 2, []string{"-c:a", "aac", "-b:a", "192k", "-f", "ipod"}, 30},
	{"m4a_alac", ".m4a", 44100, 2, []string{"-c:a", "alac", "-f", "ipod"}, 60},
	{"aiff", ".aiff", 44100, 2, []string{"-c:a", "pcm_s16be", "-f", "aiff"}, 60},
	{"caf_alac", ".caf", 48000, 1, []string{"-c:a", "alac", "-f", "caf"}, 60},
	{"caf_s24", ".caf", 44100, 2, []string{"-c:a", "pcm_s24be", "-f", "caf"}, 60},
	{"webm_opus", ".webm", 48000, 2, []string{"-c:a", "libopus", "-b:a", "128k", "-f", "webm"}, 25},
	{"mka_flac", ".mka", 96000, 2, []string{"-c:a", "flac", "-f", "matroska"}, 60},
	{"raw_mulaw", ".ul", 8000, 1, []string{"-c:a", "pcm_mulaw", "-f", "mulaw"}, 33},
	{"raw_alaw", ".al", 8000, 1, []string{"-c:a", "pcm_alaw", "-f", "alaw"}, 33},
	{"raw_g722", ".g722", 16000, 1, []string{"-c:a", "g722", "-f", "g722"}, 20},
	{"raw_gsm", ".gsm", 8000, 1, []string{"-c:a", "libgsm", "-f", "gsm"}, 8},
}

// InputArgs are the ffmpeg CLI options that must precede -i to read a file of format f:
// headerless formats need their demuxer (and raw G.711 its rate) named.
func (f FileFormat) InputArgs() []string {
	switch f.Ext {
	case ".ul":
		return []string{"-f", "mulaw", "-ar", "8000", "-ac", "1"}
	case ".al":
		return []string{"-f", "alaw", "-ar", "8000", "-ac", "1"}
	case ".g722":
		return []string{"-f", "g722"}
	case ".gsm":
		return []string{"-f", "gsm"}
	}
	return nil
}

// WriteToneFile writes, with the ffmpeg CLI, dur of a sine at freq Hz with peak amplitude amp
// (fraction of full scale) into dir/name+f.Ext in format f (every channel the same tone), and
// returns the path.
func WriteToneFile(t testing.TB, dir, name string, f FileFormat, freq, amp float64, dur time.Duration) string {
	t.Helper()
	return WriteExprFile(t, dir, name, f, fmt.Sprintf("%g*sin(2*PI*%g*t)", amp, freq), dur)
}

// ChirpExpr is an ffmpeg aevalsrc expression for a sine sweeping from 200 Hz at t=0 up by
// 900 Hz a second, with peak amplitude 0.5; Chirp computes the same signal. It repeats
// nowhere, so a lag search finds where in a file a piece of it comes from.
const ChirpExpr = "0.5*sin(2*PI*(200*t+450*t*t))"

// Chirp returns n samples at rate Hz of ChirpExpr starting at time from.
func Chirp(rate, n int, from time.Duration) []int16 {
	out := make([]int16, n)
	for i := range out {
		tt := from.Seconds() + float64(i)/float64(rate)
		out[i] = clip16(0.5 * math.Sin(2*math.Pi*(200*tt+450*tt*tt)) * 32767)
	}
	return out
}

// WriteExprFile is WriteToneFile for any aevalsrc expression of t (the same on every channel).
func WriteExprFile(t testing.TB, dir, name string, f FileFormat, expr string, dur time.Duration) string {
	t.Helper()
	path := filepath.Join(dir, name+f.Ext)
	src := expr
	for i := 1; i < f.Channels; i++ {
		src += "|" + expr
	}
	args := []string{"-f", "lavfi", "-i", fmt.Sprintf("aevalsrc=%s:s=%d:d=%g", src, f.Rate, dur.Seconds()),
		"-ar", strconv.Itoa(f.Rate), "-ac", strconv.Itoa(f.Channels)}
	args = append(args, f.Args...)
	args = append(args, "-y", path)
	RunFFmpeg(t, args...)
	return path
}
