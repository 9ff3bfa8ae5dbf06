package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/procstat"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

// URL sources end to end (PROTOCOL.md §18, §34): a local HTTP server serves a tone file;
// rtpbridge downloads it into cache_dir, plays it, and reports failures as
// endpoint.file.finished with reason error after removing the endpoint.

// mediaServer serves one file at /tone.wav, with hooks for failures.
type mediaServer struct {
	*httptest.Server
	requests atomic.Int64
	auth     atomic.Value // last Authorization header
}

func newMediaServer(t *testing.T, file []byte) *mediaServer {
	t.Helper()
	ms := &mediaServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/tone.wav", func(w http.ResponseWriter, r *http.Request) {
		ms.requests.Add(1)
		ms.auth.Store(r.Header.Get("Authorization"))
		time.Sleep(100 * time.Millisecond) // simultaneous requests overlap
		w.Write(file)
	})
	mux.HandleFunc("/missing.wav", http.NotFound)
	mux.HandleFunc("/slow.wav", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/notaudio.wav", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(strings.Repeat("text ", 1000))) })
	mux.HandleFunc("/to-metadata.wav", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/x.wav", http.StatusFound)
	})
	ms.Server = httptest.NewServer(mux)
	t.Cleanup(ms.Close)
	return ms
}

// waitFileState waits for endpoint.state_changed events of id until want arrives.
func waitFileState(t *testing.T, c *testserver.Client, id, old, new string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ev := c.WaitEvent(protocol.EventEndpointStateChanged, time.Until(deadline))
		var d map[string]string
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d["endpoint_id"] != id {
			continue
		}
		if d["old_state"] != old || d["new_state"] != new {
			t.Fatalf("state change %v, want %s → %s", d, old, new)
		}
		return
	}
}

func endpointCount(t *testing.T, c *testserver.Client) int {
	t.Helper()
	var info struct {
		Endpoints []any `json:"endpoints"`
	}
	c.MustCall("session.info", nil, &info)
	return len(info.Endpoints)
}

func TestPlaybackURLE2E(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	f := audiotest.FileFormats[0]
	path := audiotest.WriteToneFile(t, t.TempDir(), "tone", f, 1000, 0.5, time.Second)
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ms := newMediaServer(t, file)
	srv, mediaDir := startPlayback(t, func(c *config.Config) { c.FileDownloadNetworks = []string{"127.0.0.1/32"} })
	localCopy := filepath.Join(mediaDir, "local.wav")
	if err := os.WriteFile(localCopy, file, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("plays, with headers, one download for two endpoints", func(t *testing.T) {
		c := testserver.Dial(t, srv)
		c.CreateSession()
		l := legFromOffer(t, c, "recvonly", xPCMU.format())
		params := map[string]any{"source": ms.URL + "/tone.wav", "headers": map[string]string{"Authorization": "Bearer t0k"}}
		id1, _ := createFile(t, c, params)
		id2, _ := createFile(t, c, params)
		info := c.SessionInfo()
		for _, e := range info.Endpoints {
			if (e.EndpointID == id1 || e.EndpointID == id2) && e.State != "buffering" && e.State != "playing" {
				t.Errorf("URL endpoint in state %s, want buffering", e.State)
			}
		}
		waitFileState(t, c, id1, "buffering", "playing")
		data, _ := waitFinished(t, c, id1, 5*time.Second)
		if data["reason"] != "completed" {
			t.Errorf("finished %v", data)
		}
		if n := ms.requests.Load(); n != 1 {
			t.Errorf("%d HTTP requests for two endpoints on one URL, want 1", n)
		}
		if a, _ := ms.auth.Load().(string); a != "Bearer t0k" {
			t.Errorf("Authorization %q, want the headers param", a)
		}
		pcm := decodeLeg(t, xPCMU, collectQuiet(l.peer, 1000, 200*time.Millisecond, 2*time.Second))
		fit, err := audiotest.FitTones(pcm[1600:6400], 8000, 1000)
		if err != nil {
			t.Fatal(err)
		}
		// Two endpoints mixed: the same tone twice, clipped at most.
		if fit.SNR() < 25 || fit.Amplitudes[0] < 0.8 {
			t.Errorf("URL audio: SNR %.1f dB, amplitude %.3f; want the 1 kHz tone of both files", fit.SNR(), fit.Amplitudes[0])
		}
		// A cache hit: no second request.
		id3, _ := createFile(t, c, params)
		waitFileState(t, c, id3, "buffering", "playing")
		if n := ms.requests.Load(); n != 1 {
			t.Errorf("%d HTTP requests after a cache hit, want still 1", n)
		}
	})

	t.Run("shared URL", func(t *testing.T) {
		before := ms.requests.Load()
		var ids []string
		var clients []*testserver.Client
		for range 2 {
			c := testserver.Dial(t, srv)
			c.CreateSession()
			legFromOffer(t, c, "recvonly", xPCMU.format())
			id, _ := createFile(t, c, map[string]any{"source": ms.URL + "/tone.wav", "shared": true})
			ids, clients = append(ids, id), append(clients, c)
		}
		for i, c := range clients {
			waitFileState(t, c, ids[i], "buffering", "playing")
		}
		_, end0 := waitFinished(t, clients[0], ids[0], 5*time.Second)
		_, end1 := waitFinished(t, clients[1], ids[1], 5*time.Second)
		if d := end1.Sub(end0); d < -100*time.Millisecond || d > 100*time.Millisecond {
			t.Errorf("shared URL subscribers finished %v apart", d)
		}
		if n := ms.requests.Load() - before; n != 1 {
			t.Errorf("%d requests for a shared URL played twice, want 1", n)
		}
	})

	for _, tc := range []struct {
		name, path string
		params     map[string]any
		want       string
	}{
		{"404", "/missing.wav", nil, "HTTP 404"},
		{"slow", "/slow.wav", map[string]any{"timeout_ms": 300}, "timed out"},
		{"not audio", "/notaudio.wav", nil, "not a readable audio file"},
		{"redirect to metadata", "/to-metadata.wav", nil, "file_download_networks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testserver.Dial(t, srv)
			c.CreateSession()
			params := map[string]any{"source": ms.URL + tc.path + "?secret=1"}
			for k, v := range tc.params {
				params[k] = v
			}
			id, created := createFile(t, c, params)
			data, at := waitFinished(t, c, id, 5*time.Second)
			if data["reason"] != "error" {
				t.Fatalf("finished %v, want reason error", data)
			}
			msg, _ := data["error"].(string)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to contain %q", msg, tc.want)
			}
			if strings.Contains(msg, "secret") || strings.Contains(msg, tc.path) {
				t.Errorf("error %q shows the URL's path or query", msg)
			}
			if tc.name == "slow" {
				if d := at.Sub(created); d < 250*time.Millisecond || d > time.Second {
					t.Errorf("timeout_ms 300 reported after %v", d)
				}
			}
			if n := endpointCount(t, c); n != 0 {
				t.Errorf("%d endpoints after a failed URL, want the file endpoint removed", n)
			}
		})
	}

	t.Run("a stalled server delays only its own file", func(t *testing.T) {
		c := testserver.Dial(t, srv)
		c.CreateSession()
		legFromOffer(t, c, "recvonly", xPCMU.format())
		slow, _ := createFile(t, c, map[string]any{"source": ms.URL + "/slow.wav", "timeout_ms": 3000})
		local, created := createFile(t, c, map[string]any{"source": localCopy})
		for range 10 {
			start := time.Now()
			c.MustCall("session.info", nil, nil)
			if d := time.Since(start); d > 200*time.Millisecond {
				t.Errorf("session.info took %v while a download stalls", d)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, at := waitFinished(t, c, local, 5*time.Second)
		if d := at.Sub(created); d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Errorf("local 1 s file finished after %v beside a stalled download", d)
		}
		data, _ := waitFinished(t, c, slow, 5*time.Second)
		if data["reason"] != "error" {
			t.Errorf("stalled download: %v", data)
		}
	})

	t.Run("refused without file_download_networks", func(t *testing.T) {
		strict, _ := startPlayback(t, nil)
		c := testserver.Dial(t, strict)
		c.CreateSession()
		before := ms.requests.Load()
		id, _ := createFile(t, c, map[string]any{"source": ms.URL + "/tone.wav"})
		data, _ := waitFinished(t, c, id, 5*time.Second)
		if msg, _ := data["error"].(string); data["reason"] != "error" || !strings.Contains(msg, "file_download_networks") {
			t.Errorf("loopback URL without file_download_networks: %v", data)
		}
		if ms.requests.Load() != before {
			t.Error("the refused server was contacted")
		}
	})
}

