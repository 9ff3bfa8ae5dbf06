package server_test

import (
	"math"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
)

// AMR-NB files play too (Debian's ffmpeg CLI has no AMR encoder; sox writes AMR-NB through
// opencore-amr, from libsox-fmt-all): a 1 kHz tone reaches a PCMU leg at the right frequency,
// as clean as the file itself allows (the ffmpeg CLI's own decode, less 3 dB).
func TestPlaybackAMRNB(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	audiotest.RequireSox(t)
	srv, dir := startPlayback(t, nil)
	path := filepath.Join(dir, "tone.amr")
	if out, err := exec.Command(audiotest.SoxCLI, "-n", "-r", "8000", "-c", "1", "-t", "amr-nb", path, "synth", "1.5", "sine", "1000", "vol", "0.5").CombinedOutput(); err != nil {
		t.Fatalf("sox writing AMR-NB (libsox-fmt-all): %v\n%s", err, out)
	}
	c := testserver.Dial(t, srv)
	c.CreateSession()
	l := legFromOffer(t, c, "recvonly", xPCMU.format())
	id, _ := createFile(t, c, map[string]any{"source": path})
	if data, _ := waitFinished(t, c, id, 5*time.Second); data["reason"] != "completed" {
		t.Fatalf("finished %v, want reason completed", data)
	}
	pcm := decodeLeg(t, xPCMU, collectQuiet(l.peer, 1000, 200*time.Millisecond, 2*time.Second))
	if got := time.Duration(len(pcm)) * time.Second / 8000; got < 1400*time.Millisecond || got > 1600*time.Millisecond {
		t.Fatalf("%v of audio, want 1.5 s", got)
	}
	w := steadyWindow(pcm, 8000)
	if f := audiotest.DominantFrequency(w, 8000); math.Abs(f-1000) > 5 {
		t.Fatalf("dominant frequency %.1f Hz, want 1000", f)
	}
	snr, err := audiotest.SNR(w, 8000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	ref := referenceSNR(t, audiotest.FileFormat{Ext: ".amr", Rate: 8000, Channels: 1}, path, 8000, 1000)
	t.Logf("AMR-NB → PCMU: SNR %.1f dB (the file decoded by the ffmpeg CLI: %.1f dB)", snr, ref)
	if snr < min(30, ref-3) {
		t.Fatalf("SNR %.1f dB, want ≥ %.1f", snr, min(30, ref-3))
	}
}
