package rtpnet

import "encoding/binary"

// MaxDatagramSize is the largest inbound datagram accepted on a media port.
// 1500 bytes is one Ethernet MTU: a plain-RTP audio packet (even 120 ms of
// G.711 plus SRTP tag) fits well below it, and anything larger arrived
// IP-fragmented or is not ours. Readers should receive into a buffer of at
// least ReadBufferSize bytes so that an oversized datagram is seen as such
// (its length exceeds MaxDatagramSize) instead of being silently truncated
// into something that might parse.
const MaxDatagramSize = 1500

// ReadBufferSize is the minimum receive buffer for media sockets: one byte
// more than MaxDatagramSize, see there.
const ReadBufferSize = MaxDatagramSize + 1

// Kind is the class of an inbound datagram.
type Kind uint8

// Datagram classes. Demultiplexing follows RFC 7983 §7 (first byte: 0–3
// STUN, 20–63 DTLS, 128–191 RTP/RTCP) and RFC 5761 §4 (RTP vs RTCP on one
// port by the second byte).
const (
	KindInvalid Kind = iota // garbage, truncated, oversized or wrong version: drop and count
	KindRTP                 // RTP version 2 with a header that fits the datagram
	KindRTCP                // RTCP compound start (version 2, known type, first length fits)
	KindSTUN                // STUN message (RFC 5389 magic cookie)
	KindDTLS                // DTLS record
)

// String names the kind for logs and metric labels.
func (k Kind) String() string {
	switch k {
	case KindRTP:
		return "rtp"
	case KindRTCP:
		return "rtcp"
	case KindSTUN:
		return "stun"
	case KindDTLS:
		return "dtls"
	default:
		return "invalid"
	}
}

const (
	stunHeaderSize       = 20
	stunMagicCookie      = 0x2112A442
	dtlsRecordHeaderSize = 13 // RFC 6347 §4.1
	rtcpHeaderSize       = 8  // common header + sender SSRC
	rtpVersion           = 2
)

// Classify sorts a datagram received on the RTP (even) socket. With rtcpMux,
// a version-2 datagram whose second byte is 200–204 (SR, RR, SDES, BYE, APP:
// RFC 5761 §4) is RTCP. Without mux such a datagram is Invalid: the values
// correspond to RTP payload types 72–76 with the marker bit, which RFC 5761
// §4 rules out for RTP, and RTCP is only taken on the odd socket then.
// Everything else of version 2 must be a complete RTP header (fixed part,
// CSRC list, extension and padding within the datagram) to count as RTP.
//
// Classify never allocates and accepts any input, including nil.
func Classify(b []byte, rtcpMux bool) Kind {
	if len(b) == 0 || len(b) > MaxDatagramSize {
		return KindInvalid
	}
	switch b0 := b[0]; {
	case b0 <= 3:
		return classifySTUN(b)
	case b0 >= 20 && b0 <= 63:
		return classifyDTLS(b)
	case b0>>6 == rtpVersion:
		if len(b) >= 2 && b[1] >= 200 && b[1] <= 204 {
			if rtcpMux && rtcpStartValid(b) {
				return KindRTCP
			}
			return KindInvalid
		}
		if _, _, err := rtpBounds(b); err == nil {
			return KindRTP
		}
	}
	return KindInvalid
}

// ClassifyRTCPSocket sorts a datagram received on the RTCP (odd) socket.
// Any valid RTCP compound start is RTCP: version 2, a packet type in the
// RTCP range 192–223 (RFC 5761 §4; the compound may begin with feedback
// under RFC 5506), and a first packet whose length fits the datagram. Only
// the first header is checked because an SRTCP datagram is encrypted after
// it; ParseRTCP validates the whole compound once it is in the clear.
func ClassifyRTCPSocket(b []byte) Kind {
	if len(b) == 0 || len(b) > MaxDatagramSize {
		return KindInvalid
	}
	switch b0 := b[0]; {
	case b0 <= 3:
		return classifySTUN(b)
	case b0 >= 20 && b0 <= 63:
		return classifyDTLS(b)
	case b0>>6 == rtpVersion:
		if len(b) >= 2 && b[1] >= 192 && b[1] <= 223 && rtcpStartValid(b) {
			return KindRTCP
		}
	}
	return KindInvalid
}

// classifySTUN checks the RFC 5389 §6 header: top two bits zero (implied by
// the caller's first-byte range), magic cookie at bytes 4..8, and a message
// length that is a multiple of 4 and fits the datagram.
func classifySTUN(b []byte) Kind {
	if len(b) < stunHeaderSize || binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie {
		return KindInvalid
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n%4 != 0 || stunHeaderSize+n > len(b) {
		return KindInvalid
	}
	return KindSTUN
}

// classifyDTLS accepts a first byte of 20–63 (RFC 7983 §7) with room for a
// DTLS record header.
func classifyDTLS(b []byte) Kind {
	if len(b) < dtlsRecordHeaderSize {
		return KindInvalid
	}
	return KindDTLS
}

// rtcpStartValid checks the first RTCP header of a compound: version 2,
// room for header and sender SSRC, and a length field (RFC 3550 §6.4.1:
// 32-bit words minus one) that stays within the datagram.
func rtcpStartValid(b []byte) bool {
	if len(b) < rtcpHeaderSize || b[0]>>6 != rtpVersion {
		return false
	}
	n := (int(binary.BigEndian.Uint16(b[2:4])) + 1) * 4
	return n >= rtcpHeaderSize && n <= len(b)
}
