package rtpstats

import (
	"time"

	"github.com/pion/rtcp"
)

// Sequence-validation constants of RFC 3550 A.1.
const (
	maxDropout    = 3000 // largest forward gap still taken as loss, not a restart
	maxMisorder   = 100  // largest backward step still taken as reordering
	minSequential = 2    // in-order packets needed before a new source is valid
	rtpSeqMod     = 1 << 16
)

// maxTotalLost is the largest cumulative loss a report block can carry
// (24-bit signed field, RFC 3550 §6.4.1).
const maxTotalLost = 0x7fffff

// seqResult is the verdict of updateSeq on one packet.
type seqResult uint8

const (
	seqValid     seqResult = iota // counted (in order, gap, duplicate or reordered)
	seqProbation                  // new source not yet validated (A.1 returns 0)
	seqBadJump                    // very large jump, remembered as bad_seq (A.1 returns 0)
)

// Receiver keeps the reception statistics of one inbound RTP stream: the
// per-source state of RFC 3550 A.1 (sequence validation and extension),
// A.3 (expected/lost/fraction) and A.8 (interarrival jitter), plus the
// endpoint-level counters of PROTOCOL §21.
//
// The zero value is not usable; create one with NewReceiver. Not safe for
// concurrent use. Update allocates nothing.
type Receiver struct {
	clockRate uint32

	// Endpoint-level counters: every packet handed to Update, across SSRC
	// changes and including packets A.1 does not count (probation,
	// duplicates), because PROTOCOL §21 reports media packets received.
	packets     uint64
	bytes       uint64
	lastArrival time.Time

	// A.1 source state.
	haveSSRC  bool
	ssrc      uint32
	maxSeq    uint16 // highest sequence number seen
	cycles    uint32 // shifted count of sequence number cycles (wraps · 2^16)
	baseSeq   uint32 // base sequence number
	badSeq    uint32 // last 'bad' sequence number + 1
	probation int    // sequential packets still needed before the source is valid
	received  uint32 // packets counted by A.1

	// A.3 interval state, advanced by Report.
	expectedPrior uint32
	receivedPrior uint32

	// A.8 jitter state; arrival times are measured from epoch in RTP units.
	epoch       time.Time
	haveTransit bool
	transit     uint32
	jitter      float64 // in RTP timestamp units

	// Last SR from this source, for LSR/DLSR (RFC 3550 §6.4.1).
	haveSR    bool
	lastSR    uint32 // middle 32 bits of its NTP timestamp
	lastSRArr time.Time
}

// NewReceiver creates statistics for a stream whose RTP clock runs at
// clockRate Hz (8000 for PCMU/PCMA/G.722, 48000 for Opus). A clockRate of 0
// disables jitter (it cannot be converted) but everything else works.
func NewReceiver(clockRate uint32) *Receiver {
	return &Receiver{clockRate: clockRate}
}

// SetClockRate changes the RTP clock (after a codec change). The jitter
// estimate restarts because its units change.
func (r *Receiver) SetClockRate(clockRate uint32) {
	if clockRate == r.clockRate {
		return
	}
	r.clockRate = clockRate
	r.haveTransit = false
	r.jitter = 0
}

// Update accounts one received RTP packet: seq, ts and ssrc from its header,
// payloadLen its payload bytes (headers, CSRCs, extension and padding
// excluded, PROTOCOL §21) and arrival its receive time (monotonic clock
// reading preferred). A packet with a different SSRC than the current one
// restarts the per-source state (A.1 new source with probation); the
// endpoint-level packet and byte counters keep accumulating.
func (r *Receiver) Update(seq uint16, ts uint32, ssrc uint32, payloadLen int, arrival time.Time) {
	r.packets++
	if payloadLen > 0 {
		r.bytes += uint64(payloadLen)
	}
	r.lastArrival = arrival
	if r.epoch.IsZero() {
		r.epoch = arrival
	}

	if !r.haveSSRC || ssrc != r.ssrc {
		r.newSource(ssrc, seq)
	}
	switch r.updateSeq(seq) {
	case seqValid, seqProbation:
		r.updateJitter(ts, arrival)
	case seqBadJump:
		// A.8 does not say; a packet A.1 sets aside as a probable restart
		// must not disturb the transit baseline of the stream it may not
		// belong to.
	}
}

