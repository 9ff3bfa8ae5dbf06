package server_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// freeUDPPort returns an even UDP port on 127.0.0.1 whose pair was free a moment ago, for an
// ffmpeg CLI process to bind.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	rtpConn, rtcpConn := rtppeer.ListenPair(t)
	defer rtcpConn.Close()
	defer rtpConn.Close()
	return rtpConn.LocalAddr().(*net.UDPAddr).Port
}

func plainSDP(port int, pt int, name string) string {
	return fmt.Sprintf("v=0\r\no=ffmpeg 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP %d\r\na=rtpmap:%d %s\r\na=ptime:20\r\n", port, pt, pt, name)
}

// TestFFmpegInterop uses the Debian ffmpeg CLI as an independent RTP sender and receiver: a
// 1 kHz tone goes ffmpeg → rtpbridge (leg A) → rtpbridge (leg B) → ffmpeg, and must arrive
// at 1 kHz.
func TestFFmpegInterop(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()

	senderPort := freeUDPPort(t)
	var a struct {
		EndpointID string `json:"endpoint_id"`
		SDPAnswer  string `json:"sdp_answer"`
	}
	c.MustCall("endpoint.create_from_offer", map[string]any{"sdp": plainSDP(senderPort, 0, "PCMU/8000")}, &a)
	aPort := mPort(t, a.SDPAnswer)

	receiverPort := freeUDPPort(t)
	var b struct {
		EndpointID string `json:"endpoint_id"`
		SDPOffer   string `json:"sdp_offer"`
	}
	c.MustCall("endpoint.create_offer", map[string]any{"type": "rtp", "codecs": []string{"PCMU"}}, &b)
	c.MustCall("endpoint.accept_answer", map[string]any{"endpoint_id": b.EndpointID, "sdp": plainSDP(receiverPort, 0, "PCMU/8000")}, nil)

	dir := t.TempDir()
	sdpFile := filepath.Join(dir, "in.sdp")
	if err := os.WriteFile(sdpFile, []byte(plainSDP(receiverPort, 0, "PCMU/8000")), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.raw")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recv := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file,udp,rtp",
		"-i", sdpFile, "-t", "2", "-f", "s16le", "-ar", "8000", "-ac", "1", "-y", out)
	recvOut := &syncBuf{}
	recv.Stdout, recv.Stderr = recvOut, recvOut
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := audiotest.WaitUDPBound(ctx, receiverPort); err != nil {
		t.Fatalf("ffmpeg receiver never bound port %d: %v\n%s", receiverPort, err, recvOut)
	}

	send := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=8000:duration=4",
		"-ac", "1", "-c:a", "pcm_mulaw", "-f", "rtp",
		fmt.Sprintf("rtp://127.0.0.1:%d?localport=%d", aPort, senderPort))
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg sender: %v\n%s", err, out)
	}
	if err := recv.Wait(); err != nil {
		t.Fatalf("ffmpeg receiver: %v\n%s", err, recvOut)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pcm := audiotest.PCMFromBytes(raw)
	if len(pcm) < 8000 {
		t.Fatalf("receiver wrote %d samples", len(pcm))
	}
	if f := audiotest.DominantFrequency(pcm[800:], 8000); math.Abs(f-1000) > 10 {
		t.Fatalf("dominant frequency %.1f Hz, want 1000 Hz", f)
	}
	snr, err := audiotest.SNR(pcm[800:], 8000, 1000)
	if err != nil || snr < 30 {
		t.Fatalf("SNR %.1f dB (%v), want ≥ 30 dB for a byte-exact G.711 path", snr, err)
	}
}

// syncBuf collects a subprocess's output safely.
type syncBuf struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
