package dtmf

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"
)

// FuzzParse: any bytes parse or fail cleanly, and what parses writes back the same (but for
// the reserved bit).
func FuzzParse(f *testing.F) {
	f.Add([]byte{5, 0x8a, 0x03, 0x20})
	f.Add([]byte{})
	f.Add([]byte{16, 0x40, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Parse(b)
		if err != nil {
			if len(b) >= PayloadSize {
				t.Fatalf("%x: %v", b, err)
			}
			return
		}
		out := ev.Append(nil)
		if out[0] != b[0] || out[1] != b[1]&^0x40 || out[2] != b[2] || out[3] != b[3] {
			t.Fatalf("%x → %+v → %x", b, ev, out)
		}
	})
}

// FuzzDetectorPackets: arbitrary packet streams (timestamps, SSRCs, markers, payloads,
// arrival gaps) never panic the detector, never report a non-digit, and never report more
// digits than distinct (SSRC, timestamp, event) triples arrived.
func FuzzDetectorPackets(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 100, 1, 5, 0, 0, 160, 10})
	f.Add([]byte("\x00\x00\x00\x01\x00\x00\x10\x00\x00\x05\x80\x03\x20\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDetector(8000)
		now := time.Unix(1000, 0)
		seen := map[[3]uint32]bool{}
		reports := 0
		// Each packet takes 14 bytes: SSRC (1 of 4 bytes used), timestamp, marker, payload,
		// arrival gap in 100 ms steps.
		for len(b) >= 14 {
			ssrc := uint32(b[0] & 3)
			ts := binary.BigEndian.Uint32(b[4:8])
			marker := b[8]&1 != 0
			payload := b[9:13]
			now = now.Add(time.Duration(b[13]) * 100 * time.Millisecond)
			b = b[14:]
			seen[[3]uint32{ssrc, ts, uint32(payload[0])}] = true
			for _, r := range append(d.Poll(now), d.Packet(Packet{SSRC: ssrc, Timestamp: ts, Marker: marker, Payload: payload}, now)...) {
				if r.ID > 15 || r.Digit != digits[r.ID] {
					t.Fatalf("reported %+v", r)
				}
				reports++
			}
		}
		reports += len(d.Flush())
		if reports > len(seen) {
			t.Fatalf("%d digits from %d distinct events", reports, len(seen))
		}
	})
}

// FuzzDetectorStream: a random sequence of key presses (digits, durations up to 12 s, gaps,
// both clocks), sent as RFC 4733 packets that are then duplicated, reordered within a short
// window and lost — but never a whole press, and never all three end packets and the next
// press's first packet together — is reported exactly: every press once, in order.
func FuzzDetectorStream(f *testing.F) {
	f.Add(uint64(1), uint8(20), false)
	f.Add(uint64(99), uint8(3), true)
	f.Fuzz(func(t *testing.T, seed uint64, count uint8, wide bool) {
		rng := rand.New(rand.NewPCG(seed, seed>>7))
		clock := uint32(8000)
		if wide {
			clock = 48000
		}
		var ps []press
		for range int(count%24) + 1 {
			ms := uint32(40 + rng.IntN(400))
			if rng.IntN(10) == 0 {
				ms = uint32(1000 + rng.IntN(11000)) // long: segments
			}
			ps = append(ps, press{allDigits[rng.IntN(16)], ms})
		}
		pk := stream(t, ps, clock, uint32(50+rng.IntN(200)))
		var out []pkt
		for i, p := range pk {
			first := p.marker
			lastEnd := p.ev.End && (i+1 == len(pk) || !pk[i+1].ev.End)
			// Keep every press's first and final end packet (loss of all of them may merge
			// two presses of one key, which no receiver can tell apart).
			if !first && !lastEnd && rng.IntN(5) == 0 {
				continue
			}
			out = append(out, p)
			if rng.IntN(8) == 0 {
				out = append(out, p)
			}
		}
		// Reorder within windows of three, but a press is never overtaken whole: some packet
		// of it arrives before the next press's first (a 40 ms press is five packets; it
		// takes heavy loss and reordering together to lose that).
		for i := 0; i+3 <= len(out); i += 3 {
			if rng.IntN(3) != 0 {
				continue
			}
			w := out[i : i+3]
			orig := [3]pkt{w[0], w[1], w[2]}
			rng.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
			if overtaken(out[:i+3]) {
				copy(w, orig[:])
			}
		}
		// A press ends when its final end packet arrives or, if the next press overtakes it,
		// with the longest duration that arrived before that.
		shortest := make([]uint32, len(ps))
		next := 0
		for _, p := range out {
			if p.press > next {
				next = p.press
			}
			if p.press == next {
				shortest[p.press] = max(shortest[p.press], p.ticks)
			}
		}
		got := run(NewDetector(clock), out, 7)
		if len(got) != len(ps) {
			t.Fatalf("%d digits reported for %d presses: %v %q %+v", len(got), len(ps), ps, digitsOf(got), got)
		}
		for i, r := range got {
			if r.Digit != ps[i].digit {
				t.Fatalf("digit %d: %c, pressed %c", i, r.Digit, ps[i].digit)
			}
			if r.Ticks < shortest[i] || r.DurationMS(clock) > ps[i].ms {
				t.Fatalf("digit %d (%c): %d ticks, pressed %d ms, at least %d ticks arrived in time", i, r.Digit, r.Ticks, ps[i].ms, shortest[i])
			}
		}
	})
}

// overtaken reports whether a press's packets all come after a packet of a later press.
func overtaken(pk []pkt) bool {
	seen := map[int]bool{}
	latest := -1
	for _, p := range pk {
		if !seen[p.press] && p.press < latest {
			return true
		}
		seen[p.press] = true
		latest = max(latest, p.press)
	}
	return false
}

// FuzzInband: arbitrary audio never panics the in-band or fax detectors, and they report in
// bounds.
func FuzzInband(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, uint8(7))
	f.Fuzz(func(t *testing.T, b []byte, piece uint8) {
		pcm := make([]int16, len(b)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
		}
		d, fx := NewInband(8000), NewFax(8000)
		var out []Report
		var tones []FaxTone
		step := int(piece) + 1
		for i := 0; i < len(pcm); i += step {
			end := min(i+step, len(pcm))
			out = d.Process(out, pcm[i:end])
			tones = fx.Process(tones, pcm[i:end])
		}
		out = d.Flush(out)
		for _, r := range out {
			if r.ID > 15 || int(r.Ticks) > len(pcm)+80 {
				t.Fatalf("%+v from %d samples", r, len(pcm))
			}
		}
		for _, tn := range tones {
			if tn != CNG && tn != CED {
				t.Fatalf("tone %d", tn)
			}
		}
	})
}
