package dtmf

import (
	"testing"
	"time"
)

// TestInjectionSequence checks PROTOCOL.md §16 field by field: n = ceil(duration/20 ms);
// packets 1…n−1 with E=0 and i × 20 ms of duration (the first marked); three E=1 packets with
// the full duration (the first marked when n = 1); durations capped at 65535; n+2 packets,
// 20 ms apart.
func TestInjectionSequence(t *testing.T) {
	cases := []struct {
		ms    uint32
		clock uint32
		n     int
		full  uint16
	}{
		{1, 8000, 1, 8},
		{20, 8000, 1, 160},
		{21, 8000, 2, 168},
		{160, 8000, 8, 1280},
		{160, 48000, 8, 7680},
		{250, 16000, 13, 4000},
		{1400, 48000, 70, 65535}, // 67200 ticks: capped
		{10000, 8000, 500, 65535},
	}
	for _, c := range cases {
		j, err := NewInjection('7', c.ms, 13, c.clock)
		if err != nil {
			t.Fatal(err)
		}
		if j.Len() != c.n+2 {
			t.Fatalf("%d ms: %d packets, want %d", c.ms, j.Len(), c.n+2)
		}
		if j.Span() != time.Duration(c.n+1)*20*time.Millisecond {
			t.Errorf("%d ms: span %v", c.ms, j.Span())
		}
		for i := range j.Len() {
			ev, marker := j.Packet(i)
			if ev.ID != 7 || ev.Volume != 13 {
				t.Fatalf("%d ms packet %d: %+v", c.ms, i, ev)
			}
			if j.Due(i) != time.Duration(i)*20*time.Millisecond {
				t.Errorf("%d ms packet %d due %v", c.ms, i, j.Due(i))
			}
			if wantMarker := i == 0; marker != wantMarker {
				t.Errorf("%d ms packet %d: marker %v", c.ms, i, marker)
			}
			if i < c.n-1 {
				want := uint16(min(uint64(i+1)*20*uint64(c.clock)/1000, 65535))
				if ev.End || ev.Duration != want {
					t.Errorf("%d ms packet %d: %+v, want E=0 duration %d", c.ms, i, ev, want)
				}
				continue
			}
			if !ev.End || ev.Duration != c.full {
				t.Errorf("%d ms packet %d: %+v, want E=1 duration %d", c.ms, i, ev, c.full)
			}
		}
	}
	for _, bad := range []struct {
		c      byte
		ms     uint32
		volume uint8
		clock  uint32
	}{{'E', 100, 10, 8000}, {'5', 0, 10, 8000}, {'5', 10001, 10, 8000}, {'5', 100, 64, 8000}, {'5', 100, 10, 0}} {
		if _, err := NewInjection(bad.c, bad.ms, bad.volume, bad.clock); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if j, err := NewInjection('d', 100, 0, 8000); err != nil {
		t.Fatal(err)
	} else if ev, _ := j.Packet(0); ev.ID != 15 {
		t.Errorf("'d' is event %d", ev.ID)
	}
}

// TestInjectionDetected: what the injector sends, the detector reports once with its
// duration (the capped long ones at 65535 ticks), also when only the end packets get through
// or only the first ones.
func TestInjectionDetected(t *testing.T) {
	for _, clock := range []uint32{8000, 16000, 48000} {
		for _, ms := range []uint32{1, 40, 160, 1000} {
			j, err := NewInjection('#', ms, 10, clock)
			if err != nil {
				t.Fatal(err)
			}
			var all, ends, starts []pkt
			for i := range j.Len() {
				ev, marker := j.Packet(i)
				p := pkt{ts: 4242, marker: marker, ev: ev, at: j.Due(i)}
				all = append(all, p)
				if ev.End {
					ends = append(ends, p)
				} else {
					starts = append(starts, p)
				}
			}
			want := uint32(min(uint64(ms)*uint64(clock)/1000, 65535))
			for name, pk := range map[string][]pkt{"all": all, "ends only": ends} {
				got := run(NewDetector(clock), pk, 9)
				if len(got) != 1 || got[0].Digit != '#' || got[0].Ticks != want || !got[0].Ended {
					t.Errorf("%d ms @%d, %s: %+v, want one # of %d ticks", ms, clock, name, got, want)
				}
			}
			if len(starts) > 0 {
				got := run(NewDetector(clock), starts, 9)
				if len(got) != 1 || got[0].Ticks != uint32(starts[len(starts)-1].ev.Duration) {
					t.Errorf("%d ms @%d, no ends: %+v", ms, clock, got)
				}
			}
		}
	}
}
