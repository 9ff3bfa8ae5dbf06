package rtpnet

import "encoding/binary"

// RTP parse errors. They are constants, so returning one never allocates.
const (
	ErrRTPTooShort     = constError("rtp: shorter than the 12-byte fixed header")
	ErrRTPVersion      = constError("rtp: version is not 2")
	ErrRTPHeaderLength = constError("rtp: CSRC list or header extension exceeds the packet")
	ErrRTPPadding      = constError("rtp: invalid padding length")
	ErrShortBuffer     = constError("rtp: destination buffer too small")
)

// RTPHeaderSize is the size of the fixed RTP header (RFC 3550 §5.1), the
// only header rtpbridge writes: CSRCs and extensions are never forwarded.
const RTPHeaderSize = 12

// RTPHeader holds the fields routing needs from an RTP header (RFC 3550
// §5.1). It is filled by ParseRTP into caller-owned memory, so the per-packet
// path allocates nothing.
type RTPHeader struct {
	Marker         bool
	PayloadType    uint8
	SequenceNumber uint16
	Timestamp      uint32
	SSRC           uint32

	// HeaderLen is the offset of the payload: 12 + 4·CC, plus the extension
	// (4 + 4·length) when X is set.
	HeaderLen int
	// PaddingLen is the number of padding bytes removed from the end (0 when
	// P is clear), the count octet included.
	PaddingLen int
}

// ParseRTP validates the RTP packet b and fills h. The returned payload is a
// sub-slice of b with the CSRC list, header extension and padding stripped
// (PROTOCOL §14: they are not routed). It never allocates, never panics and
// returns one of the ErrRTP* constants on malformed input, in which case h is
// left in an unspecified state. An empty payload is valid.
func ParseRTP(b []byte, h *RTPHeader) (payload []byte, err error) {
	hdrLen, padLen, err := rtpBounds(b)
	if err != nil {
		return nil, err
	}
	h.Marker = b[1]&0x80 != 0
	h.PayloadType = b[1] & 0x7f
	h.SequenceNumber = binary.BigEndian.Uint16(b[2:4])
	h.Timestamp = binary.BigEndian.Uint32(b[4:8])
	h.SSRC = binary.BigEndian.Uint32(b[8:12])
	h.HeaderLen = hdrLen
	h.PaddingLen = padLen
	return b[hdrLen : len(b)-padLen], nil
}

// rtpBounds computes the header and padding lengths of an RTP packet and
// checks that they fit: fixed header, CC CSRCs, the extension header and
// its declared length (RFC 3550 §5.3.1), and when P is set a padding count
// of at least 1 (it counts itself, §5.1) that leaves the header intact.
func rtpBounds(b []byte) (hdrLen, padLen int, err error) {
	if len(b) < RTPHeaderSize {
		return 0, 0, ErrRTPTooShort
	}
	if b[0]>>6 != rtpVersion {
		return 0, 0, ErrRTPVersion
	}
	n := RTPHeaderSize + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // X: 16-bit profile, 16-bit length in words, data
		if n+4 > len(b) {
			return 0, 0, ErrRTPHeaderLength
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(b[n+2:n+4]))
	}
	if n > len(b) {
		return 0, 0, ErrRTPHeaderLength
	}
	if b[0]&0x20 != 0 {
		padLen = int(b[len(b)-1])
		if padLen == 0 || n+padLen > len(b) {
			return 0, 0, ErrRTPPadding
		}
	}
	return n, padLen, nil
}

// PutRTPHeader writes the 12-byte fixed header for h (version 2, no
// padding, extension or CSRC; HeaderLen and PaddingLen are ignored) into
// dst and returns 12. It fails with ErrShortBuffer when dst is too small.
func PutRTPHeader(dst []byte, h *RTPHeader) (int, error) {
	if len(dst) < RTPHeaderSize {
		return 0, ErrShortBuffer
	}
	dst[0] = rtpVersion << 6
	dst[1] = h.PayloadType & 0x7f
	if h.Marker {
		dst[1] |= 0x80
	}
	binary.BigEndian.PutUint16(dst[2:4], h.SequenceNumber)
	binary.BigEndian.PutUint32(dst[4:8], h.Timestamp)
	binary.BigEndian.PutUint32(dst[8:12], h.SSRC)
	return RTPHeaderSize, nil
}
