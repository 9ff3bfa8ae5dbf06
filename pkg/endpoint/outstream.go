package endpoint

import (
	"math/rand/v2"
	"time"
)

// OutStream is the single RTP stream an endpoint sends. Whatever feeds it (another leg, a
// transcoder, a mixer, a switch between them), the receiver sees one SSRC with continuous
// sequence numbers and timestamps (PROTOCOL.md D14): each change of source re-bases the
// offsets so the stream carries on from where it was, and sets the marker bit.
type OutStream struct {
	ssrc  uint32
	clock uint32

	started bool
	source  uint64 // identity of the current source (see Map)
	seqOff  uint16
	tsOff   uint32
	lastSeq uint16
	lastTS  uint32
	lastAt  time.Time
}

// NewOutStream starts a stream with a random SSRC; sequence and timestamp start at random
// values too (RFC 3550 §5.1).
func NewOutStream(clock uint32) *OutStream {
	return &OutStream{ssrc: rand.Uint32(), clock: clock}
}

// SSRC is the stream's synchronisation source.
func (o *OutStream) SSRC() uint32 { return o.ssrc }

// SetClock changes the clock rate (a renegotiated codec); the next packet re-bases.
func (o *OutStream) SetClock(clock uint32) {
	if clock != o.clock {
		o.clock = clock
		o.source = 0
	}
}

// Map turns a source packet's sequence number and timestamp (already in this stream's clock)
// into this stream's. source identifies the feed: a change re-bases the stream. A zero source
// is never current, so passing 0 always re-bases.
func (o *OutStream) Map(source uint64, seq uint16, ts uint32, marker bool, now time.Time) (uint16, uint32, bool) {
	if !o.started {
		o.seqOff = uint16(rand.Uint32()) - seq
		o.tsOff = rand.Uint32() - ts
		o.source = source
		o.started = true
		o.lastSeq, o.lastTS, o.lastAt = seq+o.seqOff-1, ts+o.tsOff, now
		marker = true
	} else if source != o.source || source == 0 {
		// Continue one sequence number later, and as many clock ticks later as have really
		// passed (at least one), so jitter buffers see neither a jump nor a rewind.
		// now may be a little before lastAt: a leg transferred between sessions is fed by
		// two session loops in turn, each with its own notion of the current tick.
		elapsed := uint32(max(now.Sub(o.lastAt), 0) * time.Duration(o.clock) / time.Second)
		if elapsed == 0 {
			elapsed = 1
		}
		o.seqOff = o.lastSeq + 1 - seq
		o.tsOff = o.lastTS + elapsed - ts
		o.source = source
		marker = true
	}
	outSeq, outTS := seq+o.seqOff, ts+o.tsOff
	if int16(outSeq-o.lastSeq) > 0 {
		o.lastSeq = outSeq
	}
	if int32(outTS-o.lastTS) >= 0 {
		o.lastTS, o.lastAt = outTS, now
	}
	return outSeq, outTS, marker
}
