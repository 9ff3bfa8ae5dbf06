package session

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/mediaio"
)

// oneShardManager is a manager whose sessions all share one media worker and one clock shard.
func oneShardManager(t *testing.T) *Manager {
	t.Helper()
	poller, err := mediaio.New(1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(poller.Close) // after the manager's own cleanup: cleanups run last-in first-out
	m := mediaTestManager(t, 42000, 42999, poller)
	if len(m.clocks) != 1 {
		t.Fatalf("%d clock shards for one media worker", len(m.clocks))
	}
	return m
}

// tonePlayer is a session where a 48 kHz tone leg plays to an RTP peer of format.
func tonePlayer(t *testing.T, m *Manager, format string) (*Session, *rtppeer.Peer) {
	t.Helper()
	s, err := m.Create(nil)
	if err != nil {
		t.Fatal(err)
	}
	peer := rtppeer.New(t)
	addRTPPeer(t, s, peer, format, endpoint.SendRecv)
	addPCMLeg(t, s, newToneLeg(endpoint.SendOnly, 48000, 1000))
	return s, peer
}

func inlineClock(t *testing.T, s *Session) bool {
	t.Helper()
	var inline bool
	if _, err := s.Do("test.inline", func(s *Session) (any, error) {
		inline = s.media.clockRunning && s.media.clockInline
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	return inline
}

// maxGap is the longest time between two consecutive packets.
func maxGap(pkts []rtppeer.Packet) time.Duration {
	var g time.Duration
	for i := 1; i < len(pkts); i++ {
		g = max(g, pkts[i].At.Sub(pkts[i-1].At))
	}
	return g
}

// One shard ticks every session on it. A session whose loop is stalled (a command holding
// its lock for half a second) misses its ticks and catches up afterwards, while the others on
// the shard, cheap (PCMU, produced on the shard) or costly (Opus, produced on their own
// loops), keep their 20 ms pace.
func TestClockShardIsolatesSessions(t *testing.T) {
	m := oneShardManager(t)
	stalled, stalledPeer := tonePlayer(t, m, "0")
	cheap, cheapPeer := tonePlayer(t, m, "0")
	costly, costlyPeer := tonePlayer(t, m, "111 a=rtpmap:111 opus/48000/2")
	if !inlineClock(t, stalled) || !inlineClock(t, cheap) {
		t.Fatal("tone → PCMU frames are not produced on the shard")
	}
	if inlineClock(t, costly) {
		t.Fatal("tone → Opus frames are produced on the shard")
	}
	for _, p := range []*rtppeer.Peer{stalledPeer, cheapPeer, costlyPeer} {
		if got := p.Collect(10, 2*time.Second); len(got) < 10 {
			t.Fatalf("a player sent %d packets before the stall", len(got))
		}
	}

	var stallStart, stallEnd time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = stalled.Do("test.stall", func(*Session) (any, error) {
			stallStart = time.Now()
			time.Sleep(500 * time.Millisecond)
			stallEnd = time.Now()
			return nil, nil
		})
	}()
	<-done
	for name, peer := range map[string]*rtppeer.Peer{"PCMU": cheapPeer, "Opus": costlyPeer} {
		// Everything received up to now, plus a little: the peers' queues hold the packets
		// that arrived during the stall, each with its arrival time.
		var during []rtppeer.Packet
		for _, p := range peer.Collect(1000, 200*time.Millisecond) {
			if !p.At.Before(stallStart) && !p.At.After(stallEnd) {
				during = append(during, p)
			}
		}
		if len(during) < 20 {
			t.Fatalf("%s player sent %d packets during another session's 500 ms stall, want 25", name, len(during))
		}
		if g := maxGap(during); g > 100*time.Millisecond {
			t.Errorf("%s player: a %v gap while another session on its shard stalled", name, g)
		}
	}
	// The stalled session missed 25 ticks; it catches up by at most 5 frames and goes on.
	after := stalledPeer.Collect(40, 3*time.Second)
	if len(after) < 40 {
		t.Fatalf("stalled player sent %d packets after the stall", len(after))
	}
	for i := 1; i < len(after); i++ {
		if after[i].Header.SequenceNumber != after[i-1].Header.SequenceNumber+1 {
			t.Fatalf("stalled player's stream broke at packet %d", i)
		}
	}
}

// A leg's report waiting for room in a busy session's queue gives up as soon as the leg says
// so (endpoint.PostCanceler), instead of after the command timeout.
func TestPostUnlessGivesUpOnCancel(t *testing.T) {
	m := testManager(Options{CommandTimeout: 5 * time.Second})
	defer m.Close()
	s, err := m.Create(nil)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	stalled := make(chan struct{})
	go func() {
		_, _ = s.Do("test.stall", func(*Session) (any, error) {
			close(stalled)
			<-release
			return nil, nil
		})
	}()
	<-stalled
	for range cap(s.media.events) {
		if !s.media.Post(func() {}) {
			t.Fatal("Post refused with room in the queue")
		}
	}
	cancel := make(chan struct{})
	time.AfterFunc(50*time.Millisecond, func() { close(cancel) })
	start := time.Now()
	ran := false
	if s.media.PostUnless(cancel, func() { ran = true }) {
		t.Fatal("PostUnless queued into a full queue")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("PostUnless gave up after %v, want shortly after the cancel at 50 ms", d)
	}
	close(release)
	done := make(chan struct{})
	if !s.media.Post(func() { close(done) }) {
		t.Fatal("Post refused once the session took work again")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the session never ran the posted function")
	}
	if ran {
		t.Error("the abandoned function ran")
	}
}
