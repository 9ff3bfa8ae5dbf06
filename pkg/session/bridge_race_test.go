package session

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/endpoint/bridge"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// TestBridgeRace: bridges made, removed from either side and cut by session destroys, all at
// once, never leave a half behind: once the dust settles every bridge half still in a live
// session has its partner, and the active-endpoint gauge matches what the sessions hold.
func TestBridgeRace(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	ports, err := rtpnet.NewPortAllocator(ip, 43400, 43499)
	if err != nil {
		t.Fatal(err)
	}
	m := testManager(Options{CommandTimeout: time.Second, Media: MediaOptions{Ports: ports, MediaIP: ip, RTPPortRange: [2]int{43400, 43499},
		MaxEndpoints: 8, MaxSDPBytes: 64 << 10, TranscodeCacheSize: 8, OpusComplexity: 9}})
	defer m.Close()

	var mu sync.Mutex
	var sessions []*Session
	newSession := func() {
		s, err := m.Create(nil)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		sessions = append(sessions, s)
		mu.Unlock()
	}
	for i := 0; i < 6; i++ {
		newSession()
	}
	pick := func(r *rand.Rand) *Session {
		mu.Lock()
		defer mu.Unlock()
		return sessions[r.IntN(len(sessions))]
	}
	allowed := map[string]bool{
		"": true, protocol.CodeInvalidParams: true, protocol.CodeSessionNotFound: true, protocol.CodeSessionGone: true,
		protocol.CodeEndpointError: true, protocol.CodeSessionUnresponsive: true,
	}
	var bridged, removed int
	var cmu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(2 * time.Second)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 7))
			for time.Now().Before(stop) {
				s, target := pick(r), pick(r)
				switch r.IntN(8) {
				case 0, 1, 2, 3:
					_, err := call(s, "session.bridge", map[string]any{"target_session_id": target.ID()})
					if !allowed[code(err)] {
						t.Errorf("session.bridge: %v", err)
					}
					if err == nil {
						cmu.Lock()
						bridged++
						cmu.Unlock()
					}
				case 4, 5, 6:
					if ids := endpointIDs(s); len(ids) > 0 {
						if _, err := call(s, "endpoint.remove", map[string]any{"endpoint_id": ids[r.IntN(len(ids))]}); err == nil {
							cmu.Lock()
							removed++
							cmu.Unlock()
						}
					}
				case 7:
					if r.IntN(4) == 0 {
						_ = s.Destroy()
						newSession()
					}
				}
			}
		}(uint64(w))
	}
	wg.Wait()

	// Partners go on their own session's loop, shortly after.
	var orphans, halves int
	deadline := time.Now().Add(5 * time.Second)
	for {
		orphans, halves = 0, 0
		total := 0
		mu.Lock()
		live := append([]*Session(nil), sessions...)
		mu.Unlock()
		for _, s := range live {
			if s.Ended() {
				continue
			}
			_, _ = s.Do("test.check", func(s *Session) (any, error) {
				for _, l := range s.media.legs {
					total++
					if b, ok := l.ep.(*bridge.Leg); ok {
						halves++
						if !b.Linked() {
							orphans++
						}
					}
				}
				return nil, nil
			})
		}
		gauge := int(testutil.ToFloat64(m.metrics.EndpointsActive))
		if orphans == 0 && gauge == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bridge halves without a partner; gauge %d, sessions hold %d", orphans, gauge, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if halves%2 != 0 {
		t.Errorf("%d bridge halves: one lacks its partner", halves)
	}
	t.Logf("%d bridges made, %d endpoints removed; %d halves left, all paired", bridged, removed, halves)
	if bridged < 20 {
		t.Errorf("only %d bridges made: the test did not exercise bridging", bridged)
	}
}

// TestBridgeHalfAfterPartnerWent: the race TestBridgeRace once caught, made deterministic. The
// caller's half is removed while the target's half is still on its way; the partner's
// removePartner finds nothing in the target then, so the target must refuse the late half
// rather than keep it unpaired.
func TestBridgeHalfAfterPartnerWent(t *testing.T) {
	m := testManager(Options{CommandTimeout: time.Second, Media: MediaOptions{MaxEndpoints: 8}})
	defer m.Close()
	s, err := m.Create(nil)
	if err != nil {
		t.Fatal(err)
	}
	target, err := m.Create(nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := bridge.NewPair(uuid.New(), uuid.New(), endpoint.SendRecv)
	a.OnClose(func() { go removePartner(target, b) })
	b.OnClose(func() { go removePartner(s, a) })
	if _, err := s.Do("test.add", func(s *Session) (any, error) { return nil, s.media.addBridgeHalf(a) }); err != nil {
		t.Fatal(err)
	}
	if _, err := call(s, "endpoint.remove", map[string]any{"endpoint_id": a.ID()}); err != nil {
		t.Fatal(err)
	}
	_, err = target.Do("test.add", func(t *Session) (any, error) { return nil, t.media.addBridgeHalf(b) })
	if code(err) != protocol.CodeEndpointError {
		t.Fatalf("late half added: err %v, want %s", err, protocol.CodeEndpointError)
	}
	time.Sleep(50 * time.Millisecond) // removePartner's Post, had there been anything to remove
	if ids := endpointIDs(target); len(ids) != 0 {
		t.Fatalf("target holds %d endpoints, want none", len(ids))
	}
	if got := int(testutil.ToFloat64(m.metrics.EndpointsActive)); got != 0 {
		t.Fatalf("active-endpoint gauge %d, want 0", got)
	}
}
