package dtmf

import (
	"time"
)

// EndTimeout is how long after a digit's last packet the digit is reported although no end
// packet arrived (PROTOCOL.md §16, §28).
const EndTimeout = 3 * time.Second

// Report is one detected digit.
type Report struct {
	ID    uint8 // event code 0-15
	Digit byte  // its character (see Digit)
	// Ticks is the digit's duration in RTP clock ticks: the end packet's duration, or the
	// longest seen when the end was lost; segments of a long event (RFC 4733 §2.5.1.5) are
	// added up, so it may exceed 65535.
	Ticks uint32
	// Ended is true when an end packet completed the digit, false when the next event or
	// EndTimeout did.
	Ended bool
}

// DurationMS is the duration in milliseconds at clock Hz (§16: duration × 1000 / clock).
func (r Report) DurationMS(clock uint32) uint32 {
	if clock == 0 {
		clock = 8000
	}
	return uint32(uint64(r.Ticks) * 1000 / uint64(clock))
}

// Packet is what the Detector needs of one inbound telephone-event RTP packet.
type Packet struct {
	SSRC      uint32
	Timestamp uint32
	Marker    bool
	Payload   []byte
}

// Detector follows one leg's telephone-event packets (RFC 4733 §2.5.2) and reports each
// digit exactly once:
//
//   - packets of an event share its RTP timestamp; the first end (E) packet completes it and
//     its repeats are ignored, as are stragglers of an earlier event that arrive late;
//   - an event that never gets its end is completed by the next event (another code or a new
//     timestamp) or EndTimeout after its last packet (see Poll);
//   - an event longer than 65535 ticks arrives in segments, each with a new timestamp equal
//     to the previous segment's plus its duration; they are joined into one digit;
//   - a change of SSRC (a new stream) completes any open event and starts afresh.
//
// Packets older than the newest event are taken for stragglers and dropped, so an event whose
// every packet arrives after the next event's first one is lost: that takes a press of a few
// packets reordered past the next press, which networks that reorder by a packet or two never do.
//
// Events 16 and up (flash, tones) take part in this bookkeeping (they end an open digit) but
// are never reported. The zero value is not usable; see NewDetector. A Detector is not safe
// for concurrent use and allocates nothing.
type Detector struct {
	clock uint32

	started bool   // a packet was seen: ssrc and newest are valid
	ssrc    uint32 // the stream being followed
	newest  uint32 // the newest event timestamp seen

	open  bool      // an event is in progress
	id    uint8     // its code
	ts    uint32    // its current segment's timestamp
	prior uint32    // ticks of its earlier segments
	dur   uint16    // the longest duration seen in the current segment
	last  time.Time // when its last packet arrived

	done   bool // doneID/doneTS name the last completed event (segment), whose repeats are dropped
	doneID uint8
	doneTS uint32

	out [2]Report
}

// NewDetector follows a stream whose telephone-event clock is clock Hz (8000 if 0).
func NewDetector(clock uint32) *Detector {
	d := &Detector{}
	d.SetClock(clock)
	return d
}

// SetClock changes the telephone-event clock (a renegotiated codec).
func (d *Detector) SetClock(clock uint32) {
	if clock == 0 {
		clock = 8000
	}
	d.clock = clock
}

// staleWindow is how far back (in ticks) a timestamp older than the newest event is taken for
// a late packet of an earlier event; further back it is a stream that restarted its clock.
func (d *Detector) staleWindow() uint32 { return 60 * d.clock }

// Packet takes one telephone-event packet received at now and returns the digits it
// completed (none, one, or two: an open digit ended by a new one that arrives already ended).
// The returned slice is only valid until the next call. Malformed payloads are ignored.
func (d *Detector) Packet(p Packet, now time.Time) []Report {
	ev, err := Parse(p.Payload)
	if err != nil {
		return nil
	}
	out := d.out[:0]
	if d.started && p.SSRC != d.ssrc {
		out = d.complete(out, false)
		d.done = false
		d.started = false
	}
	if d.started {
		if age := d.newest - p.Timestamp; age != 0 && age < d.staleWindow() {
			return out // a straggler of an earlier event (reordered or duplicated late)
		}
	}
	if !d.started || int32(p.Timestamp-d.newest) > 0 || d.newest-p.Timestamp >= d.staleWindow() {
		d.newest = p.Timestamp
	}
	d.started, d.ssrc = true, p.SSRC

	if d.open && ev.ID == d.id {
		switch {
		case p.Timestamp == d.ts:
			return d.update(out, ev, now)
		case d.continues(p.Timestamp, p.Marker, ev.Duration):
			d.prior += p.Timestamp - d.ts
			d.ts, d.dur = p.Timestamp, 0
			return d.update(out, ev, now)
		}
	}
	if !d.open && d.done && ev.ID == d.doneID && p.Timestamp == d.doneTS {
		return out // a repeat of the end packets, or a late packet of the completed event
	}
	out = d.complete(out, false)
	d.open, d.id, d.ts, d.prior, d.dur = true, ev.ID, p.Timestamp, 0, 0
	return d.update(out, ev, now)
}

// continues reports whether a packet of the open event's code with timestamp ts starts the
// next segment of a long event (RFC 4733 §2.5.1.5): the new segment's timestamp is the
// previous segment's plus its duration, at most 65535 ticks, and the previous segment had
// (up to a few lost packets) reached that. A new key press is told apart by its marker bit,
// and, if its first packet was lost, by the pause before it, which pushes it further out.
func (d *Detector) continues(ts uint32, marker bool, dur uint16) bool {
	if marker {
		return false
	}
	delta := ts - d.ts
	slack := d.clock / 5 // 200 ms of packets lost at the segment's end or the next one's start
	return uint32(d.dur)+slack >= 0xffff && delta >= uint32(d.dur) && delta <= 0xffff && uint32(dur) <= slack
}

// update applies a packet of the open event's current segment.
func (d *Detector) update(out []Report, ev Event, now time.Time) []Report {
	d.dur = max(d.dur, ev.Duration)
	d.last = now
	if ev.End {
		out = d.complete(out, true)
	}
	return out
}

// complete closes the open event, if any, and appends its digit.
func (d *Detector) complete(out []Report, ended bool) []Report {
	if !d.open {
		return out
	}
	d.open = false
	d.done, d.doneID, d.doneTS = true, d.id, d.ts
	c, ok := Digit(d.id)
	if !ok {
		return out
	}
	return append(out, Report{ID: d.id, Digit: c, Ticks: d.prior + uint32(d.dur), Ended: ended})
}

// Poll completes a digit whose end packets were all lost, EndTimeout after its last packet.
// Call it now and then (the session's tick); the slice is valid until the next call.
func (d *Detector) Poll(now time.Time) []Report {
	if d.open && now.Sub(d.last) >= EndTimeout {
		return d.complete(d.out[:0], false)
	}
	return nil
}

// Flush completes any open digit at once (the leg is going away).
func (d *Detector) Flush() []Report { return d.complete(d.out[:0], false) }

// Open reports whether a digit is in progress (some of its packets seen, no end yet).
func (d *Detector) Open() bool { return d.open }
