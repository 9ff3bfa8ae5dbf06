package server_test

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/internal/webrtcpeer"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// pionGoroutines counts goroutines with a pion frame in their stack: the WebRTC stack's own
// (ICE, DTLS, SRTP, mux) and the legs' readers, which all read through pion.
func pionGoroutines() (int, string) {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var sample string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("github.com/pion/")) || bytes.Contains(g, []byte("pkg/endpoint/webrtc")) {
			n++
			if sample == "" {
				sample = string(g)
			}
		}
	}
	return n, sample
}

// connectAndRemove is one WebRTC life: a pion client offers, rtpbridge answers, ICE and DTLS
// come up (both sides see connected), the endpoint is removed and the client closed.
func connectAndRemove(t *testing.T, c *testserver.Client) {
	t.Helper()
	wp := webrtcpeer.New(t, webrtcpeer.Opus)
	var res endpointResult
	c.MustCall("endpoint.create_from_offer", map[string]any{"sdp": wp.Offer()}, &res)
	wp.SetAnswer(res.SDPAnswer)
	if err := wp.WaitState(webrtc.PeerConnectionStateConnected, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, res.EndpointID, "connecting", "connected")
	c.MustCall("endpoint.remove", map[string]any{"endpoint_id": res.EndpointID}, nil)
	wp.Close()
}

// TestWebRTCChurn: 500 create/connect/remove cycles leave no goroutine of the WebRTC stack, no
// file descriptor and no memory behind (issue 12). Ten sessions run 50 cycles each side by side
// (a pion client's ICE checks take about 200 ms, so one after another would take minutes).
func TestWebRTCChurn(t *testing.T) {
	const workers, perWorker = 10, 50
	srv := testserver.Start(t, nil, server.Tuning{})
	clients := make([]*testserver.Client, workers)
	for i := range clients {
		clients[i] = testserver.Dial(t, srv)
		clients[i].CreateSession()
	}
	churn := func(cycles int) {
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range cycles {
					connectAndRemove(t, c)
				}
			}()
		}
		wg.Wait()
	}
	churn(2) // warm up pools, maps and the allocator
	testserver.Eventually(t, 10*time.Second, "pion goroutines of the warm-up gone", func() bool {
		n, _ := pionGoroutines()
		return n == 0
	})
	heap0, g0, fd0, rss0 := liveHeap(), runtime.NumGoroutine(), openFiles(t), residentBytes(t)
	start := time.Now()
	churn(perWorker)
	t.Logf("%d WebRTC cycles in %v", workers*perWorker, time.Since(start).Round(time.Millisecond))
	testserver.Eventually(t, 10*time.Second, "goroutines and files back to where they were", func() bool {
		n, _ := pionGoroutines()
		return n == 0 && runtime.NumGoroutine() <= g0 && openFiles(t) <= fd0
	})
	if n, sample := pionGoroutines(); n != 0 {
		t.Fatalf("%d pion goroutines left, e.g.:\n%s", n, sample)
	}
	heap1, g1, fd1, rss1 := liveHeap(), runtime.NumGoroutine(), openFiles(t), residentBytes(t)
	t.Logf("goroutines %d → %d, files %d → %d, live heap %d → %d KiB, RSS %d → %d MiB",
		g0, g1, fd0, fd1, heap0>>10, heap1>>10, rss0>>20, rss1>>20)
	if grow := int64(heap1) - int64(heap0); grow > 2<<20 {
		t.Errorf("live heap grew by %d KiB over %d cycles", grow>>10, workers*perWorker)
	}
	if !raceEnabled {
		if grow := rss1 - rss0; grow > 32<<20 {
			t.Errorf("RSS grew by %d MiB over %d cycles", grow>>20, workers*perWorker)
		}
	}
}

// stackInuse is the memory held by goroutine stacks.
func stackInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.StackInuse
}

// webrtcIdleBudget is issue 12's target for an idle connected WebRTC endpoint.
const webrtcIdleBudget = 100 << 10

// TestWebRTCIdleEndpointMemory measures the heap an idle connected WebRTC endpoint costs on the
// server: n clients connect, each in a session of its own, the heap is measured, the n server
// endpoints are removed (the clients stay), and the difference is the server's share.
func TestWebRTCIdleEndpointMemory(t *testing.T) {
	const n = 40
	srv := testserver.Start(t, nil, server.Tuning{})
	peers := make([]*webrtcpeer.Peer, n)
	ids := make([]string, n)
	ctl := make([]*testserver.Client, n)
	g0 := runtime.NumGoroutine()
	for i := range peers {
		ctl[i] = testserver.Dial(t, srv)
		ctl[i].CreateSession()
		peers[i] = webrtcpeer.New(t, webrtcpeer.Opus)
		var res endpointResult
		ctl[i].MustCall("endpoint.create_from_offer", map[string]any{"sdp": peers[i].Offer()}, &res)
		peers[i].SetAnswer(res.SDPAnswer)
		ids[i] = res.EndpointID
	}
	for i, p := range peers {
		if err := p.WaitState(webrtc.PeerConnectionStateConnected, 10*time.Second); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	time.Sleep(time.Second) // let handshake garbage settle
	heap1, stack1, g1 := liveHeap(), stackInuse(), runtime.NumGoroutine()
	for i, id := range ids {
		ctl[i].MustCall("endpoint.remove", map[string]any{"endpoint_id": id}, nil)
	}
	time.Sleep(500 * time.Millisecond)
	heap2, stack2, g2 := liveHeap(), stackInuse(), runtime.NumGoroutine()
	heap := float64(int64(heap1)-int64(heap2)) / n
	stack := float64(int64(stack1)-int64(stack2)) / n
	per := heap + stack
	t.Logf("idle connected WebRTC endpoint: %.1f KiB (%.1f KiB heap, %.1f KiB goroutine stacks, %.1f goroutines) on the server (%d sessions with a client each: %d goroutines, %d after removing the endpoints)",
		per/1024, heap/1024, stack/1024, float64(g1-g2)/n, n, g1-g0, g2-g0)
	if per > webrtcIdleBudget {
		t.Errorf("%.1f KiB per idle connected WebRTC endpoint, budget %d KiB", per/1024, webrtcIdleBudget>>10)
	}
}
