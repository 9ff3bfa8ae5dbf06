package audiotest

import (
	"encoding/json"
	"math"
	"os/exec"
	"strconv"
	"testing"
)

// Probe is what ffprobe reports about an audio file's one stream.
type Probe struct {
	Codec      string
	Channels   int
	SampleRate int
	Duration   float64 // seconds
}

// FFprobe reads an audio file with Debian's ffprobe; the test fails unless it holds exactly one
// stream.
func FFprobe(t testing.TB, path string) Probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries",
		"stream=codec_name,channels,sample_rate:format=duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("audiotest: ffprobe %s: %v", path, err)
	}
	var res struct {
		Streams []struct {
			CodecName  string `json:"codec_name"`
			Channels   int    `json:"channels"`
			SampleRate string `json:"sample_rate"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Streams) != 1 {
		t.Fatalf("audiotest: ffprobe %s: %s", path, out)
	}
	s := res.Streams[0]
	p := Probe{Codec: s.CodecName, Channels: s.Channels}
	p.SampleRate, _ = strconv.Atoi(s.SampleRate)
	p.Duration, _ = strconv.ParseFloat(res.Format.Duration, 64)
	return p
}

// DecodeChannels decodes an audio file of channels channels with the ffmpeg CLI at rate Hz and
// returns one slice per channel.
func DecodeChannels(t testing.TB, path string, channels, rate int) [][]int16 {
	t.Helper()
	pcm := PCMFromBytes(RunFFmpeg(t, "-i", path, "-ar", strconv.Itoa(rate), "-ac", strconv.Itoa(channels),
		"-f", "s16le", "-c:a", "pcm_s16le", "pipe:1"))
	out := make([][]int16, channels)
	for i, v := range pcm {
		out[i%channels] = append(out[i%channels], v)
	}
	return out
}

// RMS is pcm's root mean square, full scale 1.
func RMS(pcm []int16) float64 {
	var sum float64
	for _, v := range pcm {
		f := float64(v) / 32768
		sum += f * f
	}
	return math.Sqrt(sum / float64(max(len(pcm), 1)))
}

// Onset is the index of the first 2.5 ms step whose 5 ms window holds sound (RMS above 0.02),
// or -1.
func Onset(pcm []int16, rate int) int {
	win := rate / 200
	for i := 0; i+win <= len(pcm); i += win / 2 {
		if RMS(pcm[i:i+win]) > 0.02 {
			return i
		}
	}
	return -1
}
