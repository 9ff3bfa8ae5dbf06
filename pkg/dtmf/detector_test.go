package dtmf

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// pkt is a telephone-event packet as a sender puts it on the wire, with the time it is sent.
type pkt struct {
	ts     uint32
	marker bool
	ev     Event
	at     time.Duration
	press  int    // which press of a stream it belongs to
	ticks  uint32 // the press's duration so far (across segments)
}

// sendDigit is an RFC 4733 sender's packets for one key press of ticks duration starting at
// startTS, sent from at: one packet per 20 ms with the duration so far (the first marked),
// then three end packets. Presses longer than 65535 ticks are cut into segments (§2.5.1.5):
// each new segment's timestamp is the previous one's plus its length, unmarked.
func sendDigit(id uint8, startTS, ticks, clock uint32, at time.Duration) []pkt {
	step := clock / 50
	seg := uint32(0xffff) - uint32(0xffff)%step // segment length, a whole number of packets
	var out []pkt
	for e := step; e < ticks; e += step {
		k := (e - 1) / seg
		out = append(out, pkt{ts: startTS + k*seg, marker: e == step, ev: Event{ID: id, Volume: 10, Duration: uint16(e - k*seg)}, at: at, ticks: e})
		at += 20 * time.Millisecond
	}
	k := (ticks - 1) / seg
	for i := range 3 {
		out = append(out, pkt{ts: startTS + k*seg, marker: len(out) == 0, ev: Event{ID: id, End: true, Volume: 10, Duration: uint16(ticks - k*seg)}, at: at, ticks: ticks})
		if i < 2 {
			at += 20 * time.Millisecond
		}
	}
	return out
}

// press is one key press in a test stream.
type press struct {
	digit byte
	ms    uint32
}

// stream is the packets of presses one after another with gapMS between them, at clock.
func stream(t testing.TB, presses []press, clock uint32, gapMS uint32) []pkt {
	t.Helper()
	ts := uint32(0xfffff000) // wraps during the stream
	var at time.Duration
	var out []pkt
	for i, p := range presses {
		id, ok := EventID(p.digit)
		if !ok {
			id = uint8(p.digit) // a non-digit event code, e.g. 16 (flash)
		}
		ticks := p.ms * clock / 1000
		pk := sendDigit(id, ts, ticks, clock, at)
		for j := range pk {
			pk[j].press = i
		}
		out = append(out, pk...)
		at = pk[len(pk)-1].at + time.Duration(gapMS)*time.Millisecond
		ts += ticks + gapMS*clock/1000
	}
	return out
}

// run feeds packets to a detector in order, polls after each and at the end (3 s later), and
// returns the reports.
func run(d *Detector, pkts []pkt, ssrc uint32) []Report {
	t0 := time.Unix(1000, 0)
	var out []Report
	var payload [4]byte
	var last time.Duration
	for _, p := range pkts {
		now := t0.Add(p.at)
		out = append(out, d.Poll(now)...)
		out = append(out, d.Packet(Packet{SSRC: ssrc, Timestamp: p.ts, Marker: p.marker, Payload: p.ev.Append(payload[:0])}, now)...)
		last = max(last, p.at)
	}
	return append(out, d.Poll(t0.Add(last+EndTimeout))...)
}

// check compares reports with presses: same digits in order, durations to ±20 ms.
func check(t *testing.T, name string, got []Report, presses []press, clock uint32) {
	t.Helper()
	var want, have []byte
	for _, p := range presses {
		if _, ok := EventID(p.digit); ok {
			want = append(want, p.digit)
		}
	}
	for _, r := range got {
		have = append(have, r.Digit)
	}
	if string(have) != string(want) {
		t.Fatalf("%s: digits %q, want %q", name, have, want)
	}
	i := 0
	for _, p := range presses {
		if _, ok := EventID(p.digit); !ok {
			continue
		}
		if d := int(got[i].DurationMS(clock)) - int(p.ms); d < -20 || d > 20 {
			t.Errorf("%s: digit %d (%c) lasted %d ms, want %d", name, i, p.digit, got[i].DurationMS(clock), p.ms)
		}
		i++
	}
}

var clocks = []uint32{8000, 48000}

func allPresses() []press {
	var ps []press
	for i, c := range []byte(allDigits) {
		ps = append(ps, press{c, 40 + uint32(i)*20})
	}
	return ps
}

func TestDetectorDigits(t *testing.T) {
	for _, clock := range clocks {
		ps := allPresses()
		check(t, fmt.Sprint("in order @", clock), run(NewDetector(clock), stream(t, ps, clock, 60), 1), ps, clock)
	}
}

