package main

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
	"github.com/rtpbridge/rtpbridge/pkg/recording"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// writeTwoPartyPCAP records, through rtpbridge's own PCAP writer, two endpoints sending PCMU
// tones (440 Hz from 0 s, 1000 Hz from 0.5 s) for 2 s.
func writeTwoPartyPCAP(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	r, err := recording.NewPCAP(f, recording.Options{QueueSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewEncoder(codec.PCMU, 8000, codec.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	frame := func(freq float64, i int) []byte {
		pcm := make([]int16, 160)
		for j := range pcm {
			pcm[j] = int16(0.3 * 32767 * math.Sin(2*math.Pi*freq*float64(i*160+j)/8000))
		}
		b, err := enc.Encode(nil, pcm)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t0 := time.Now()
	for i := 0; i < 100; i++ {
		at := t0.Add(time.Duration(i+1) * 20 * time.Millisecond)
		r.CaptureRTP(at, recording.EndpointAddr(0), recording.BridgeAddr, &rtpnet.RTPHeader{SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: 1}, frame(440, i))
		if i >= 25 {
			r.CaptureRTP(at, recording.EndpointAddr(1), recording.BridgeAddr, &rtpnet.RTPHeader{SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: 2}, frame(1000, i))
		}
	}
	r.Stop()
	<-r.Done()
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

// channelFrequency decodes a WAV with the ffmpeg CLI and estimates each channel's frequency
// over 0.6-1.6 s by counting zero crossings.
func channelFrequencies(t *testing.T, path string, channels int) []float64 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", path,
		"-f", "s16le", "-ar", "16000", "-c:a", "pcm_s16le", "pipe:1").Output()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v", path, err)
	}
	freqs := make([]float64, channels)
	for c := 0; c < channels; c++ {
		crossings, prev := 0, int16(0)
		for i := int(0.6 * 16000); i < int(1.6*16000); i++ {
			v := int16(binary.LittleEndian.Uint16(out[2*(i*channels+c):]))
			if (prev < 0) != (v < 0) {
				crossings++
			}
			prev = v
		}
		freqs[c] = float64(crossings) / 2
	}
	return freqs
}

func TestPcap2wavCommand(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is missing (make test-tools installs it)")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "call.pcap")
	writeTwoPartyPCAP(t, in)

	sep := filepath.Join(dir, "sep.wav")
	p := exec_(t, []string{"pcap2wav", in, sep, "--layout", "separate", "--rate=16000"})
	if code := p.waitExit(t, 30*time.Second); code != 0 {
		t.Fatalf("pcap2wav exited %d:\n%s", code, p.stderr)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,channels,sample_rate", "-of", "csv=p=0", sep).Output()
	if err != nil || strings.TrimSpace(string(probe)) != "pcm_s16le,16000,2" {
		t.Fatalf("ffprobe: %q %v", probe, err)
	}
	f := channelFrequencies(t, sep, 2)
	if math.Abs(f[0]-440) > 3 || math.Abs(f[1]-1000) > 3 {
		t.Fatalf("separate channels at %v Hz, want 440 and 1000", f)
	}

	mixed := filepath.Join(dir, "mixed.ogg")
	if code := exec_(t, []string{"pcap2wav", in, mixed}).waitExit(t, 30*time.Second); code != 0 {
		t.Fatal("pcap2wav to Ogg failed")
	}
	probe, err = exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,channels", "-of", "csv=p=0", mixed).Output()
	if err != nil || strings.TrimSpace(string(probe)) != "opus,1" {
		t.Fatalf("ffprobe mixed: %q %v", probe, err)
	}

	// Bad invocations: usage and status 2; an existing output is never overwritten (status 1).
	for _, args := range [][]string{{"pcap2wav"}, {"pcap2wav", in, "x.wav", "--layout", "diagonal"}, {"pcap2wav", in, "x.wav", "--rate", "44100"}, {"pcap2wav", in, "x.wav", "--bogus"}} {
		if code := exec_(t, args).waitExit(t, 10*time.Second); code != 2 {
			t.Errorf("%v exited %d, want 2", args, code)
		}
	}
	before, _ := os.ReadFile(sep)
	if code := exec_(t, []string{"pcap2wav", in, sep}).waitExit(t, 10*time.Second); code != 1 {
		t.Errorf("pcap2wav onto an existing file exited %d, want 1", code)
	}
	if after, _ := os.ReadFile(sep); string(after) != string(before) {
		t.Error("an existing output file was changed")
	}
	if code := exec_(t, []string{"pcap2wav", filepath.Join(dir, "missing.pcap"), filepath.Join(dir, "y.wav")}).waitExit(t, 10*time.Second); code != 1 {
		t.Errorf("missing input exited %d, want 1", code)
	}
}
