package rtpstats

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

const ptime = 20 * time.Millisecond

// feed delivers packets with the given sequence numbers, each with the RTP
// timestamp and arrival its sequence number implies (160 units / 20 ms
// apart), so transit is constant and jitter stays 0.
func feed(r *Receiver, ssrc uint32, seqs ...uint16) {
	for _, s := range seqs {
		r.Update(s, uint32(s)*160, ssrc, 160, t0.Add(time.Duration(s)*ptime))
	}
}

func seqRange(from, to uint16) []uint16 {
	var out []uint16
	for s := from; ; s++ {
		out = append(out, s)
		if s == to {
			return out
		}
	}
}

func without(seqs []uint16, drop ...uint16) []uint16 {
	var out []uint16
next:
	for _, s := range seqs {
		for _, d := range drop {
			if s == d {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

type wantStats struct {
	valid   bool
	extMax  uint32
	lost    int64
	rawLost int64
}

func check(t *testing.T, name string, r *Receiver, w wantStats) {
	t.Helper()
	if r.Valid() != w.valid || r.ExtendedHighestSeq() != w.extMax || r.PacketsLost() != w.lost || r.lost() != w.rawLost {
		t.Errorf("%s: valid %v extMax %d lost %d raw %d; want %+v", name, r.Valid(), r.ExtendedHighestSeq(), r.PacketsLost(), r.lost(), w)
	}
}

func TestReceiverProbationA1(t *testing.T) {
	r := NewReceiver(8000)
	feed(r, 1, 500)
	check(t, "one packet", r, wantStats{valid: false, extMax: 500})
	if r.Packets() != 1 || r.Bytes() != 160 {
		t.Errorf("counters %d/%d: probation packets still count as received media", r.Packets(), r.Bytes())
	}
	if ssrc, ok := r.SSRC(); !ok || ssrc != 1 {
		t.Errorf("SSRC %d %v", ssrc, ok)
	}
	// Out of sequence during probation: probation restarts at MIN_SEQUENTIAL-1.
	feed(r, 1, 510)
	check(t, "jump in probation", r, wantStats{valid: false, extMax: 510})
	feed(r, 1, 511) // sequential: valid, base = 511
	check(t, "validated", r, wantStats{valid: true, extMax: 511})
	if r.received != 1 || r.baseSeq != 511 {
		t.Errorf("received %d base %d, want 1 and 511 (A.1 init_seq on validation)", r.received, r.baseSeq)
	}
	feed(r, 1, seqRange(512, 520)...)
	check(t, "running", r, wantStats{valid: true, extMax: 520})
	if r.expected() != 10 || r.received != 10 {
		t.Errorf("expected %d received %d, want 10/10", r.expected(), r.received)
	}
	if r.Packets() != 12 {
		t.Errorf("packets %d, want 12", r.Packets())
	}
}

func TestReceiverLossAndFractionA3(t *testing.T) {
	r := NewReceiver(8000)
	// 100..119 without 105, 110, 111: base 101 after probation.
	feed(r, 7, without(seqRange(100, 119), 105, 110, 111)...)
	// expected = 119-101+1 = 19, received = 16 → lost 3.
	check(t, "gaps", r, wantStats{valid: true, extMax: 119, lost: 3, rawLost: 3})
	rb, ok := r.Report(t0)
	if !ok || rb.SSRC != 7 || rb.TotalLost != 3 || rb.LastSequenceNumber != 119 {
		t.Fatalf("report %+v", rb)
	}
	if want := uint8(3 * 256 / 19); rb.FractionLost != want { // 40
		t.Errorf("fraction %d, want %d", rb.FractionLost, want)
	}
	// Next interval complete: fraction 0, cumulative unchanged.
	feed(r, 7, seqRange(120, 129)...)
	rb, _ = r.Report(t0)
	if rb.FractionLost != 0 || rb.TotalLost != 3 || rb.LastSequenceNumber != 129 {
		t.Errorf("second report %+v", rb)
	}
	// Half of the next interval lost: 130..137, only even ones.
	feed(r, 7, 130, 132, 134, 136)
	rb, _ = r.Report(t0)
	// expected_interval = 7 (130..136), received 4 → lost 3 → 3*256/7 = 109.
	if rb.FractionLost != 109 || rb.TotalLost != 6 {
		t.Errorf("third report %+v", rb)
	}
	// No packets since: expected_interval 0 → fraction 0.
	rb, _ = r.Report(t0)
	if rb.FractionLost != 0 {
		t.Errorf("empty interval fraction %d", rb.FractionLost)
	}
}

func TestReceiverDuplicatesClampLoss(t *testing.T) {
	r := NewReceiver(8000)
	feed(r, 1, 1, 2, 3, 3, 3, 3)
	// base 2; received counts 2,3,3,3,3 = 5; expected 2 → lost −3.
	check(t, "duplicates", r, wantStats{valid: true, extMax: 3, lost: 0, rawLost: -3})
	rb, _ := r.Report(t0)
	if rb.TotalLost != 0 || rb.FractionLost != 0 {
		t.Errorf("report %+v: negative loss must be reported as 0", rb)
	}
	// A later loss is absorbed by the surplus, as RFC 3550 counts it.
	feed(r, 1, 5, 6)
	check(t, "loss after duplicates", r, wantStats{valid: true, extMax: 6, lost: 0, rawLost: -2})
}

func TestReceiverReordering(t *testing.T) {
	r := NewReceiver(8000)
	feed(r, 1, 1, 2, 3, 5)
	rb, _ := r.Report(t0)
	// 4 looks lost at report time: expected 4 (2..5), received 3.
	if rb.TotalLost != 1 || rb.FractionLost != 64 {
		t.Errorf("before reorder %+v", rb)
	}
	feed(r, 1, 4, 6)
	check(t, "reordered", r, wantStats{valid: true, extMax: 6, lost: 0, rawLost: 0})
	rb, _ = r.Report(t0)
	// Interval: expected 1, received 2 → negative → fraction 0.
	if rb.TotalLost != 0 || rb.FractionLost != 0 {
		t.Errorf("after reorder %+v", rb)
	}
	// A packet much older than the highest (within MAX_MISORDER) is a
	// late duplicate/reorder, not a restart.
	feed(r, 1, seqRange(7, 60)...)
	feed(r, 1, 10)
	check(t, "late", r, wantStats{valid: true, extMax: 60, lost: 0, rawLost: -1})
}

func TestReceiverSequenceWrap(t *testing.T) {
	r := NewReceiver(8000)
	feed(r, 1, append(seqRange(65530, 65535), seqRange(0, 5)...)...)
	// base 65531; extended max = 65536 + 5.
	check(t, "wrap", r, wantStats{valid: true, extMax: 65541, lost: 0})
	if r.expected() != 11 {
		t.Errorf("expected %d, want 11", r.expected())
	}
	r2 := NewReceiver(8000)
	feed(r2, 1, without(append(seqRange(65530, 65535), seqRange(0, 5)...), 65535, 0)...)
	check(t, "gap across wrap", r2, wantStats{valid: true, extMax: 65541, lost: 2, rawLost: 2})
	rb, _ := r2.Report(t0)
	if rb.LastSequenceNumber != 1<<16|5 {
		t.Errorf("extended seq %#x", rb.LastSequenceNumber)
	}
	// Reordered packet from before the wrap does not add a cycle.
	feed(r2, 1, 65535)
	check(t, "late pre-wrap packet", r2, wantStats{valid: true, extMax: 65541, lost: 1, rawLost: 1})
}

func TestReceiverBigJumps(t *testing.T) {
	// A stray packet far away is not counted and does not move the stream.
	r := NewReceiver(8000)
	feed(r, 1, seqRange(1000, 1010)...)
	feed(r, 1, 40000)
	feed(r, 1, seqRange(1011, 1015)...)
	check(t, "stray", r, wantStats{valid: true, extMax: 1015, lost: 0})

	// Two sequential packets after a jump: the sender restarted; re-sync.
	r = NewReceiver(8000)
	feed(r, 1, seqRange(1000, 1010)...)
	feed(r, 1, 40000, 40001)
	check(t, "restart", r, wantStats{valid: true, extMax: 40001, lost: 0})
	if r.received != 1 || r.baseSeq != 40001 {
		t.Errorf("after re-sync received %d base %d", r.received, r.baseSeq)
	}
	feed(r, 1, seqRange(40002, 40010)...)
	check(t, "after restart", r, wantStats{valid: true, extMax: 40010, lost: 0})

	// A forward gap below MAX_DROPOUT is loss, not a restart.
	r = NewReceiver(8000)
	feed(r, 1, seqRange(100, 110)...)
	feed(r, 1, 3099)
	check(t, "big gap", r, wantStats{valid: true, extMax: 3099, lost: 2988, rawLost: 2988})
}

func TestReceiverSSRCChangeResets(t *testing.T) {
	r := NewReceiver(8000)
	feed(r, 1, without(seqRange(1, 20), 5)...)
	r.OnSR(1, ToNTP(t0), t0)
	check(t, "first source", r, wantStats{valid: true, extMax: 20, lost: 1, rawLost: 1})
	feed(r, 2, 9000)
	check(t, "new source", r, wantStats{valid: false, extMax: 9000})
	if ssrc, _ := r.SSRC(); ssrc != 2 {
		t.Errorf("ssrc %d", ssrc)
	}
	rb, ok := r.Report(t0)
	if !ok || rb.SSRC != 2 || rb.LastSenderReport != 0 || rb.TotalLost != 0 {
		t.Errorf("report after SSRC change %+v", rb)
	}
	feed(r, 2, 9001, 9002)
	check(t, "new source valid", r, wantStats{valid: true, extMax: 9002, lost: 0})
	if r.Packets() != 22 {
		t.Errorf("packets %d: endpoint counters must survive SSRC changes", r.Packets())
	}
}

// jitterFeed delivers packets every 20 ms (RTP +160 at 8 kHz, +960 at 48
// kHz) with extra arrival delays.
func jitterFeed(r *Receiver, rate uint32, delays ...time.Duration) {
	step := rate / 50
	for i, d := range delays {
		r.Update(uint16(i), uint32(i)*step+12345, 9, 160, t0.Add(time.Duration(i)*ptime+d))
	}
}

func TestJitterKnownAnswerA8(t *testing.T) {
	ms := time.Millisecond
	r := NewReceiver(8000)
	jitterFeed(r, 8000, 0, 0, 0)
	if r.JitterMs() != 0 {
		t.Fatalf("constant transit gave jitter %v", r.JitterMs())
	}
	// One packet 10 ms (80 units) late: D = 80 → J = 80/16 = 5.
	// Next on time: D = 80 again → J = 5 + 75/16 = 9.6875.
	// Then on time: D = 0 → J = 9.6875 · 15/16 = 9.08203125.
	r = NewReceiver(8000)
	jitterFeed(r, 8000, 0, 0, 10*ms)
	if r.jitter != 5 {
		t.Fatalf("J = %v, want 5", r.jitter)
	}
	r = NewReceiver(8000)
	jitterFeed(r, 8000, 0, 0, 10*ms, 0, 0)
	if r.jitter != 9.08203125 {
		t.Fatalf("J = %v, want 9.08203125", r.jitter)
	}
	if r.Jitter() != 9 {
		t.Errorf("report jitter %d, want 9", r.Jitter())
	}
	if got, want := r.JitterMs(), 9.08203125/8; got != want {
		t.Errorf("jitter ms %v, want %v", got, want)
	}
	// Opus clock: 10 ms late = 480 units → J = 30 units = 0.625 ms.
	r = NewReceiver(48000)
	jitterFeed(r, 48000, 0, 0, 10*ms)
	if r.jitter != 30 || r.JitterMs() != 0.625 {
		t.Errorf("48 kHz: J %v units %v ms, want 30 / 0.625", r.jitter, r.JitterMs())
	}
	// Early packets count like late ones (|D|).
	r = NewReceiver(8000)
	jitterFeed(r, 8000, 10*ms, 10*ms, 0)
	if r.jitter != 5 {
		t.Errorf("early packet: J = %v, want 5", r.jitter)
	}
}

func TestJitterAgainstReference(t *testing.T) {
	// Independent float computation on seconds, compared with the
	// receiver's modular integer path, over random network delays and a
	// timestamp base that wraps 2^32 during the run.
	rng := rand.New(rand.NewPCG(1, 2))
	r := NewReceiver(8000)
	var ref, prevTransit float64
	tsBase := uint32(math.MaxUint32 - 100*160)
	for i := range 1000 {
		delay := time.Duration(rng.IntN(40_000)) * time.Microsecond
		arrival := t0.Add(time.Duration(i)*ptime + delay)
		ts := tsBase + uint32(i)*160
		r.Update(uint16(i+60000), ts, 5, 160, arrival)
		transit := arrival.Sub(t0).Seconds()*8000 - float64(i)*160
		if i > 0 {
			ref += (math.Abs(transit-prevTransit) - ref) / 16
		}
		prevTransit = transit
	}
	if diff := math.Abs(r.jitter - ref); diff > 1 {
		t.Fatalf("jitter %v units, reference %v", r.jitter, ref)
	}
	if r.jitter < 20 {
		t.Fatalf("jitter %v implausibly small for 0-40 ms delays", r.jitter)
	}
}

func TestReceiverJitterRestartsWithSequence(t *testing.T) {
	// A sender restart (A.1 re-sync after two sequential packets far away)
	// comes with a new random timestamp base; the transit jump between the
	// old and the new stream is not network jitter.
	r := NewReceiver(8000)
	for i := range 20 {
		r.Update(uint16(1000+i), uint32(i)*160, 9, 160, t0.Add(time.Duration(i)*ptime))
	}
	for i := range 10 {
		r.Update(uint16(40000+i), 0x7000_0000+uint32(i)*160, 9, 160, t0.Add(time.Duration(20+i)*ptime))
	}
	if r.jitter != 0 {
		t.Fatalf("jitter %v after a restart with constant transit on both sides", r.jitter)
	}
}

func TestReceiverJitterIgnoresStrayJump(t *testing.T) {
	r := NewReceiver(8000)
	jitterFeed(r, 8000, 0, 0, 0, 0)
	r.Update(30000, 999999999, 9, 160, t0.Add(100*ptime)) // stray, not counted
	if r.jitter != 0 {
		t.Fatalf("stray packet moved jitter to %v", r.jitter)
	}
}

func TestReceiverClockRateZeroAndChange(t *testing.T) {
	r := NewReceiver(0)
	jitterFeed(r, 8000, 0, 10*time.Millisecond, 0)
	if r.JitterMs() != 0 || r.Jitter() != 0 {
		t.Fatal("jitter without clock rate")
	}
	r.SetClockRate(8000)
	r = NewReceiver(8000)
	jitterFeed(r, 8000, 0, 0, 10*time.Millisecond)
	r.SetClockRate(48000)
	if r.jitter != 0 {
		t.Fatal("jitter not reset on clock change")
	}
}

func TestReceiverLastReceivedAndDLSR(t *testing.T) {
	r := NewReceiver(8000)
	if r.LastReceivedAgo(t0) != 0 || !r.LastReceived().IsZero() {
		t.Fatal("last received before any packet")
	}
	if _, ok := r.Report(t0); ok {
		t.Fatal("report before any packet")
	}
	r.Update(1, 0, 42, -5, t0) // negative length must not corrupt bytes
	if r.Bytes() != 0 {
		t.Fatalf("bytes %d", r.Bytes())
	}
	if got := r.LastReceivedAgo(t0.Add(1234 * time.Millisecond)); got != 1234 {
		t.Errorf("last received ago %d", got)
	}
	if got := r.LastReceivedAgo(t0.Add(-time.Second)); got != 0 {
		t.Errorf("clock going back gave %d", got)
	}
	ntp := ToNTP(t0.Add(time.Hour))
	r.OnSR(99, ntp, t0) // other SSRC: ignored
	rb, _ := r.Report(t0)
	if rb.LastSenderReport != 0 || rb.Delay != 0 {
		t.Errorf("SR of another SSRC used: %+v", rb)
	}
	r.OnSR(42, ntp, t0)
	rb, _ = r.Report(t0.Add(1500 * time.Millisecond))
	if rb.LastSenderReport != NTPMiddle(ntp) || rb.Delay != 98304 { // 1.5 · 65536
		t.Errorf("LSR %#x DLSR %d, want %#x 98304", rb.LastSenderReport, rb.Delay, NTPMiddle(ntp))
	}
}

func TestNTPHelpers(t *testing.T) {
	if got := ToNTP(time.Unix(0, 0)); got != ntpEpochOffset<<32 {
		t.Errorf("Unix epoch → %#x", got)
	}
	if got := ToNTP(time.Unix(1, 500_000_000)); got != (ntpEpochOffset+1)<<32|1<<31 {
		t.Errorf("1.5 s → %#x", got)
	}
	for _, tm := range []time.Time{t0, t0.Add(123456789 * time.Nanosecond), time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)} {
		back := FromNTP(ToNTP(tm))
		if d := back.Sub(tm); d < -time.Nanosecond || d > time.Nanosecond {
			t.Errorf("round trip of %v gave %v", tm, back)
		}
	}
	if NTPMiddle(0x1122334455667788) != 0x33445566 {
		t.Error("NTPMiddle")
	}
	if toShortNTP(1500*time.Millisecond) != 98304 || toShortNTP(-time.Second) != 0 || toShortNTP(100000*time.Hour) != math.MaxUint32 {
		t.Error("toShortNTP")
	}
	if fromShortNTP(65536) != time.Second || fromShortNTP(math.MaxUint32) <= 0 {
		t.Error("fromShortNTP")
	}
	if durationToUnits(-time.Second, 8000) != -8000 || durationToUnits(1<<62, 48000) <= 0 {
		t.Error("durationToUnits")
	}
}