// TestDetectorDuplicates: every packet twice, and the whole stream's end packets repeated
// late: still each digit once.
func TestDetectorDuplicates(t *testing.T) {
	for _, clock := range clocks {
		ps := allPresses()
		var dup []pkt
		for _, p := range stream(t, ps, clock, 60) {
			dup = append(dup, p, p)
		}
		check(t, fmt.Sprint("duplicated @", clock), run(NewDetector(clock), dup, 1), ps, clock)
	}
}

// TestDetectorLostEnds: a digit whose three end packets are lost is reported when the next
// event starts, or 3 s after its last packet, with the duration last seen.
func TestDetectorLostEnds(t *testing.T) {
	for _, clock := range clocks {
		ps := allPresses()
		var lossy []pkt
		for _, p := range stream(t, ps, clock, 60) {
			if !p.ev.End {
				lossy = append(lossy, p)
			}
		}
		got := run(NewDetector(clock), lossy, 1)
		check(t, fmt.Sprint("no end packets @", clock), got, ps, clock)
		for _, r := range got {
			if r.Ended {
				t.Errorf("@%d: %c reported as ended by an end packet", clock, r.Digit)
			}
		}

		// The timeout: not before 3 s after the last packet, then once.
		d := NewDetector(clock)
		pk := sendDigit(5, 1000, clock/10, clock, 0)
		pk = pk[:len(pk)-3]
		var payload [4]byte
		t0 := time.Unix(1000, 0)
		for _, p := range pk {
			if r := d.Packet(Packet{SSRC: 1, Timestamp: p.ts, Marker: p.marker, Payload: p.ev.Append(payload[:0])}, t0.Add(p.at)); len(r) != 0 {
				t.Fatalf("reported %v before the end", r)
			}
		}
		lastAt := t0.Add(pk[len(pk)-1].at)
		if r := d.Poll(lastAt.Add(EndTimeout - time.Millisecond)); len(r) != 0 {
			t.Fatalf("reported %v before 3 s", r)
		}
		if r := d.Poll(lastAt.Add(EndTimeout)); len(r) != 1 || r[0].Digit != '5' {
			t.Fatalf("after 3 s: %v", r)
		}
		if r := d.Poll(lastAt.Add(2 * EndTimeout)); len(r) != 0 {
			t.Fatalf("reported twice: %v", r)
		}
	}
}

// TestDetectorReordered: packets shuffled within a window of four (the next digit's first
// packets may overtake the previous digit's ends): each digit once, durations within 20 ms.
func TestDetectorReordered(t *testing.T) {
	for _, clock := range clocks {
		ps := allPresses()
		pk := stream(t, ps, clock, 60)
		rng := rand.New(rand.NewPCG(3, uint64(clock)))
		for i := 0; i+4 <= len(pk); i += 4 {
			w := pk[i : i+4]
			rng.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
		}
		check(t, fmt.Sprint("reordered @", clock), run(NewDetector(clock), pk, 1), ps, clock)
	}
}

// TestDetectorLongDigits: presses longer than 65535 ticks (8.2 s at 8 kHz, 1.4 s at 48 kHz)
// arrive in segments and are one digit with the whole duration, also when the packets around
// a segment boundary are lost.
func TestDetectorLongDigits(t *testing.T) {
	for _, clock := range clocks {
		ps := []press{{'1', 10000}, {'1', 3000}, {'#', 9000}, {'7', 100}}
		pk := stream(t, ps, clock, 100)
		check(t, fmt.Sprint("long @", clock), run(NewDetector(clock), pk, 1), ps, clock)

		// Lose the last two packets of each segment and the first of the next.
		var lossy []pkt
		for i, p := range pk {
			boundary := false
			for j := i + 1; j <= i+2 && j < len(pk); j++ {
				boundary = boundary || (pk[j].ts != p.ts && pk[j].ev.ID == p.ev.ID && !pk[j].marker)
			}
			if i > 0 && pk[i-1].ts != p.ts && pk[i-1].ev.ID == p.ev.ID && !p.marker && !pk[i-1].ev.End {
				boundary = true
			}
			if !boundary {
				lossy = append(lossy, p)
			}
		}
		if len(lossy) == len(pk) {
			t.Fatal("no segment boundary in the test stream")
		}
		check(t, fmt.Sprint("long, lossy boundaries @", clock), run(NewDetector(clock), lossy, 1), ps, clock)
	}
}

