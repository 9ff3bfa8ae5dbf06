package dtmf

import (
	"encoding/binary"
	"errors"
)

// PayloadSize is the size of an RFC 4733 named-event payload.
const PayloadSize = 4

// MaxVolume is the largest volume field (the power level is -volume dBm0).
const MaxVolume = 63

// Event is one RFC 4733 §2.3 named-event payload:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     event     |E|R| volume    |          duration             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Event struct {
	ID       uint8  // event code: 0-9, 10 (*), 11 (#), 12-15 (A-D), 16 (flash), …
	End      bool   // E bit: the last packets of the event (or of its last segment)
	Volume   uint8  // 0-63, the power level as -dBm0
	Duration uint16 // in RTP clock ticks since the event's (segment's) timestamp
}

// ErrShortPayload is returned for a payload shorter than PayloadSize.
var ErrShortPayload = errors.New("dtmf: telephone-event payload shorter than 4 bytes")

// Parse reads a telephone-event payload. Bytes beyond the first event are ignored: RFC 4733
// §2.5.1.4 allows a packet to carry earlier events in redundancy blocks, but those need the
// RFC 2198 format, which is negotiated separately and never by rtpbridge.
func Parse(b []byte) (Event, error) {
	if len(b) < PayloadSize {
		return Event{}, ErrShortPayload
	}
	return Event{
		ID:       b[0],
		End:      b[1]&0x80 != 0,
		Volume:   b[1] & 0x3f,
		Duration: binary.BigEndian.Uint16(b[2:4]),
	}, nil
}

// Append appends e's payload to b (the R bit is always zero, volume is cut to 6 bits).
func (e Event) Append(b []byte) []byte {
	flags := e.Volume & 0x3f
	if e.End {
		flags |= 0x80
	}
	return append(b, e.ID, flags, byte(e.Duration>>8), byte(e.Duration))
}

// digits maps event codes 0-15 to the characters of PROTOCOL.md §16.
const digits = "0123456789*#ABCD"

// Digit is the character of event code id: '0'-'9', '*', '#', 'A'-'D'; ok is false for every
// other code (flash and the rest are never reported as digits).
func Digit(id uint8) (c byte, ok bool) {
	if int(id) < len(digits) {
		return digits[id], true
	}
	return 0, false
}

// EventID is the event code of digit c; lowercase a-d are accepted as A-D.
func EventID(c byte) (id uint8, ok bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c == '*':
		return 10, true
	case c == '#':
		return 11, true
	case c >= 'A' && c <= 'D':
		return 12 + c - 'A', true
	case c >= 'a' && c <= 'd':
		return 12 + c - 'a', true
	}
	return 0, false
}
