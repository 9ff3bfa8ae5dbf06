package rtpstats

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/pion/rtcp"
)

// Sizes of the reports built here (RFC 3550 §6.4.1, §6.4.2).
const (
	rtcpHeaderSize    = 4
	senderInfoSize    = 20
	reportBlockSize   = 24
	srSizeNoBlocks    = rtcpHeaderSize + 4 + senderInfoSize // 28
	rrSizeNoBlocks    = rtcpHeaderSize + 4                  // 8
	rtcpVersion       = 2
	rtcpTypeSR        = 200
	rtcpTypeRR        = 201
	rtcpTypeBYE       = 203
	rtcpMinPacketSize = rtcpHeaderSize
)

// MaxReportSize is the largest report BuildSR writes (an SR with one report
// block, 52 bytes). Buffers for BuildSR/BuildRR need at least this much, plus
// whatever SRTCP protection appends.
const MaxReportSize = srSizeNoBlocks + reportBlockSize

// ErrShortBuffer is matched (errors.Is) by the error BuildSR and BuildRR
// return when buf cannot hold the report; no state changes then.
const ErrShortBuffer = constError("rtpstats: buffer too small for RTCP report")

// constError is a comparable error usable as a constant.
type constError string

func (e constError) Error() string { return string(e) }

// BuildSR writes into buf the periodic report of PROTOCOL §14: one sender
// report from s's SSRC with a single report block on r's source (fraction and
// cumulative lost, extended highest sequence number, jitter in RTP units,
// LSR, DLSR), no SDES, and returns its length. The block is left out (RC=0)
// when r is nil or has not received a packet yet; the lead sends RTCP only
// once the remote SSRC is known, so in practice it is always there.
//
// Like the original, BuildSR is used even when no media has been sent yet
// (a recvonly leg): the SR then carries packet and octet counts of 0 and an
// RTP timestamp of 0, which receivers cannot use for synchronisation (there
// is nothing to synchronise) but which still carries the report block and
// LSR key needed for loss, jitter and RTT. RFC 3550 §6.4 would send an RR
// instead; BuildRR is available if that is ever wanted.
//
// BuildSR records the SR's LSR key in s for RTT and advances r's
// fraction-lost interval, so call it once per report actually sent. It
// allocates nothing.
func BuildSR(buf []byte, s *Sender, r *Receiver, now time.Time) (int, error) {
	withBlock := r != nil && r.haveSSRC
	size := srSizeNoBlocks
	if withBlock {
		size += reportBlockSize
	}
	if len(buf) < size {
		return 0, fmt.Errorf("%w: SR needs %d bytes, have %d", ErrShortBuffer, size, len(buf))
	}
	ntp := ToNTP(now)
	rtpTS, _ := s.RTPTimestampAt(now)

	putHeader(buf, rtcpTypeSR, withBlock, size)
	binary.BigEndian.PutUint32(buf[4:], s.ssrc)
	binary.BigEndian.PutUint64(buf[8:], ntp)
	binary.BigEndian.PutUint32(buf[16:], rtpTS)
	// Counts wrap modulo 2^32 on the wire (RFC 3550 §6.4.1).
	binary.BigEndian.PutUint32(buf[20:], uint32(s.packets))
	binary.BigEndian.PutUint32(buf[24:], uint32(s.octets))
	if withBlock {
		rb, _ := r.Report(now)
		putReportBlock(buf[srSizeNoBlocks:], &rb)
	}
	s.recordSR(ntp, now)
	return size, nil
}

// BuildRR writes a receiver report from ssrc with one report block on r's
// source (none when r is nil or has no source yet) into buf and returns its
// length (RFC 3550 §6.4.2). It advances r's fraction-lost interval and
// allocates nothing.
func BuildRR(buf []byte, ssrc uint32, r *Receiver, now time.Time) (int, error) {
	withBlock := r != nil && r.haveSSRC
	size := rrSizeNoBlocks
	if withBlock {
		size += reportBlockSize
	}
	if len(buf) < size {
		return 0, fmt.Errorf("%w: RR needs %d bytes, have %d", ErrShortBuffer, size, len(buf))
	}
	putHeader(buf, rtcpTypeRR, withBlock, size)
	binary.BigEndian.PutUint32(buf[4:], ssrc)
	if withBlock {
		rb, _ := r.Report(now)
		putReportBlock(buf[rrSizeNoBlocks:], &rb)
	}
	return size, nil
}

// putHeader writes the common RTCP header: V=2, P=0, RC, PT and the length
// in 32-bit words minus one (RFC 3550 §6.4.1).
func putHeader(buf []byte, pt byte, withBlock bool, size int) {
	buf[0] = rtcpVersion << 6
	if withBlock {
		buf[0] |= 1
	}
	buf[1] = pt
	binary.BigEndian.PutUint16(buf[2:], uint16(size/4-1))
}