// TestDetectorSameDigitTwice: the same key pressed twice is two digits, also when the first
// press lost its end packets, and when the second lost its first (marked) packet too.
func TestDetectorSameDigitTwice(t *testing.T) {
	for _, clock := range clocks {
		ps := []press{{'5', 100}, {'5', 100}, {'5', 300}, {'5', 60}}
		pk := stream(t, ps, clock, 50)
		check(t, fmt.Sprint("5555 @", clock), run(NewDetector(clock), pk, 1), ps, clock)
		var noEnds []pkt
		for _, p := range pk {
			if !p.ev.End {
				noEnds = append(noEnds, p)
			}
		}
		check(t, fmt.Sprint("5555 without ends @", clock), run(NewDetector(clock), noEnds, 1), ps, clock)
		var noMarks []pkt
		for _, p := range noEnds {
			if !p.marker {
				noMarks = append(noMarks, p)
			}
		}
		got := run(NewDetector(clock), noMarks, 1)
		if len(got) != 4 {
			t.Errorf("@%d: without ends and first packets: %d digits, want 4", clock, len(got))
		}
	}
}

// TestDetectorFlashAndSSRC: flash (16) and other events are never reported but end an open
// digit; a new SSRC ends the old stream's open digit and starts afresh.
func TestDetectorFlashAndSSRC(t *testing.T) {
	ps := []press{{'1', 100}, {16, 200}, {'2', 100}, {40, 100}, {'3', 100}}
	var noEnds []pkt
	for _, p := range stream(t, ps, 8000, 50) {
		if !p.ev.End || p.ev.ID > 15 {
			noEnds = append(noEnds, p)
		}
	}
	check(t, "flash", run(NewDetector(8000), noEnds, 1), ps, 8000)

	d := NewDetector(8000)
	var payload [4]byte
	now := time.Unix(1000, 0)
	d.Packet(Packet{SSRC: 1, Timestamp: 100, Marker: true, Payload: Event{ID: 4, Duration: 800}.Append(payload[:0])}, now)
	r := d.Packet(Packet{SSRC: 2, Timestamp: 100, Marker: true, Payload: Event{ID: 4, Duration: 160}.Append(payload[:0])}, now)
	if len(r) != 1 || r[0].Digit != '4' || r[0].Ticks != 800 {
		t.Fatalf("new SSRC: %v, want the old stream's 4 of 800 ticks", r)
	}
	r = d.Packet(Packet{SSRC: 2, Timestamp: 100, Payload: Event{ID: 4, End: true, Duration: 480}.Append(payload[:0])}, now)
	if len(r) != 1 || r[0].Digit != '4' || r[0].Ticks != 480 || !r[0].Ended {
		t.Fatalf("new stream's digit: %v", r)
	}
}

// TestDetectorMalformed: short payloads are ignored.
func TestDetectorMalformed(t *testing.T) {
	d := NewDetector(8000)
	now := time.Unix(1000, 0)
	for _, b := range [][]byte{nil, {1}, {1, 0x80, 0}} {
		if r := d.Packet(Packet{SSRC: 1, Timestamp: 1, Payload: b}, now); len(r) != 0 || d.Open() {
			t.Fatalf("payload %x: %v", b, r)
		}
	}
}

// TestDetectorAllocs: the packet path allocates nothing.
func TestDetectorAllocs(t *testing.T) {
	d := NewDetector(8000)
	pk := stream(t, allPresses(), 8000, 60)
	var payload [4]byte
	now := time.Unix(1000, 0)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		p := pk[i%len(pk)]
		i++
		d.Packet(Packet{SSRC: 1, Timestamp: p.ts + uint32(i/len(pk))*1000000, Marker: p.marker, Payload: p.ev.Append(payload[:0])}, now)
		d.Poll(now)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}

func TestParseAppend(t *testing.T) {
	ev, err := Parse([]byte{11, 0x80 | 0x40 | 13, 0x03, 0x20})
	if err != nil || ev != (Event{ID: 11, End: true, Volume: 13, Duration: 800}) {
		t.Fatalf("Parse: %+v, %v", ev, err) // the R bit (0x40) is ignored
	}
	if b := ev.Append(nil); !slices.Equal(b, []byte{11, 0x80 | 13, 0x03, 0x20}) {
		t.Fatalf("Append: %x", b)
	}
	for c := range 256 {
		id, ok := EventID(byte(c))
		if !ok {
			continue
		}
		d, ok := Digit(id)
		if !ok || (d != byte(c) && d != byte(c)-'a'+'A') {
			t.Errorf("%q → %d → %q", byte(c), id, d)
		}
	}
	if _, ok := Digit(16); ok {
		t.Error("flash is a digit")
	}
}
