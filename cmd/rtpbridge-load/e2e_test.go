package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// TestLoadInProcess runs the load logic, 4 calls for 2 s, against a server started in this
// process. CPU is then getrusage of the whole test process (server and load tool together),
// which the result labels as such.
func TestLoadInProcess(t *testing.T) {
	for _, tc := range []struct{ a, b codec.Codec }{{codec.PCMU, codec.PCMU}, {codec.PCMA, codec.G722}} {
		t.Run(tc.a.Name()+"-"+tc.b.Name(), func(t *testing.T) {
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

			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			res, err := runLoad(ctx, loadConfig{
				URL: "ws://" + srv.Addrs()[0].String() + "/", Calls: 4,
				Duration: 2 * time.Second, Ramp: 200 * time.Millisecond, Settle: 300 * time.Millisecond, Grace: 300 * time.Millisecond,
				CodecA: tc.a, CodecB: tc.b, Media: "../../media/speech-16k.wav", Bidirectional: true,
				ServerCPU: selfProbe("getrusage of the test process: server and load tool together"), InProcess: true,
			})
			if err != nil {
				if res != nil {
					t.Fatalf("%v: %v", err, res.Errors)
				}
				t.Fatal(err)
			}
			if res.CallsUp != 4 || len(res.Errors) != 0 || res.Interrupted {
				t.Fatalf("calls up %d, errors %v, interrupted %v", res.CallsUp, res.Errors, res.Interrupted)
			}
			// session.destroy answers at once and tears down asynchronously (§5).
			for end := time.Now().Add(3 * time.Second); srv.Manager().Count() != 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(end) {
					t.Errorf("%d sessions left after teardown", srv.Manager().Count())
					break
				}
			}
			if len(res.Directions) != 2 {
				t.Fatalf("directions %+v", res.Directions)
			}
			for _, d := range res.Directions {
				// 4 calls × 2 s / 20 ms = 400 packets each way.
				if d.Sent < 360 || d.Sent > 440 {
					t.Errorf("%s: sent %d, want about 400", d.Name, d.Sent)
				}
				if d.LossPct > 1 || d.Duplicates != 0 || d.PairingErrors != 0 {
					t.Errorf("%s: %+v", d.Name, d)
				}
				l := d.Latency
				// Loopback plus, when transcoding, up to one frame held by the re-framing FIFO;
				// generous bounds for a shared machine and the race detector.
				if l.Samples < uint64(d.Sent)*9/10 || l.P50Ms <= 0 || l.P50Ms > 60 || l.P99Ms > 250 || l.MaxMs < l.P99Ms {
					t.Errorf("%s: latency %+v", d.Name, l)
				}
			}
			if sc := res.ServerCPU; sc == nil || sc.Error != "" || sc.Seconds <= 0 || sc.NsPerPacket <= 0 || !sc.InProcess {
				t.Errorf("server CPU %+v", res.ServerCPU)
			}
			if res.ForwardedInWindow < 700 || res.Pacing.Packets < 700 {
				t.Errorf("forwarded %d, paced %d", res.ForwardedInWindow, res.Pacing.Packets)
			}
			if res.Events["endpoint.state_changed"] != 8 {
				t.Errorf("events %v", res.Events)
			}
			var out testWriter
			writeText(&out, res)
			t.Logf("\n%s", out)
		})
	}
}

type testWriter []byte

func (w *testWriter) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }
func (w testWriter) String() string               { return string(w) }