// newSource starts tracking ssrc as in A.1: "init_seq(s, seq); s->max_seq =
// seq - 1; s->probation = MIN_SEQUENTIAL".
func (r *Receiver) newSource(ssrc uint32, seq uint16) {
	r.haveSSRC = true
	r.ssrc = ssrc
	r.initSeq(seq)
	r.maxSeq = seq - 1
	r.probation = minSequential
	r.haveTransit = false
	r.jitter = 0
	r.haveSR = false
}

// initSeq is A.1 init_seq.
func (r *Receiver) initSeq(seq uint16) {
	r.baseSeq = uint32(seq)
	r.maxSeq = seq
	r.badSeq = rtpSeqMod + 1 // so seq == badSeq is false
	r.cycles = 0
	r.received = 0
	r.receivedPrior = 0
	r.expectedPrior = 0
}

// updateSeq is A.1 update_seq, with its return value split into the two
// reasons for "not valid".
func (r *Receiver) updateSeq(seq uint16) seqResult {
	udelta := seq - r.maxSeq

	if r.probation > 0 {
		// Source is not valid until minSequential packets with
		// sequential sequence numbers have been received.
		if seq == r.maxSeq+1 {
			r.probation--
			r.maxSeq = seq
			if r.probation == 0 {
				r.initSeq(seq)
				r.received++
				return seqValid
			}
		} else {
			r.probation = minSequential - 1
			r.maxSeq = seq
		}
		return seqProbation
	}

	switch {
	case udelta < maxDropout:
		// In order, with permissible gap.
		if seq < r.maxSeq {
			// Sequence number wrapped: count another 64K cycle.
			r.cycles += rtpSeqMod
		}
		r.maxSeq = seq
	case uint32(udelta) <= rtpSeqMod-maxMisorder:
		// The sequence number made a very large jump.
		if uint32(seq) == r.badSeq {
			// Two sequential packets: assume the other side restarted
			// without telling us, so re-sync (pretend this was the first
			// packet). Its timestamps restart too.
			r.initSeq(seq)
			r.haveTransit = false
		} else {
			r.badSeq = (uint32(seq) + 1) & (rtpSeqMod - 1)
			return seqBadJump
		}
	default:
		// Duplicate or reordered packet.
	}
	r.received++
	return seqValid
}

// updateJitter is the A.8 estimator: D is the difference of relative
// transit times of consecutive packets (arrival in RTP units minus RTP
// timestamp), J += (|D| - J) / 16. Arithmetic is modulo 2^32 like the
// 32-bit fields themselves, so timestamp wrap is harmless.
func (r *Receiver) updateJitter(ts uint32, arrival time.Time) {
	if r.clockRate == 0 {
		return
	}
	transit := uint32(durationToUnits(arrival.Sub(r.epoch), r.clockRate)) - ts
	if r.haveTransit {
		d := float64(int32(transit - r.transit))
		if d < 0 {
			d = -d
		}
		r.jitter += (d - r.jitter) / 16
	}
	r.transit = transit
	r.haveTransit = true
}

// OnSR records a sender report from the stream's source (arrival = when it
// was received) so the next report block carries LSR and DLSR. Reports
// from any other SSRC are ignored.
func (r *Receiver) OnSR(ssrc uint32, ntp uint64, arrival time.Time) {
	if !r.haveSSRC || ssrc != r.ssrc {
		return
	}
	r.haveSR = true
	r.lastSR = NTPMiddle(ntp)
	r.lastSRArr = arrival
}

// SSRC returns the source being tracked and whether one has been seen.
func (r *Receiver) SSRC() (uint32, bool) { return r.ssrc, r.haveSSRC }

