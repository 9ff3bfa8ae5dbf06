package session

import (
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// call runs a protocol method on s as the control plane does (decode, prepare, command).
func call(s *Session, method string, params any) (any, error) {
	m, ok := LookupMethod(method)
	if !ok {
		panic("unknown method " + method)
	}
	raw, _ := json.Marshal(params)
	p, err := m.Decode(raw)
	if err != nil {
		return nil, err
	}
	return s.Call(m, p)
}

// endpointIDs lists a session's endpoints, or nil if it does not answer.
func endpointIDs(s *Session) []uuid.UUID {
	var ids []uuid.UUID
	if _, err := s.Do("test.list", func(s *Session) (any, error) {
		for _, l := range s.media.legs {
			ids = append(ids, l.ep.ID())
		}
		return nil, nil
	}); err != nil {
		return nil
	}
	return ids
}

// TestTransferRace: concurrent transfers (two of the same endpoint at once among them),
// removals and session destroys, with sessions that sometimes stall past the command timeout,
// never lose or duplicate an endpoint: while the sessions live every endpoint is in exactly
// one of them and the active-endpoint gauge agrees; once they are gone every socket is closed.
func TestTransferRace(t *testing.T) {
	const lo, hi = 43000, 43199
	ip := netip.MustParseAddr("127.0.0.1")
	ports, err := rtpnet.NewPortAllocator(ip, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	var stalls atomic.Bool
	m := testManager(Options{
		CommandTimeout: 150 * time.Millisecond,
		BeforeCommand: func(method string) {
			if method == "endpoint.transfer" && stalls.Load() && rand.IntN(40) == 0 {
				time.Sleep(200 * time.Millisecond) // past the timeout: the command runs after its caller gave up
			}
		},
		Media: MediaOptions{Ports: ports, MediaIP: ip, RTPPortRange: [2]int{lo, hi}, MaxEndpoints: 6,
			MaxSDPBytes: 64 << 10, TranscodeCacheSize: 8, OpusComplexity: 9},
	})
	closed := false
	defer func() {
		if !closed {
			m.Close()
		}
	}()

	const nSessions, perSession = 6, 4
	var sessions []*Session
	for i := 0; i < nSessions; i++ {
		s, err := m.Create(nil)
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
		for j := 0; j < perSession; j++ {
			if _, err := call(s, "endpoint.create_offer", map[string]any{"type": "rtp"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	stalls.Store(true)

	allowed := map[string]bool{
		protocol.CodeTransferFailed: true, protocol.CodeEndpointError: true, protocol.CodeSessionGone: true,
		protocol.CodeSessionNotFound: true, protocol.CodeSessionUnresponsive: true,
	}
	var ops, moved, failed atomic.Int64
	var codesMu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	stop := time.Now().Add(3 * time.Second)
	pick := func(r *rand.Rand) (*Session, uuid.UUID, bool) {
		s := sessions[r.IntN(len(sessions))]
		ids := endpointIDs(s)
		if len(ids) == 0 {
			return s, uuid.UUID{}, false
		}
		return s, ids[r.IntN(len(ids))], true
	}
	transfer := func(s *Session, id uuid.UUID, target *Session) {
		_, err := call(s, "endpoint.transfer", map[string]any{"endpoint_id": id, "target_session_id": target.ID()})
		ops.Add(1)
		if err == nil {
			moved.Add(1)
			return
		}
		failed.Add(1)
		codesMu.Lock()
		codes[code(err)]++
		codesMu.Unlock()
		if c := code(err); !allowed[c] && !(c == protocol.CodeInvalidParams && s == target) {
			t.Errorf("transfer: %v", err)
		}
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 1))
			for time.Now().Before(stop) {
				s, id, ok := pick(r)
				if !ok {
					continue
				}
				t1, t2 := sessions[r.IntN(len(sessions))], sessions[r.IntN(len(sessions))]
				switch r.IntN(10) {
				case 0: // the same endpoint, twice at once
					var twice sync.WaitGroup
					for _, target := range []*Session{t1, t2} {
						twice.Add(1)
						go func() { defer twice.Done(); transfer(s, id, target) }()
					}
					twice.Wait()
				case 1: // remove it while another goroutine may be moving it
					_, _ = call(s, "endpoint.remove", map[string]any{"endpoint_id": id})
					ops.Add(1)
				case 2: // a new one
					_, _ = call(s, "endpoint.create_offer", map[string]any{"type": "rtp"})
				default:
					transfer(s, id, t1)
				}
			}
		}(uint64(w))
	}
	// Two sessions end mid-way.
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(time.Second)
		_ = sessions[0].Destroy()
		time.Sleep(500 * time.Millisecond)
		_ = sessions[1].Destroy()
	}()
	wg.Wait()
	stalls.Store(false)
	time.Sleep(300 * time.Millisecond) // stalled commands have run

	seen := map[uuid.UUID]int{}
	total := 0
	for i, s := range sessions {
		if s.Ended() {
			continue
		}
		ids := endpointIDs(s)
		for _, id := range ids {
			if prev, dup := seen[id]; dup {
				t.Errorf("endpoint %s is in sessions %d and %d", id, prev, i)
			}
			seen[id] = i
		}
		total += len(ids)
	}
	if g := testutil.ToFloat64(m.metrics.EndpointsActive); int(g) != total {
		t.Errorf("active-endpoint gauge %v, but the sessions hold %d", g, total)
	}
	t.Logf("%d operations: %d transfers done, %d refused %v; %d endpoints left in %d sessions", ops.Load(), moved.Load(), failed.Load(), codes, total, nSessions-2)
	if moved.Load() < 20 {
		t.Errorf("only %d transfers succeeded: the test did not exercise transfers", moved.Load())
	}

	m.Close()
	closed = true
	if g := testutil.ToFloat64(m.metrics.EndpointsActive); g != 0 {
		t.Errorf("active-endpoint gauge %v after every session ended", g)
	}
	// A lost endpoint would still hold its sockets.
	for port := lo; port <= hi; port++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			t.Errorf("port %d still bound after every session ended: %v", port, err)
			continue
		}
		c.Close()
	}
}
