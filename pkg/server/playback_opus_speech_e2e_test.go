package server_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
)

// Opus quality is judged on speech (tones are a poor judge of libopus at complexity 9: the
// same 1 kHz tone comes out at 17–40 dB from libopus alone depending on tiny differences in
// its input): a speech file played into an Opus leg scores within 3 dB of libopus alone
// (opus_demo, VoIP, 24 kbit/s, constrained VBR, complexity 9) on the same speech, by
// segmental SNR with both decoded by opus_demo.
func TestPlaybackSpeechIntoOpusAtLibopusParity(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv, dir := startPlayback(t, nil)
	speech := audiotest.Speech(t)
	src, err := os.ReadFile(audiotest.RepoPath(t, "media/speech-16k.wav"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "speech.wav")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	c := testserver.Dial(t, srv)
	c.CreateSession()
	l := legFromOffer(t, c, "recvonly", xOpus.format())
	id, _ := createFile(t, c, map[string]any{"source": path})
	dur := time.Duration(len(speech)) * time.Second / 16000
	waitFinished(t, c, id, dur+3*time.Second)
	pkts := collectQuiet(l.peer, 1<<16, 200*time.Millisecond, 2*time.Second)
	payloads := make([][]byte, len(pkts))
	for i, p := range pkts {
		payloads[i] = p.Payload
	}
	ours := audiotest.OpusDemoDecode(t, payloads, 16000, func(int) bool { return false })
	alone := audiotest.OpusDemoDecode(t, audiotest.OpusDemoEncode(t, speech, 16000, "voip", 24000,
		"-complexity", "9", "-cvbr", "-framesize", "20"), 16000, func(int) bool { return false })
	oursSNR, _ := audiotest.SegmentalSNR(speech, ours, 1600, 320)
	aloneSNR, _ := audiotest.SegmentalSNR(speech, alone, 1600, 320)
	t.Logf("speech through an Opus leg: segmental SNR %.1f dB; libopus alone %.1f dB", oursSNR, aloneSNR)
	if oursSNR < aloneSNR-3 {
		t.Fatalf("speech through an Opus leg: segmental SNR %.1f dB, libopus alone %.1f dB", oursSNR, aloneSNR)
	}
}
