package rtpstats

import (
	"math"
	"time"
)

// ntpEpochOffset is the number of seconds from the NTP epoch (1900-01-01)
// to the Unix epoch (1970-01-01), RFC 5905 §6.
const ntpEpochOffset = 2208988800

// ToNTP converts t to a 64-bit NTP timestamp (RFC 3550 §4: seconds since
// 1900 in the high 32 bits, binary fraction in the low 32). Seconds wrap in
// 2036 as on the wire (NTP era 1).
func ToNTP(t time.Time) uint64 {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := (uint64(t.Nanosecond()) << 32) / uint64(time.Second)
	return secs<<32 | frac
}

// FromNTP converts a 64-bit NTP timestamp back to a time. Following RFC 4330
// §3, a timestamp whose most significant bit is clear is taken to be in era
// 1 (2036-2104).
func FromNTP(ntp uint64) time.Time {
	secs := int64(ntp >> 32)
	if ntp>>63 == 0 {
		secs += 1 << 32
	}
	nanos := int64((ntp & 0xffffffff) * uint64(time.Second) >> 32)
	return time.Unix(secs-ntpEpochOffset, nanos)
}

// NTPMiddle returns the middle 32 bits of an NTP timestamp, the compact form
// used in report blocks as LSR (RFC 3550 §6.4.1).
func NTPMiddle(ntp uint64) uint32 { return uint32(ntp >> 16) }

// toShortNTP expresses d in units of 1/65536 s, the DLSR unit of RFC 3550
// §6.4.1, clamped to 0 and to the 32-bit maximum. Whole seconds and the
// remainder are scaled separately so that no intermediate overflows.
func toShortNTP(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	v := uint64(d/time.Second)<<16 + uint64(d%time.Second)<<16/uint64(time.Second)
	if v > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

// fromShortNTP converts 1/65536 s units back to a duration; at most 2^32 ·
// 10^9 / 2^16 ns, so the multiplication cannot overflow.
func fromShortNTP(v uint32) time.Duration {
	return time.Duration(uint64(v) * uint64(time.Second) >> 16)
}

// durationToUnits converts d to RTP timestamp units at clockRate (A.8: the
// arrival time "in the same units as the RTP timestamp"). Seconds and
// remainder are scaled separately so a call lasting years cannot overflow;
// negative durations work too. The result is meant to be reduced mod 2^32.
func durationToUnits(d time.Duration, clockRate uint32) int64 {
	secs := int64(d / time.Second)
	rem := int64(d % time.Second)
	return secs*int64(clockRate) + rem*int64(clockRate)/int64(time.Second)
}
