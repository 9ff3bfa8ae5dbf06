package rtpnet

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// learn runs the receive path's two steps for an RTP packet that proves valid.
func learn(l *Learner, src netip.AddrPort, at time.Time) Verdict {
	v := l.CheckRTP(src, at)
	if v == Learn {
		l.CommitRTP(src, at)
	}
	return v
}

func TestLearnerFirstValidPacketLatchesAndLocks(t *testing.T) {
	l := NewLearner(nil, t0)
	l.SetSignalled(ap("10.0.0.5:4000"), netip.AddrPort{})
	if l.Remote() != ap("10.0.0.5:4000") || l.Latched() {
		t.Fatalf("before any packet: remote %v latched %v", l.Remote(), l.Latched())
	}
	// A packet that may latch but fails validation (no Commit) latches nothing.
	if v := l.CheckRTP(ap("198.51.100.66:666"), t0.Add(50*time.Millisecond)); v != Learn {
		t.Fatalf("first packet verdict %v, want Learn", v)
	}
	if l.Latched() {
		t.Fatal("latched without Commit")
	}
	if v := learn(l, ap("203.0.113.9:61000"), t0.Add(100*time.Millisecond)); v != Learn {
		t.Fatalf("verdict %v, want Learn", v)
	}
	if l.Remote() != ap("203.0.113.9:61000") {
		t.Fatalf("remote %v, want the latched source", l.Remote())
	}
	if v := l.CheckRTP(ap("203.0.113.9:61000"), t0.Add(120*time.Millisecond)); v != Accept {
		t.Fatalf("latched source verdict %v", v)
	}
	// Locked at once, inside the window too: another port of the same host, another host,
	// and the SDP address itself are all rejected.
	for _, s := range []string{"203.0.113.9:61002", "192.0.2.1:5000", "10.0.0.5:4000"} {
		if v := l.CheckRTP(ap(s), t0.Add(time.Second)); v != Reject {
			t.Errorf("%s after the latch: verdict %v, want Reject", s, v)
		}
	}
	if l.Remote() != ap("203.0.113.9:61000") {
		t.Fatalf("remote moved to %v", l.Remote())
	}
}

func TestLearnerLateFirstPacketLatchesThenLocks(t *testing.T) {
	// Nothing arrived during the window (a call that rang for 30 s): the first valid packet
	// still latches, and locks.
	l := NewLearner(nil, t0)
	l.SetSignalled(ap("10.0.0.5:4000"), netip.AddrPort{})
	if learn(l, ap("198.51.100.4:40000"), t0.Add(30*time.Second)) != Learn || l.Remote() != ap("198.51.100.4:40000") {
		t.Fatalf("late first packet not latched: %v", l.Remote())
	}
	if v := l.CheckRTP(ap("198.51.100.5:40000"), t0.Add(31*time.Second)); v != Reject {
		t.Fatalf("other source after a late latch: %v", v)
	}
}

func TestLearnerReopenAllowsOneMove(t *testing.T) {
	l := NewLearner(nil, t0)
	learn(l, ap("192.0.2.1:5000"), t0.Add(time.Second))
	rekey := t0.Add(60 * time.Second)
	l.Reopen(rekey)
	// The old source keeps working until a new one latches.
	if v := l.CheckRTP(ap("192.0.2.1:5000"), rekey.Add(time.Second)); v != Accept {
		t.Fatalf("old source in the reopened window: %v", v)
	}
	if learn(l, ap("192.0.2.9:5000"), rekey.Add(2*time.Second)) != Learn || l.Remote() != ap("192.0.2.9:5000") {
		t.Fatalf("not moved in the reopened window: %v", l.Remote())
	}
	// Once moved, locked again: neither the old source nor a third one gets in.
	for _, s := range []string{"192.0.2.1:5000", "192.0.2.10:5000"} {
		if v := l.CheckRTP(ap(s), rekey.Add(3*time.Second)); v != Reject {
			t.Errorf("%s after the move: %v", s, v)
		}
	}
	// A window that closes without a move keeps the latch.
	l.Reopen(rekey.Add(time.Minute))
	if v := l.CheckRTP(ap("192.0.2.11:5000"), rekey.Add(time.Minute+LearningWindow)); v != Reject {
		t.Fatalf("new source after the window closed: %v", v)
	}
	if v := l.CheckRTP(ap("192.0.2.11:5000"), rekey.Add(time.Minute+LearningWindow-time.Nanosecond)); v != Learn {
		t.Fatalf("new source just before the window closes: %v", v)
	}
}

