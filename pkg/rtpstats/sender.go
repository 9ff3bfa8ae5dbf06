package rtpstats

import (
	"time"

	"github.com/pion/rtcp"
)

// MaxRTT bounds plausible round-trip times: PROTOCOL §14 keeps an RTT only
// if 0 ≤ RTT < 10000 ms.
const MaxRTT = 10 * time.Second

// srHistory is how many of our own SRs are remembered for matching the LSR
// of incoming report blocks. At one SR per 5 s it covers 80 s, far beyond
// any RTT we accept.
const srHistory = 16

// sentSR remembers one SR we sent: the LSR key a peer will echo and the
// (monotonic) time we sent it.
type sentSR struct {
	lsr  uint32
	sent time.Time
}

// Sender keeps the statistics of one outbound RTP stream (our SSRC): packet
// and octet counts for SRs and PROTOCOL §21 outbound, the last RTP timestamp
// with the wall-clock time it was sent (the SR's NTP↔RTP mapping, RFC 3550
// §6.4.1), the SRs sent recently, and the latest RTT.
//
// Not safe for concurrent use. OnSent allocates nothing.
type Sender struct {
	ssrc      uint32
	clockRate uint32

	packets uint64
	octets  uint64

	haveTS     bool
	lastTS     uint32
	lastTSTime time.Time

	srs    [srHistory]sentSR
	srNext int

	haveRTT bool
	rtt     time.Duration

	// The latest fraction lost reported on our stream and how many report blocks on it
	// have arrived (the destination's loss, for the Opus encoder's FEC policy).
	fractionLost uint8
	lossReports  uint64
}

// NewSender creates statistics for our outbound stream with SSRC ssrc and an
// RTP clock of clockRate Hz.
func NewSender(ssrc, clockRate uint32) *Sender {
	return &Sender{ssrc: ssrc, clockRate: clockRate}
}

// SSRC is our SSRC, the one SRs are sent from and report blocks refer to.
func (s *Sender) SSRC() uint32 { return s.ssrc }

// SetClockRate changes the RTP clock used to extrapolate SR timestamps
// (after a codec change).
func (s *Sender) SetClockRate(clockRate uint32) { s.clockRate = clockRate }

// OnSent accounts one RTP packet sent with timestamp ts and payloadLen
// payload bytes at now.
func (s *Sender) OnSent(ts uint32, payloadLen int, now time.Time) {
	s.packets++
	if payloadLen > 0 {
		s.octets += uint64(payloadLen)
	}
	s.haveTS = true
	s.lastTS = ts
	s.lastTSTime = now
}

// Packets is the number of RTP packets sent (PROTOCOL §21 outbound.packets).
func (s *Sender) Packets() uint64 { return s.packets }

// Octets is the payload bytes sent (PROTOCOL §21 outbound.bytes; the SR
// sender's octet count, RFC 3550 §6.4.1).
func (s *Sender) Octets() uint64 { return s.octets }

// RTPTimestampAt is the RTP timestamp corresponding to now: the last sent
// timestamp advanced by the elapsed time at the clock rate (RFC 3550
// §6.4.1: the SR's RTP timestamp denotes the same instant as its NTP
// timestamp). ok is false before any packet was sent.
func (s *Sender) RTPTimestampAt(now time.Time) (ts uint32, ok bool) {
	if !s.haveTS {
		return 0, false
	}
	elapsed := now.Sub(s.lastTSTime)
	if elapsed < 0 {
		elapsed = 0
	}
	return s.lastTS + uint32(durationToUnits(elapsed, s.clockRate)), true
}

// recordSR remembers an SR sent at now with NTP timestamp ntp, overwriting
// the oldest entry.
func (s *Sender) recordSR(ntp uint64, now time.Time) {
	s.srs[s.srNext] = sentSR{lsr: NTPMiddle(ntp), sent: now}
	s.srNext = (s.srNext + 1) % srHistory
}

// OnReportBlock takes a report block received at now (from an SR or RR).
// For a block on our SSRC whose LSR matches an SR we sent, the round trip is
// RTT = now − (time that SR was sent) − DLSR, which is RFC 3550 §6.4.1's
// A − LSR − DLSR evaluated on our monotonic clock instead of the truncated
// NTP values. It is kept (and returned with ok) only if 0 ≤ RTT < MaxRTT.
// Blocks on other SSRCs, with LSR 0 or an LSR we never sent are ignored.
//
// Every block on our SSRC also records its fraction lost (see FractionLost).
func (s *Sender) OnReportBlock(rb rtcp.ReceptionReport, now time.Time) (rtt time.Duration, ok bool) {
	if rb.SSRC != s.ssrc {
		return 0, false
	}
	s.fractionLost, s.lossReports = rb.FractionLost, s.lossReports+1
	if rb.LastSenderReport == 0 {
		return 0, false
	}
	for i := range s.srs {
		e := &s.srs[i]
		if e.sent.IsZero() || e.lsr != rb.LastSenderReport {
			continue
		}
		rtt = now.Sub(e.sent) - fromShortNTP(rb.Delay)
		if rtt < 0 || rtt >= MaxRTT {
			return 0, false
		}
		s.rtt, s.haveRTT = rtt, true
		return rtt, true
	}
	return 0, false
}

// FractionLost is the fraction of our packets lost (in 1/256) that the latest report block on
// our stream gave, and reports the number of such blocks so far: a caller that remembers
// reports sees when a new one has arrived.
func (s *Sender) FractionLost() (fraction uint8, reports uint64) {
	return s.fractionLost, s.lossReports
}

// RTT is the latest accepted round-trip time; ok is false until one was
// measured (PROTOCOL §21 rtt_ms is null then).
func (s *Sender) RTT() (rtt time.Duration, ok bool) { return s.rtt, s.haveRTT }

// RTTMs is RTT in milliseconds as a float, for PROTOCOL §21 rtt_ms.
func (s *Sender) RTTMs() (ms float64, ok bool) {
	return float64(s.rtt) / float64(time.Millisecond), s.haveRTT
}
