package dtmf

import (
	"fmt"
	"time"
)

// Interval is the pacing of injected telephone-event packets (PROTOCOL.md §16, §28).
const Interval = 20 * time.Millisecond

// Injection bounds of endpoint.dtmf.inject (PROTOCOL.md §6).
const (
	MinInjectMS = 1
	MaxInjectMS = 10000
)

// Injection is the packet sequence that injects one digit (PROTOCOL.md §16). With
// n = ceil(duration/20 ms), packets 1…n−1 have E=0 and durations of 20 ms, 40 ms, … in clock
// ticks (the first one marked), then three identical E=1 packets carry the full duration (if
// n = 1 the first of them is marked): n+2 packets, packet i due i × Interval after the first,
// all with one RTP timestamp and consecutive sequence numbers. Durations are capped at 65535
// ticks. The zero value is not usable; see NewInjection.
type Injection struct {
	id     uint8
	volume uint8
	clock  uint32
	n      int    // ceil(duration / 20 ms)
	full   uint16 // the end packets' duration in ticks
}

// NewInjection prepares digit c ('0'-'9', '*', '#', 'A'-'D' or 'a'-'d') for durationMS
// milliseconds (1-10000) at volume (0-63, -dBm0) on a telephone-event stream clocked at
// clock Hz.
func NewInjection(c byte, durationMS uint32, volume uint8, clock uint32) (Injection, error) {
	id, ok := EventID(c)
	if !ok {
		return Injection{}, fmt.Errorf("dtmf: %q is not a DTMF digit", c)
	}
	if durationMS < MinInjectMS || durationMS > MaxInjectMS {
		return Injection{}, fmt.Errorf("dtmf: duration %d ms outside %d-%d", durationMS, MinInjectMS, MaxInjectMS)
	}
	if volume > MaxVolume {
		return Injection{}, fmt.Errorf("dtmf: volume %d above %d", volume, MaxVolume)
	}
	if clock == 0 {
		return Injection{}, fmt.Errorf("dtmf: zero telephone-event clock")
	}
	step := uint32(Interval / time.Millisecond)
	return Injection{id: id, volume: volume, clock: clock, n: int((durationMS + step - 1) / step),
		full: ticks(uint64(durationMS), clock)}, nil
}

// ticks converts ms to clock ticks, capped at 65535.
func ticks(ms uint64, clock uint32) uint16 {
	return uint16(min(ms*uint64(clock)/1000, 0xffff))
}

// Len is the number of packets: n + 2.
func (j Injection) Len() int { return j.n + 2 }

// Due is when packet i is sent, counted from the first.
func (j Injection) Due(i int) time.Duration { return time.Duration(i) * Interval }

// Span is how long the injection takes from its first packet to its last.
func (j Injection) Span() time.Duration { return j.Due(j.Len() - 1) }

// Packet is packet i (0 ≤ i < Len): its payload fields and its marker bit.
func (j Injection) Packet(i int) (ev Event, marker bool) {
	ev = Event{ID: j.id, Volume: j.volume}
	if i < j.n-1 {
		ev.Duration = ticks(uint64(i+1)*uint64(Interval/time.Millisecond), j.clock)
		return ev, i == 0
	}
	ev.End, ev.Duration = true, j.full
	return ev, j.n == 1 && i == 0
}