// Valid reports whether the current source has left A.1 probation.
func (r *Receiver) Valid() bool { return r.haveSSRC && r.probation == 0 }

// Packets is the number of media packets received (PROTOCOL §21
// inbound.packets).
func (r *Receiver) Packets() uint64 { return r.packets }

// Bytes is the payload bytes received (PROTOCOL §21 inbound.bytes).
func (r *Receiver) Bytes() uint64 { return r.bytes }

// LastReceived is the arrival time of the latest packet; zero if none.
func (r *Receiver) LastReceived() time.Time { return r.lastArrival }

// LastReceivedAgo is PROTOCOL §21 inbound.last_received_ms_ago: ms since the
// last packet, 0 if none yet.
func (r *Receiver) LastReceivedAgo(now time.Time) int64 {
	if r.lastArrival.IsZero() {
		return 0
	}
	return max(now.Sub(r.lastArrival).Milliseconds(), 0)
}

// ExtendedHighestSeq is the highest sequence number received, extended with
// the cycle count (A.3 extended_max).
func (r *Receiver) ExtendedHighestSeq() uint32 { return r.cycles + uint32(r.maxSeq) }

// expected is A.3 "expected = extended_max - base_seq + 1"; 0 in probation.
func (r *Receiver) expected() uint32 {
	if r.probation > 0 || !r.haveSSRC {
		return 0
	}
	return r.ExtendedHighestSeq() - r.baseSeq + 1
}

// lost is the signed cumulative loss of A.3: negative when duplicates
// outnumber losses.
func (r *Receiver) lost() int64 { return int64(r.expected()) - int64(r.received) }

// PacketsLost is the RFC 3550 cumulative number of packets lost of the
// current source, clamped at 0 as PROTOCOL §21 reports it.
func (r *Receiver) PacketsLost() int64 { return max(r.lost(), 0) }

// Jitter is the interarrival jitter in RTP timestamp units, as carried in
// report blocks (A.8).
func (r *Receiver) Jitter() uint32 { return uint32(r.jitter) }

// JitterMs is the interarrival jitter in milliseconds (PROTOCOL §21
// inbound.jitter_ms).
func (r *Receiver) JitterMs() float64 {
	if r.clockRate == 0 {
		return 0
	}
	return r.jitter * 1000 / float64(r.clockRate)
}

// Report produces the report block on the tracked source for an SR or RR
// sent at now (RFC 3550 §6.4.1) and starts a new interval for the fraction
// lost (A.3), so call it once per report actually sent. ok is false while no
// packet has been received.
//
// The cumulative loss is clamped to 0..0x7FFFFF: RFC 3550 allows a negative
// value when duplicates arrive, but many receivers read the field as
// unsigned, and PROTOCOL §21 reports loss ≥ 0 as well.
func (r *Receiver) Report(now time.Time) (rb rtcp.ReceptionReport, ok bool) {
	if !r.haveSSRC {
		return rtcp.ReceptionReport{}, false
	}
	rb.SSRC = r.ssrc
	rb.LastSequenceNumber = r.ExtendedHighestSeq()
	rb.Jitter = r.Jitter()
	rb.TotalLost = uint32(min(r.PacketsLost(), maxTotalLost))

	if r.probation == 0 {
		expected := r.expected()
		expectedInterval := expected - r.expectedPrior
		r.expectedPrior = expected
		receivedInterval := r.received - r.receivedPrior
		r.receivedPrior = r.received
		lostInterval := int64(expectedInterval) - int64(receivedInterval)
		if expectedInterval != 0 && lostInterval > 0 {
			// 256 (everything lost) does not fit the 8-bit field.
			rb.FractionLost = uint8(min((lostInterval<<8)/int64(expectedInterval), 255))
		}
	}

	if r.haveSR {
		rb.LastSenderReport = r.lastSR
		rb.Delay = toShortNTP(now.Sub(r.lastSRArr))
	}
	return rb, true
}