// putReportBlock writes one 24-byte report block (RFC 3550 §6.4.1).
func putReportBlock(b []byte, rb *rtcp.ReceptionReport) {
	binary.BigEndian.PutUint32(b[0:], rb.SSRC)
	binary.BigEndian.PutUint32(b[4:], uint32(rb.FractionLost)<<24|rb.TotalLost&0xffffff)
	binary.BigEndian.PutUint32(b[8:], rb.LastSequenceNumber)
	binary.BigEndian.PutUint32(b[12:], rb.Jitter)
	binary.BigEndian.PutUint32(b[16:], rb.LastSenderReport)
	binary.BigEndian.PutUint32(b[20:], rb.Delay)
}

// SenderInfo is the sender part of a received SR.
type SenderInfo struct {
	SSRC        uint32
	NTPTime     uint64
	RTPTime     uint32
	PacketCount uint32
	OctetCount  uint32
}

// Bye is the content of the BYE packets of a compound, for the
// endpoint.rtcp_bye event (PROTOCOL §8: ssrc_list, reason string|null).
type Bye struct {
	SSRCs  []uint32
	Reason *string // nil when no BYE carried a (non-empty) reason
}

// Compound is what rtpbridge uses from an inbound RTCP compound packet
// (PROTOCOL §14): sender info of SRs, the report blocks of SRs and RRs, and
// BYE. Every other packet type is skipped.
type Compound struct {
	SenderReports []SenderInfo
	Reports       []rtcp.ReceptionReport // blocks of all SRs and RRs, any SSRC
	Bye           *Bye                   // nil when the compound has no BYE
}

// ParseRTCP parses a compound RTCP packet (already SRTCP-decrypted).
//
// In the spirit of the validity checks of RFC 3550 A.2 the whole compound is
// rejected (error, nothing returned) when its structure is broken: a packet
// whose version is not 2, a length field running past the end, trailing
// bytes, or an SR, RR or BYE that pion/rtcp cannot decode. Unlike A.2 the
// first packet need not be an SR or RR, since BYE-only and reduced-size
// RTCP (RFC 5506) are common and a BYE must still produce its event.
func ParseRTCP(b []byte) (Compound, error) {
	var c Compound
	if len(b) < rtcpMinPacketSize {
		return Compound{}, fmt.Errorf("rtcp: compound of %d bytes is too short", len(b))
	}
	for off := 0; off < len(b); {
		rest := b[off:]
		if len(rest) < rtcpMinPacketSize {
			return Compound{}, fmt.Errorf("rtcp: %d trailing bytes at offset %d", len(rest), off)
		}
		if rest[0]>>6 != rtcpVersion {
			return Compound{}, fmt.Errorf("rtcp: version %d at offset %d", rest[0]>>6, off)
		}
		n := (int(binary.BigEndian.Uint16(rest[2:4])) + 1) * 4
		if n > len(rest) {
			return Compound{}, fmt.Errorf("rtcp: packet at offset %d claims %d bytes, %d left", off, n, len(rest))
		}
		pkt := rest[:n]
		if err := c.add(pkt); err != nil {
			return Compound{}, fmt.Errorf("rtcp: packet type %d at offset %d: %w", pkt[1], off, err)
		}
		off += n
	}
	return c, nil
}

// add decodes one packet of the compound into c.
func (c *Compound) add(pkt []byte) error {
	switch pkt[1] {
	case rtcpTypeSR:
		var sr rtcp.SenderReport
		if err := sr.Unmarshal(pkt); err != nil {
			return err
		}
		c.SenderReports = append(c.SenderReports, SenderInfo{
			SSRC: sr.SSRC, NTPTime: sr.NTPTime, RTPTime: sr.RTPTime,
			PacketCount: sr.PacketCount, OctetCount: sr.OctetCount,
		})
		c.Reports = append(c.Reports, sr.Reports...)
	case rtcpTypeRR:
		var rr rtcp.ReceiverReport
		if err := rr.Unmarshal(pkt); err != nil {
			return err
		}
		c.Reports = append(c.Reports, rr.Reports...)
	case rtcpTypeBYE:
		var bye rtcp.Goodbye
		if err := bye.Unmarshal(pkt); err != nil {
			return err
		}
		if c.Bye == nil {
			c.Bye = &Bye{SSRCs: []uint32{}} // [] not null in the event
		}
		c.Bye.SSRCs = append(c.Bye.SSRCs, bye.Sources...)
		if c.Bye.Reason == nil && bye.Reason != "" {
			reason := bye.Reason
			c.Bye.Reason = &reason
		}
	}
	return nil
}
