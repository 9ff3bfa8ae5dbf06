package rtpnet

import (
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestLearnerFirstPacketReplacesSDPAddress(t *testing.T) {
	l := NewLearner(ap("10.0.0.5:4000"), t0)
	if l.Remote() != ap("10.0.0.5:4000") {
		t.Fatalf("initial remote %v", l.Remote())
	}
	if !l.Observe(ap("203.0.113.9:61000"), t0.Add(100*time.Millisecond)) {
		t.Fatal("first packet from the NAT address did not change the remote")
	}
	if l.Remote() != ap("203.0.113.9:61000") {
		t.Fatalf("remote %v", l.Remote())
	}
	if l.Observe(ap("203.0.113.9:61000"), t0.Add(120*time.Millisecond)) {
		t.Fatal("same source reported as a change")
	}
	if l.Locked() {
		t.Fatal("locked inside the window")
	}
}

func TestLearnerNewestWinsDuringWindow(t *testing.T) {
	l := NewLearner(ap("10.0.0.5:4000"), t0)
	srcs := []string{"192.0.2.1:5000", "192.0.2.2:5002", "192.0.2.1:5000", "[2001:db8::1]:7000"}
	for i, s := range srcs {
		if !l.Observe(ap(s), t0.Add(time.Duration(i+1)*time.Second)) || l.Remote() != ap(s) {
			t.Fatalf("packet %d from %s: remote %v", i, s, l.Remote())
		}
	}
	// Just before the deadline still learns.
	if !l.Observe(ap("192.0.2.3:5004"), t0.Add(LearningWindow-time.Nanosecond)) {
		t.Fatal("not learned just before the deadline")
	}
}

func TestLearnerLocksAfterWindow(t *testing.T) {
	l := NewLearner(ap("10.0.0.5:4000"), t0)
	l.Observe(ap("192.0.2.1:5000"), t0.Add(time.Second))
	// First packet after the window: same source, locks.
	if l.Observe(ap("192.0.2.1:5000"), t0.Add(6*time.Second)) {
		t.Fatal("same source reported as change")
	}
	if !l.Locked() {
		t.Fatal("not locked by the first packet after the window")
	}
	if l.Observe(ap("192.0.2.66:6666"), t0.Add(7*time.Second)) || l.Remote() != ap("192.0.2.1:5000") {
		t.Fatalf("locked address moved to %v", l.Remote())
	}
}

func TestLearnerLateFirstPacketIsLearnedThenLocks(t *testing.T) {
	// Nothing arrived during the window (a call that rang for 30 s): the
	// first packet is still learned, and locks.
	l := NewLearner(ap("10.0.0.5:4000"), t0)
	if !l.Observe(ap("198.51.100.4:40000"), t0.Add(30*time.Second)) || l.Remote() != ap("198.51.100.4:40000") {
		t.Fatalf("late first packet not learned: %v", l.Remote())
	}
	if !l.Locked() {
		t.Fatal("not locked")
	}
	if l.Observe(ap("198.51.100.5:40000"), t0.Add(31*time.Second)) {
		t.Fatal("moved after lock")
	}
}

func TestLearnerReopen(t *testing.T) {
	l := NewLearner(ap("10.0.0.5:4000"), t0)
	l.Observe(ap("192.0.2.1:5000"), t0.Add(6*time.Second)) // locks
	rekey := t0.Add(60 * time.Second)
	l.Reopen(rekey)
	if l.Locked() {
		t.Fatal("still locked after Reopen")
	}
	if !l.Observe(ap("192.0.2.9:5000"), rekey.Add(2*time.Second)) || l.Remote() != ap("192.0.2.9:5000") {
		t.Fatalf("not learned after reopen: %v", l.Remote())
	}
	l.Observe(ap("192.0.2.9:5000"), rekey.Add(5*time.Second)) // first after new window
	if !l.Locked() {
		t.Fatal("not locked after the reopened window")
	}
	if l.Observe(ap("192.0.2.10:5000"), rekey.Add(6*time.Second)) {
		t.Fatal("moved after reopened window closed")
	}
}

func TestLearnerUnknownRemoteAndRTCP(t *testing.T) {
	l := NewLearner(netip.AddrPort{}, t0)
	if l.Remote().IsValid() || l.RTCPRemote(true).IsValid() || l.RTCPRemote(false).IsValid() {
		t.Fatal("unknown remote must give zero addresses")
	}
	if l.Observe(netip.AddrPort{}, t0) {
		t.Fatal("invalid source accepted")
	}
	l.SetRemote(ap("10.1.1.1:30000"))
	if got := l.RTCPRemote(false); got != ap("10.1.1.1:30001") {
		t.Fatalf("RTCP without mux %v", got)
	}
	if got := l.RTCPRemote(true); got != ap("10.1.1.1:30000") {
		t.Fatalf("RTCP with mux %v", got)
	}
	// RTCP follows learning.
	l.Observe(ap("[::ffff:192.0.2.7]:41000"), t0.Add(time.Second))
	if l.Remote() != ap("192.0.2.7:41000") {
		t.Fatalf("mapped address not unmapped: %v", l.Remote())
	}
	if got := l.RTCPRemote(false); got != ap("192.0.2.7:41001") {
		t.Fatalf("RTCP did not follow: %v", got)
	}
	l.SetRemote(ap("10.1.1.1:65535"))
	if l.RTCPRemote(false).IsValid() {
		t.Fatal("port 65535 + 1 must be invalid")
	}
}