// TestPlaybackNoLeaksE2E: files played, removed, failed and refused leave no goroutine, no
// open descriptor and (with cache_ttl_secs 0) no cache file behind.
func TestPlaybackNoLeaksE2E(t *testing.T) {
	audiotest.RequireFFmpeg(t)
	f := audiotest.FileFormats[0]
	srv, dir := startPlayback(t, func(c *config.Config) { c.FileDownloadNetworks = []string{"127.0.0.1/32"} })
	path := audiotest.WriteToneFile(t, dir, "tone", f, 1000, 0.5, 300*time.Millisecond)
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ms := newMediaServer(t, file)
	c := testserver.Dial(t, srv)
	c.CreateSession()
	cycle := func() {
		id, _ := createFile(t, c, map[string]any{"source": path, "loop_count": nil})
		c.MustCall("endpoint.remove", map[string]any{"endpoint_id": id}, nil)
		id, _ = createFile(t, c, map[string]any{"source": path, "shared": true})
		waitFinished(t, c, id, 5*time.Second)
		c.MustCall("endpoint.remove", map[string]any{"endpoint_id": id}, nil)
		id, _ = createFile(t, c, map[string]any{"source": ms.URL + "/tone.wav", "cache_ttl_secs": 0})
		waitFinished(t, c, id, 5*time.Second)
		c.MustCall("endpoint.remove", map[string]any{"endpoint_id": id}, nil)
		id, _ = createFile(t, c, map[string]any{"source": ms.URL + "/missing.wav"})
		waitFinished(t, c, id, 5*time.Second)
		id, _ = createFile(t, c, map[string]any{"source": ms.URL + "/slow.wav", "cache_ttl_secs": 0})
		c.MustCall("endpoint.remove", map[string]any{"endpoint_id": id}, nil) // mid-download
		c.ExpectError("endpoint.create_with_file", map[string]any{"source": path, "start_ms": 5000}, protocol.CodeEndpointError)
	}
	cycle() // warm up: workers, pools
	time.Sleep(200 * time.Millisecond)
	goroutines := runtime.NumGoroutine()
	files, err := procstat.OpenFiles()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		cycle()
	}
	testserver.Eventually(t, 3*time.Second, "goroutines and descriptors back to their level", func() bool {
		n, _ := procstat.OpenFiles()
		return runtime.NumGoroutine() <= goroutines && n <= files
	})
	if n := endpointCount(t, c); n != 0 {
		t.Errorf("%d endpoints left", n)
	}
	testserver.Eventually(t, 3*time.Second, "cache_dir empty", func() bool {
		des, _ := os.ReadDir(srv.Config.CacheDir)
		return len(des) == 0
	})
}
