package sdp

import (
	"fmt"
	"strconv"
	"strings"
)

// Codec names as they appear in SDP and in the control protocol (PROTOCOL.md §12).
const (
	PCMU           = "PCMU"
	PCMA           = "PCMA"
	G722           = "G722"
	Opus           = "opus"
	TelephoneEvent = "telephone-event"
)

// Payload types of telephone-event in our own offers (D12). The first entry
// keeps the historical 101; when both an 8 kHz and a 48 kHz entry are needed,
// /8000 is 101 and /48000 is 110. 110 is free in the dynamic range (RFC 3551
// §3) and is not 111 (our Opus), nor 96 or 126 (which PROTOCOL.md §16 treats as
// likely telephone-event PTs from other peers).
const (
	TelephoneEventPT       uint8 = 101
	TelephoneEventSecondPT uint8 = 110
)

// telephoneEventFmtp advertises events 0-15 (DTMF) and 16 (flash), RFC 4733 §2.4.1.
const telephoneEventFmtp = "0-16"

// OpusFmtp is the Opus format parameter line of our offers: mono, in-band FEC
// wanted, 10 ms minimum packet time (RFC 7587 §6.1).
const OpusFmtp = "minptime=10;useinbandfec=1;stereo=0;sprop-stereo=0"

// CodecSpec is one row of the codec table of PROTOCOL.md §12.
type CodecSpec struct {
	Name        string // SDP encoding name, canonical case
	PayloadType uint8  // default (static or our dynamic) payload type
	ClockRate   uint32 // RTP clock
	Channels    uint8  // channel count written in rtpmap; 0 = omitted
}

// codecTable lists the audio codecs we support in the default offer order
// (PROTOCOL.md §0 D11). It is a constant table: never modified.
var codecTable = [...]CodecSpec{
	{Name: PCMU, PayloadType: 0, ClockRate: 8000},
	{Name: PCMA, PayloadType: 8, ClockRate: 8000},
	{Name: G722, PayloadType: 9, ClockRate: 8000},
	{Name: Opus, PayloadType: 111, ClockRate: 48000, Channels: 2},
}