func TestSourcePolicy(t *testing.T) {
	sdp := netip.MustParseAddr("10.0.0.5")
	cases := []struct {
		entries []string
		allow   []string
		deny    []string
	}{
		{[]string{"*"}, []string{"192.0.2.1", "10.0.0.5", "2001:db8::1"}, nil},
		{[]string{"10.0.0.0/8", "*"}, []string{"192.0.2.1"}, nil},
		{[]string{}, []string{"10.0.0.5"}, []string{"10.0.0.6", "192.0.2.1"}},
		{[]string{"192.0.2.0/24", "2001:db8::/32", "198.51.100.7"}, []string{"192.0.2.200", "2001:db8:1::5", "198.51.100.7"},
			[]string{"10.0.0.5", "192.0.3.1", "198.51.100.8", "2001:db9::1"}},
		{[]string{"::ffff:203.0.113.4"}, []string{"203.0.113.4"}, []string{"203.0.113.5"}},
	}
	for _, c := range cases {
		p, err := ParseSourcePolicy(c.entries)
		if err != nil {
			t.Fatalf("%v: %v", c.entries, err)
		}
		for _, a := range c.allow {
			if !p.MayLatch(netip.MustParseAddr(a), sdp) {
				t.Errorf("%v: %s may not latch, want allowed", c.entries, a)
			}
		}
		for _, a := range c.deny {
			if p.MayLatch(netip.MustParseAddr(a), sdp) {
				t.Errorf("%v: %s may latch, want denied", c.entries, a)
			}
		}
	}
	empty, _ := ParseSourcePolicy(nil)
	if empty.MayLatch(netip.MustParseAddr("10.0.0.5"), netip.Addr{}) {
		t.Error(`[] with no SDP address let a source latch`)
	}
	for _, bad := range []string{"10.0.0.0/33", "nope", "10.0.0.1/", "fe80::1%eth0", ""} {
		if _, err := ParseSourcePolicy([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	p, _ := ParseSourcePolicy([]string{"10.1.2.3/8"})
	if got := p.String(); !strings.Contains(got, "10.0.0.0/8") {
		t.Errorf("String() = %s, want the masked prefix", got)
	}
}

func TestLearnerPolicyGatesTheLatchOnly(t *testing.T) {
	p, _ := ParseSourcePolicy([]string{"192.0.2.0/24"})
	l := NewLearner(&p, t0)
	l.SetSignalled(ap("10.0.0.5:4000"), netip.AddrPort{})
	if v := l.CheckRTP(ap("10.0.0.5:4000"), t0.Add(time.Second)); v != Reject {
		t.Fatalf("SDP address outside the networks: %v", v)
	}
	if learn(l, ap("192.0.2.7:7000"), t0.Add(time.Second)) != Learn {
		t.Fatal("source inside the networks could not latch")
	}
	if v := l.CheckRTP(ap("192.0.2.8:7000"), t0.Add(2*time.Second)); v != Reject {
		t.Fatalf("second source of the same network after the latch: %v", v)
	}
	only, _ := ParseSourcePolicy([]string{})
	l = NewLearner(&only, t0)
	if v := l.CheckRTP(ap("10.0.0.5:4000"), t0); v != Reject {
		t.Fatalf("[] with no SDP address yet: %v", v)
	}
	l.SetSignalled(ap("10.0.0.5:4000"), netip.AddrPort{})
	if v := l.CheckRTP(ap("10.0.0.5:4002"), t0); v != Learn {
		t.Fatalf("[]: SDP host from another port: %v", v)
	}
	if v := l.CheckRTP(ap("10.0.0.6:4000"), t0); v != Reject {
		t.Fatalf("[]: another host: %v", v)
	}
}

func TestLearnerRTCPLatchesIndependently(t *testing.T) {
	l := NewLearner(nil, t0)
	if l.Remote().IsValid() || l.RTCPRemote(true).IsValid() || l.RTCPRemote(false).IsValid() {
		t.Fatal("unknown remote must give zero addresses")
	}
	if v := l.CheckRTP(netip.AddrPort{}, t0); v != Reject {
		t.Fatal("invalid source not rejected")
	}
	l.SetSignalled(ap("10.1.1.1:30000"), netip.AddrPort{})
	if got := l.RTCPRemote(false); got != ap("10.1.1.1:30001") {
		t.Fatalf("RTCP without mux %v", got)
	}
	if got := l.RTCPRemote(true); got != ap("10.1.1.1:30000") {
		t.Fatalf("RTCP with mux %v", got)
	}
	// a=rtcp is honoured.
	l.SetSignalled(ap("10.1.1.1:30000"), ap("10.1.1.2:31111"))
	if got := l.RTCPRemote(false); got != ap("10.1.1.2:31111") {
		t.Fatalf("RTCP with a=rtcp %v", got)
	}
	// RTP latching moves RTP; RTCP keeps its own target until an RTCP packet latches.
	learn(l, ap("[::ffff:192.0.2.7]:41000"), t0.Add(time.Second))
	if l.Remote() != ap("192.0.2.7:41000") {
		t.Fatalf("mapped address not unmapped: %v", l.Remote())
	}
	if got := l.RTCPRemote(false); got != ap("10.1.1.2:31111") {
		t.Fatalf("RTCP target moved with RTP: %v", got)
	}
	if v := l.CheckRTCP(ap("192.0.2.7:41009"), t0.Add(time.Second)); v != Learn {
		t.Fatalf("first RTCP verdict %v", v)
	}
	l.CommitRTCP(ap("192.0.2.7:41009"), t0.Add(time.Second))
	if got := l.RTCPRemote(false); got != ap("192.0.2.7:41009") {
		t.Fatalf("RTCP target after its latch %v", got)
	}
	if v := l.CheckRTCP(ap("192.0.2.7:41001"), t0.Add(2*time.Second)); v != Reject {
		t.Fatalf("RTCP from another source after its latch: %v", v)
	}
	if got := l.RTCPRemote(true); got != ap("192.0.2.7:41000") {
		t.Fatalf("RTCP with mux follows RTP: %v", got)
	}
	// RTCP from another host than the latched media is rejected, and an RTCP latch made
	// before the media latched on another host is dropped when the media latches.
	if v := l.CheckRTCP(ap("198.51.100.1:41001"), t0.Add(time.Second)); v != Reject {
		t.Fatalf("RTCP from another host than the media: %v", v)
	}
	l3 := NewLearner(nil, t0)
	l3.CheckRTCP(ap("198.51.100.1:9"), t0)
	l3.CommitRTCP(ap("198.51.100.1:9"), t0)
	learn(l3, ap("192.0.2.7:41000"), t0)
	if got := l3.RTCPRemote(false); got != ap("192.0.2.7:41001") {
		t.Fatalf("RTCP target stayed on the foreign host: %v", got)
	}
	if v := l3.CheckRTCP(ap("192.0.2.7:41001"), t0.Add(time.Second)); v != Learn {
		t.Fatalf("RTCP from the media host after the reset: %v", v)
	}
	l2 := NewLearner(nil, t0)
	l2.SetSignalled(ap("10.1.1.1:65535"), netip.AddrPort{})
	if l2.RTCPRemote(false).IsValid() {
		t.Fatal("port 65535 + 1 must be invalid")
	}
}
