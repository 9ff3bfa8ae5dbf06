package audiotest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// OpusPacketSamples returns the number of 48 kHz samples an Opus packet decodes to, from its
// TOC byte and frame count (RFC 6716 §3.1).
func OpusPacketSamples(pkt []byte) (int, error) {
	if len(pkt) == 0 {
		return 0, errors.New("audiotest: empty Opus packet")
	}
	toc := pkt[0]
	config := int(toc >> 3)
	var tenthsMs int // frame duration in 0.1 ms
	switch {
	case config < 12: // SILK-only: 10, 20, 40, 60 ms
		tenthsMs = []int{100, 200, 400, 600}[config%4]
	case config < 16: // Hybrid: 10, 20 ms
		tenthsMs = []int{100, 200}[config%2]
	default: // CELT-only: 2.5, 5, 10, 20 ms
		tenthsMs = []int{25, 50, 100, 200}[config%4]
	}
	frames := 1
	switch toc & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(pkt) < 2 {
			return 0, errors.New("audiotest: Opus code-3 packet without frame count")
		}
		frames = int(pkt[1] & 0x3f)
	}
	return frames * tenthsMs * 48 / 10, nil
}

// WriteOggOpus returns an Ogg Opus file (RFC 7845) holding packets as one mono or stereo
// stream: an OpusHead page, an OpusTags page, then one page per packet with granule positions
// counted from the packets' TOC bytes. It is minimal on purpose: enough for the ffmpeg CLI to
// demux and decode what our encoder produced.
func WriteOggOpus(packets [][]byte, channels int, preSkip uint16) ([]byte, error) {
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("audiotest: %d channels, want 1 or 2", channels)
	}
	const serial = 0x52545042 // "RTPB"
	var out bytes.Buffer
	head := make([]byte, 19)
	copy(head, "OpusHead")
	head[8] = 1 // version
	head[9] = byte(channels)
	binary.LittleEndian.PutUint16(head[10:], preSkip)
	binary.LittleEndian.PutUint32(head[12:], 48000) // original input rate, informational
	// output gain 0, mapping family 0
	vendor := "rtpbridge audiotest"
	tags := make([]byte, 8+4+len(vendor)+4)
	copy(tags, "OpusTags")
	binary.LittleEndian.PutUint32(tags[8:], uint32(len(vendor)))
	copy(tags[12:], vendor)
	seq := uint32(0)
	writeOggPage(&out, head, 0x02, 0, serial, seq)
	seq++
	writeOggPage(&out, tags, 0, 0, serial, seq)
	seq++
	granule := int64(preSkip)
	for i, p := range packets {
		n, err := OpusPacketSamples(p)
		if err != nil {
			return nil, fmt.Errorf("audiotest: packet %d: %w", i, err)
		}
		granule += int64(n)
		flags := byte(0)
		if i == len(packets)-1 {
			flags = 0x04 // end of stream
		}
		writeOggPage(&out, p, flags, granule, serial, seq)
		seq++
	}
	return out.Bytes(), nil
}

// writeOggPage writes one page holding exactly one complete packet.
func writeOggPage(out *bytes.Buffer, packet []byte, flags byte, granule int64, serial, seq uint32) {
	var lacing []byte
	n := len(packet)
	for n >= 255 {
		lacing = append(lacing, 255)
		n -= 255
	}
	lacing = append(lacing, byte(n))
	page := make([]byte, 27, 27+len(lacing)+len(packet))
	copy(page, "OggS")
	page[4] = 0 // version
	page[5] = flags
	binary.LittleEndian.PutUint64(page[6:], uint64(granule))
	binary.LittleEndian.PutUint32(page[14:], serial)
	binary.LittleEndian.PutUint32(page[18:], seq)
	page[26] = byte(len(lacing))
	page = append(page, lacing...)
	page = append(page, packet...)
	binary.LittleEndian.PutUint32(page[22:], oggCRC(page))
	out.Write(page)
}

// ReadOggPackets returns every packet of the first logical stream of an Ogg file, headers
// included, joining packets that span pages. It checks capture patterns and page CRCs.
func ReadOggPackets(data []byte) ([][]byte, error) {
	var packets [][]byte
	var cur []byte
	var serial uint32
	first := true
	for off := 0; off < len(data); {
		if len(data)-off < 27 || string(data[off:off+4]) != "OggS" {
			return nil, fmt.Errorf("audiotest: no Ogg page at offset %d", off)
		}
		nseg := int(data[off+26])
		hdr := 27 + nseg
		if len(data)-off < hdr {
			return nil, errors.New("audiotest: truncated Ogg page header")
		}
		lacing := data[off+27 : off+hdr]
		body := 0
		for _, l := range lacing {
			body += int(l)
		}
		if len(data)-off < hdr+body {
			return nil, errors.New("audiotest: truncated Ogg page")
		}
		page := append([]byte(nil), data[off:off+hdr+body]...)
		want := binary.LittleEndian.Uint32(page[22:])
		binary.LittleEndian.PutUint32(page[22:], 0)
		if got := oggCRC(page); got != want {
			return nil, fmt.Errorf("audiotest: Ogg page CRC %08x, want %08x", got, want)
		}
		s := binary.LittleEndian.Uint32(data[off+14:])
		if first {
			serial, first = s, false
		}
		if s == serial {
			p := data[off+hdr:]
			for _, l := range lacing {
				cur = append(cur, p[:l]...)
				p = p[l:]
				if l < 255 {
					packets = append(packets, cur)
					cur = nil
				}
			}
		}
		off += hdr + body
	}
	return packets, nil
}

// oggCRC is the Ogg page checksum: CRC-32 with polynomial 0x04c11db7, no reflection, zero
// initial value and no final XOR, over the page with its CRC field zeroed.
func oggCRC(b []byte) uint32 {
	var crc uint32
	for _, v := range b {
		crc ^= uint32(v) << 24
		for i := 0; i < 8; i++ {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
