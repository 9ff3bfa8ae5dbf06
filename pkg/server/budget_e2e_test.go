package server_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/procstat"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// Memory and goroutines are budgets (issue 9). These tests count, they do not time.

// idleEndpointHeapBudget is the live heap an idle plain RTP endpoint may cost: half of the
// 16 KiB of RSS the deployment guide sizes pods by, the other half being the garbage
// collector's headroom.
const idleEndpointHeapBudget = 8 << 10

// liveHeap is the heap in use by live objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// openFiles counts this process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	n, err := procstat.OpenFiles()
	if err != nil {
		t.Fatalf("counting open files in /proc: %v", err)
	}
	return n
}

// residentBytes is this process's RSS.
func residentBytes(t *testing.T) int64 {
	t.Helper()
	n, err := procstat.RSS()
	if err != nil {
		t.Fatalf("reading RSS from /proc: %v", err)
	}
	return n
}

// An idle plain RTP endpoint costs no goroutine and at most idleEndpointHeapBudget of heap: its
// sockets are served by the shared media workers and its packet memory is borrowed per use.
func TestIdleEndpointBudget(t *testing.T) {
	const sessions = 300
	srv := testserver.Start(t, func(c *config.Config) { c.MaxConnections = sessions + 10 }, server.Tuning{})
	clients := make([]*testserver.Client, sessions)
	for i := range clients {
		clients[i] = testserver.Dial(t, srv)
		clients[i].CreateSession()
	}
	heap0, g0 := liveHeap(), runtime.NumGoroutine()
	for _, c := range clients {
		c.MustCall("endpoint.create_offer", map[string]any{"type": "rtp"}, nil)
		c.MustCall("endpoint.create_offer", map[string]any{"type": "rtp", "srtp": true}, nil)
	}
	heap1, g1 := liveHeap(), runtime.NumGoroutine()
	endpoints := 2 * sessions
	perEndpoint := float64(int64(heap1)-int64(heap0)) / float64(endpoints)
	t.Logf("%d idle endpoints (half SDES-SRTP): %.0f bytes of heap each, %d goroutines more in all", endpoints, perEndpoint, g1-g0)
	if perEndpoint > idleEndpointHeapBudget {
		t.Errorf("an idle endpoint costs %.0f bytes of heap, budget %d", perEndpoint, idleEndpointHeapBudget)
	}
	if g1-g0 > 2 { // a timer's short-lived goroutine may be running at either count
		t.Errorf("%d idle endpoints started %d goroutines; endpoints must start none", endpoints, g1-g0)
	}
}

// An idle session costs three goroutines on the server: net/http's connection goroutine (which
// runs melody's reader), melody's writer and the session loop. The connection's request worker
// runs only while there is a request or an event to write.
func TestIdleSessionGoroutines(t *testing.T) {
	const sessions = 200
	srv := testserver.Start(t, func(c *config.Config) { c.MaxConnections = sessions + 10 }, server.Tuning{})
	g0 := runtime.NumGoroutine()
	for range sessions {
		c := testserver.Dial(t, srv)
		c.CreateSession()
		c.MustCall("endpoint.create_offer", map[string]any{"type": "rtp"}, nil)
		c.MustCall("endpoint.create_offer", map[string]any{"type": "rtp"}, nil)
	}
	// The test's own client has one reader goroutine per connection; workers that answered
	// the last requests may take a moment to stop.
	const want = 3 + 1
	var g1 int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if g1 = runtime.NumGoroutine(); g1-g0 <= want*sessions+2 || time.Now().After(deadline) {
			break
		}
	}
	per := float64(g1-g0) / sessions
	t.Logf("%d idle sessions with two RTP legs each: %.2f goroutines per session, the test client's one included", sessions, per)
	if g1-g0 > want*sessions+2 {
		t.Errorf("%.2f goroutines per idle session (client's reader included), want at most %d", per, want)
	}
}

// 10,000 endpoint create/remove cycles, one at a time, leave goroutines, open files and memory
// where they started.
func TestEndpointCyclesLeakNothing(t *testing.T) {
	cycles := 10000
	if testing.Short() {
		cycles = 1000
	}
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	c.CreateSession()
	cycle := func() {
		var res struct {
			EndpointID string `json:"endpoint_id"`
		}
		c.MustCall("endpoint.create_offer", map[string]any{"type": "rtp"}, &res)
		c.MustCall("endpoint.remove", map[string]any{"endpoint_id": res.EndpointID}, nil)
	}
	for range 500 { // warm up pools, maps and the allocator
		cycle()
	}
	heap0, g0, fd0, rss0 := liveHeap(), runtime.NumGoroutine(), openFiles(t), residentBytes(t)
	for range cycles {
		cycle()
	}
	heap1, g1, fd1, rss1 := liveHeap(), runtime.NumGoroutine(), openFiles(t), residentBytes(t)
	t.Logf("%d cycles: heap %+d B, goroutines %+d, open files %+d, RSS %+d KiB", cycles, int64(heap1)-int64(heap0), g1-g0, fd1-fd0, (rss1-rss0)>>10)
	if fd1 != fd0 {
		t.Errorf("open files %d → %d", fd0, fd1)
	}
	if g1-g0 > 2 {
		t.Errorf("goroutines %d → %d", g0, g1)
	}
	if d := int64(heap1) - int64(heap0); d > 256<<10 {
		t.Errorf("live heap grew by %d bytes over %d cycles", d, cycles)
	}
	if d := rss1 - rss0; d > 16<<20 && !raceEnabled {
		t.Errorf("RSS grew by %d KiB over %d cycles", d>>10, cycles)
	}
}
