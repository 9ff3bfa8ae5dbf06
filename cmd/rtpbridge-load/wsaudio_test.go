package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// TestWSAudioInProcess runs -wsaudio, 4 bots for 2 s, against a server in this process: every
// call comes up, audio arrives both ways in real time, and the sessions are gone afterwards.
func TestWSAudioInProcess(t *testing.T) {
	cfg := config.Default()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.RecordingDir = t.TempDir()
	cfg.CacheDir = t.TempDir()
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Tuning{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := runWSAudio(ctx, wsAudioConfig{
		URL: "ws://" + srv.Addrs()[0].String() + "/", Calls: 4, Rate: 16000,
		Duration: 2 * time.Second, Ramp: 200 * time.Millisecond, Settle: 500 * time.Millisecond,
		ServerCPU: selfProbe("getrusage of the test process"),
	})
	if err != nil {
		t.Fatalf("%v (%+v)", err, res)
	}
	if res.SetUp != 4 || len(res.Errors) != 0 {
		t.Fatalf("set up %d, errors %v", res.SetUp, res.Errors)
	}
	// 4 calls × 2 s / 20 ms = 400 frames each way; allow for the window's edges and a slow
	// machine.
	if res.PhoneSent < 360 || res.BotSent < 360 {
		t.Fatalf("sent: phone %d, bot %d", res.PhoneSent, res.BotSent)
	}
	if got := res.BotReceivedMs / 20; got < float64(res.PhoneSent)*0.9 {
		t.Errorf("bots received %.0f frames of %d sent", got, res.PhoneSent)
	}
	if float64(res.PhoneReceived) < float64(res.BotSent)*0.9 {
		t.Errorf("phones received %d packets of %d sent", res.PhoneReceived, res.BotSent)
	}
	if res.ServerCPUSecs <= 0 {
		t.Errorf("no CPU measured")
	}
	for end := time.Now().Add(3 * time.Second); srv.Manager().Count() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Errorf("%d sessions left after teardown", srv.Manager().Count())
			break
		}
	}
}
