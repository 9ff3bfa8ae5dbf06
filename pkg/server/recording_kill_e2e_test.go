package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/recording"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// killHelperEnv names the recording_dir of a server TestRecordingKillHelper runs in a process of
// its own, so that TestRecordingSurvivesSIGKILL can kill it.
const killHelperEnv = "RTPBRIDGE_KILL_HELPER_RECDIR"

// TestRecordingKillHelper is not a test: run by TestRecordingSurvivesSIGKILL in a child
// process, it serves rtpbridge until killed and prints its address. Otherwise it does nothing.
func TestRecordingKillHelper(t *testing.T) {
	dir := os.Getenv(killHelperEnv)
	if dir == "" {
		return
	}
	cfg := config.Default()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.RecordingDir = dir
	cfg.CacheDir = filepath.Join(dir, ".cache")
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), server.Tuning{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	srv.Start()
	fmt.Println("addr", srv.Addrs()[0].String())
	select {} // until SIGKILL
}

// TestRecordingSurvivesSIGKILL kills rtpbridge (a real process) in the middle of a recorded call:
// the WAV, the Ogg and the PCAP it leaves all play up to their last flush, and pcap2wav
// converts the PCAP.
func TestRecordingSurvivesSIGKILL(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	rec := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRecordingKillHelper$")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+rec)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	addrC := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "addr "); ok {
				addrC <- a
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrC:
	case <-time.After(20 * time.Second):
		t.Fatal("the helper rtpbridge did not start")
	}

	c := testserver.Dial(t, &testserver.Server{Addr: addr})
	c.CreateSession()
	var peers []*rtppeer.Peer
	for range 2 {
		peer := rtppeer.New(t)
		var res struct {
			SDPAnswer string `json:"sdp_answer"`
		}
		c.MustCall("endpoint.create_from_offer", map[string]any{"sdp": peer.Offer([]string{"0 PCMU/8000"})}, &res)
		peer.RemoteFromSDP(res.SDPAnswer, false)
		peers = append(peers, peer)
	}
	for _, params := range []map[string]any{
		{"file_path": filepath.Join(rec, "killed.wav"), "format": "wav", "layout": "separate"},
		{"file_path": filepath.Join(rec, "killed.ogg"), "format": "ogg"},
		{"file_path": filepath.Join(rec, "killed.pcap")},
	} {
		c.MustCall("recording.start", params, nil)
	}
	toneA := audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, 3*8000, 0.3, 440))
	toneB := audiotest.EncodePayloads(t, "PCMU", audiotest.Tone(8000, 3*8000, 0.3, 1000))
	ha := rtp.Header{PayloadType: 0, SSRC: 0xa}
	hb := rtp.Header{PayloadType: 0, SSRC: 0xb}
	begin := time.Now()
	for i := range 150 { // 3 s of call; the kill comes while it still runs
		peers[0].Send(ha, toneA[i])
		peers[1].Send(hb, toneB[i])
		ha.SequenceNumber, ha.Timestamp = ha.SequenceNumber+1, ha.Timestamp+160
		hb.SequenceNumber, hb.Timestamp = hb.SequenceNumber+1, hb.Timestamp+160
		time.Sleep(time.Until(begin.Add(time.Duration(i+1) * 20 * time.Millisecond)))
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited

	wav := filepath.Join(rec, "killed.wav")
	if pr := audiotest.FFprobe(t, wav); pr.Codec != "pcm_s16le" || pr.Channels != 2 || pr.Duration < 1.5 {
		t.Fatalf("killed.wav: %+v", pr)
	}
	ch := audiotest.DecodeChannels(t, wav, 2, 16000)
	for i, want := range []float64{440, 1000} {
		if f := audiotest.DominantFrequency(ch[i][8000:24000], 16000); math.Abs(f-want) > 5 {
			t.Fatalf("killed.wav channel %d: dominant %.1f Hz, want %v", i+1, f, want)
		}
	}
	ogg := filepath.Join(rec, "killed.ogg")
	if pr := audiotest.FFprobe(t, ogg); pr.Codec != "opus" || pr.Duration < 1.5 {
		t.Fatalf("killed.ogg: %+v", pr)
	}
	mixed := audiotest.DecodeChannels(t, ogg, 1, 16000)[0]
	if fit, err := audiotest.FitTones(mixed[8000:16000], 16000, 440, 1000); err != nil || fit.Amplitudes[0] < 0.2 || fit.Amplitudes[1] < 0.2 {
		t.Fatalf("killed.ogg: %+v %v", fit, err)
	}
	lines := tsharkRTP(t, filepath.Join(rec, "killed.pcap"))
	if len(lines) < 200 {
		t.Fatalf("tshark reads %d RTP packets from killed.pcap", len(lines))
	}
	in, err := os.Open(filepath.Join(rec, "killed.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	conv := filepath.Join(t.TempDir(), "conv.wav")
	out, err := os.Create(conv)
	if err != nil {
		t.Fatal(err)
	}
	st, err := recording.ConvertPCAP(in, out, recording.ConvertOptions{Container: "wav", Separate: true, Rate: 16000})
	out.Close()
	if err != nil || st.Parties != 2 {
		t.Fatalf("pcap2wav of the killed PCAP: %+v %v", st, err)
	}
	b, _ := json.Marshal(st)
	t.Logf("killed after 3 s: WAV %.2f s, Ogg %.2f s, PCAP %d RTP packets; pcap2wav %s",
		audiotest.FFprobe(t, wav).Duration, audiotest.FFprobe(t, ogg).Duration, len(lines), b)
}
