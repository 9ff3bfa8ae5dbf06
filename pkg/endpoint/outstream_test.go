package endpoint

import (
	"testing"
	"time"
)

func TestOutStreamContinuity(t *testing.T) {
	o := NewOutStream(8000)
	now := time.Unix(1000, 0)
	seq0, ts0, m0 := o.Map(1, 500, 9000, false, now)
	if !m0 {
		t.Error("first packet of a stream must carry the marker")
	}
	// Same source: offsets stay, gaps and marker bits pass through.
	seq1, ts1, m1 := o.Map(1, 502, 9320, false, now.Add(40*time.Millisecond))
	if seq1 != seq0+2 || ts1 != ts0+320 || m1 {
		t.Fatalf("same source: seq %d→%d ts %d→%d marker %v", seq0, seq1, ts0, ts1, m1)
	}
	// A late (reordered) packet maps consistently and does not move the stream back.
	seqLate, tsLate, _ := o.Map(1, 501, 9160, false, now.Add(45*time.Millisecond))
	if seqLate != seq0+1 || tsLate != ts0+160 {
		t.Fatalf("reordered packet: seq %d ts %d", seqLate, tsLate)
	}
	// New source with unrelated numbering: continues one sequence number and ~elapsed ticks later.
	seq2, ts2, m2 := o.Map(2, 7, 42, false, now.Add(100*time.Millisecond))
	if seq2 != seq1+1 || !m2 {
		t.Fatalf("source switch: seq %d→%d marker %v", seq1, seq2, m2)
	}
	if d := ts2 - ts1; d != 480 { // 60 ms at 8 kHz since the last packet
		t.Fatalf("source switch advanced %d ticks, want 480", d)
	}
	seq3, ts3, _ := o.Map(2, 8, 202, false, now.Add(120*time.Millisecond))
	if seq3 != seq2+1 || ts3 != ts2+160 {
		t.Fatalf("after switch: seq %d ts %d", seq3, ts3)
	}
	// Sequence wrap on the source side is invisible downstream.
	o2 := NewOutStream(48000)
	a, _, _ := o2.Map(5, 65535, 0, false, now)
	b, _, _ := o2.Map(5, 0, 960, false, now)
	if b != a+1 {
		t.Fatalf("wrap: %d → %d", a, b)
	}
}

func TestOutStreamZeroSourceAlwaysRebases(t *testing.T) {
	o := NewOutStream(8000)
	now := time.Unix(0, 0)
	s1, _, _ := o.Map(0, 10, 0, false, now)
	s2, _, m := o.Map(0, 10, 0, false, now.Add(20*time.Millisecond))
	if s2 != s1+1 || !m {
		t.Fatalf("zero source: %d → %d marker %v", s1, s2, m)
	}
}

func TestDirectionUnmarshal(t *testing.T) {
	var d Direction
	for _, v := range []string{"sendrecv", "recvonly", "sendonly"} {
		if err := d.UnmarshalText([]byte(v)); err != nil || string(d) != v {
			t.Errorf("%s: %v", v, err)
		}
	}
	if err := d.UnmarshalText([]byte("inactive")); err == nil {
		t.Error("inactive accepted")
	}
	if SendOnly.Receives() || !SendOnly.Sends() || RecvOnly.Sends() || !RecvOnly.Receives() {
		t.Error("direction semantics wrong")
	}
}

// A new source whose clock reading is a little behind the stream's last packet (a leg moved
// to another session, whose tick was read before the old session's last one) never rewinds
// the timestamp.
func TestOutStreamSwitchWithEarlierClockNeverRewinds(t *testing.T) {
	o := NewOutStream(48000)
	now := time.Unix(1000, 0)
	_, ts0, _ := o.Map(1, 10, 960, false, now)
	_, ts1, _ := o.Map(2, 500, 77, false, now.Add(-200*time.Microsecond))
	if d := int32(ts1 - ts0); d <= 0 {
		t.Fatalf("source switch with an earlier clock moved the timestamp by %d", d)
	}
}