// LookupCodec finds a supported audio codec by name, case-insensitively.
// telephone-event is not an audio codec and is not found here.
func LookupCodec(name string) (CodecSpec, bool) {
	for _, c := range codecTable {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return CodecSpec{}, false
}

// SupportedCodecs returns the names of the supported audio codecs in the
// default offer order: PCMU, PCMA, G722, opus.
func SupportedCodecs() []string {
	names := make([]string, len(codecTable))
	for i, c := range codecTable {
		names[i] = c.Name
	}
	return names
}

// ResolveCodecs turns a caller's codec preference list (PROTOCOL.md §0 D10)
// into canonical names in the same order. nil means the default list; an empty
// non-nil list stays empty (an offer with telephone-event only, §6).
// "telephone-event" is accepted and dropped, since it is always included;
// duplicates are dropped; any other unknown name is an error.
func ResolveCodecs(names []string) ([]string, error) {
	if names == nil {
		return SupportedCodecs(), nil
	}
	out := make([]string, 0, len(codecTable))
	for _, n := range names {
		if strings.EqualFold(n, TelephoneEvent) {
			continue
		}
		c, ok := LookupCodec(n)
		if !ok {
			return nil, fmt.Errorf("unknown codec %q (supported: %s)", n, strings.Join(SupportedCodecs(), ", "))
		}
		dup := false
		for _, have := range out {
			if have == c.Name {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, c.Name)
		}
	}
	return out, nil
}

// staticName gives the RFC 3551 §6 (Table 4) encoding name of a static
// payload type, used only to name what a peer offered in error messages.
func staticName(pt uint8) string {
	switch pt {
	case 0:
		return PCMU
	case 3:
		return "GSM"
	case 4:
		return "G723"
	case 5, 6, 16, 17:
		return "DVI4"
	case 7:
		return "LPC"
	case 8:
		return PCMA
	case 9:
		return G722
	case 10, 11:
		return "L16"
	case 12:
		return "QCELP"
	case 13:
		return "CN"
	case 14:
		return "MPA"
	case 15:
		return "G728"
	case 18:
		return "G729"
	}
	return ""
}

// Format is one payload type of an m= line with what we know about it.
type Format struct {
	PT uint8
	// Name is the canonical name for supported codecs and telephone-event;
	// for others the rtpmap encoding name (or the RFC 3551 static name), or ""
	// when nothing names the payload type.
	Name      string
	ClockRate uint32 // 0 when unknown
	Channels  uint8  // from rtpmap; 0 when absent
	// Supported is true for PCMU, PCMA, G722, opus and telephone-event in a
	// form we can use (right clock, mono or Opus stereo signalling).
	Supported bool
}

// IsTelephoneEvent reports whether f is a usable telephone-event entry.
func (f Format) IsTelephoneEvent() bool { return f.Supported && f.Name == TelephoneEvent }

// Label names f for messages: its encoding name, else its payload type number.
func (f Format) Label() string {
	if f.Name != "" {
		return f.Name
	}
	return strconv.Itoa(int(f.PT))
}

// rtpmap is one parsed a=rtpmap value (RFC 4566 §6).
type rtpmap struct {
	name     string
	clock    uint32
	channels uint8
}

// parseRtpmap parses "<pt> <name>/<clock>[/<channels>]".
func parseRtpmap(v string) (uint8, rtpmap, bool) {
	ptText, enc, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return 0, rtpmap{}, false
	}
	pt, ok := parsePT(ptText)
	if !ok {
		return 0, rtpmap{}, false
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	if len(parts) < 2 || len(parts) > 3 || !isToken(parts[0]) {
		return 0, rtpmap{}, false
	}
	clock, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || clock == 0 {
		return 0, rtpmap{}, false
	}
	rm := rtpmap{name: parts[0], clock: uint32(clock)}
	if len(parts) == 3 {
		ch, err := strconv.ParseUint(parts[2], 10, 8)
		if err != nil || ch == 0 {
			return 0, rtpmap{}, false
		}
		rm.channels = uint8(ch)
	}
	return pt, rm, true
}

// parsePT parses an RTP payload type: 0-127 (RFC 3550 §5.1, 7 bits).
func parsePT(s string) (uint8, bool) {
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || n > 127 {
		return 0, false
	}
	return uint8(n), true
}

// isToken limits what we accept as an encoding name: short, and made of
// characters that are safe to repeat in an error message sent to a client.
func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '+') {
			return false
		}
	}
	return true
}

// classify decides what payload type pt is, given its rtpmap if any
// (PROTOCOL.md §12: static 0/8/9 are known without rtpmap; dynamic types only
// through rtpmap).
func classify(pt uint8, rm rtpmap, hasMap bool) Format {
	f := Format{PT: pt}
	if !hasMap {
		f.Name = staticName(pt)
		switch pt {
		case 0, 8, 9: // RFC 3551 Table 4: all three are 8000 Hz mono
			f.ClockRate, f.Supported = 8000, true
		}
		return f
	}
	f.Name, f.ClockRate, f.Channels = rm.name, rm.clock, rm.channels
	if strings.EqualFold(rm.name, TelephoneEvent) {
		// Restricted to the dynamic range: RFC 4733 registers telephone-event
		// as a dynamic type, and Negotiated uses PT 0 to mean "none".
		if pt >= 96 {
			f.Name, f.Supported = TelephoneEvent, true
		}
		return f
	}
	c, ok := LookupCodec(rm.name)
	if !ok {
		return f
	}
	f.Name = c.Name
	switch {
	case rm.clock != c.ClockRate:
	case c.Name == Opus && rm.channels <= 2: // RFC 7587 §7: always /2; tolerate /1 or none
		f.Supported = true
	case c.Name != Opus && rm.channels <= 1:
		f.Supported = true
	}
	return f
}

// fmtpParam returns the value of key in an fmtp parameter string such as
// "minptime=10;useinbandfec=1" (RFC 7587 §6.1; keys case-insensitive).
func fmtpParam(fmtp, key string) (string, bool) {
	for p := range strings.SplitSeq(fmtp, ";") {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), key) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}
