package recording

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// ConvertOptions say what ConvertPCAP writes.
type ConvertOptions struct {
	// Container is "wav" or "ogg".
	Container string
	// Separate gives each party its own channel (at most 8, later ones share the last);
	// otherwise every party is mixed into one.
	Separate bool
	// Rate is the output sample rate (8000, 16000 or 48000).
	Rate int
	// MaxGap bounds the silence between two packets (DefaultMaxGap if zero): a damaged or
	// foreign file whose timestamps leap years ahead is refused, not turned into years of
	// silence.
	MaxGap time.Duration
}

// DefaultMaxGap is the longest silence ConvertPCAP writes between two packets.
const DefaultMaxGap = time.Hour

// ConvertStats describe a conversion.
type ConvertStats struct {
	Parties  int // endpoints that sent audio
	Packets  int // audio packets decoded
	Skipped  int // packets that were not party audio (RTCP, telephone-events, undecodable)
	Channels int
}

// bridgeL16Rate is the rate of the L16 frames bridge partners send (PT 127, §17).
const bridgeL16Rate = 48000

// party is one endpoint's audio in a PCAP being converted.
type party struct {
	channel  int
	place    placer
	decoders map[uint8]*partyDecoder
}

type partyDecoder struct {
	dec  *codec.Decoder // nil for L16 and telephone-events
	dtmf bool
	rs   *codec.Resampler // nil when the codec's rate is the output rate
	rate int
}

// ConvertPCAP decodes a PCAP recording rtpbridge wrote (PROTOCOL.md §17) into a decoded
// recording (§33) in out: each endpoint's RTP (to 10.255.0.1) is decoded and placed on the
// timeline by its capture time, exactly as a live decoded recording places it, so a call
// recorded both ways yields the same audio. in is read twice (parties first, then audio).
func ConvertPCAP(in io.ReadSeeker, out *os.File, opts ConvertOptions) (ConvertStats, error) {
	var st ConvertStats
	order, first, err := scanParties(in)
	if err != nil {
		return st, err
	}
	st.Parties = len(order)
	st.Channels = 1
	if opts.Separate {
		st.Channels = min(max(len(order), 1), maxConvertChannels)
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return st, fmt.Errorf("pcap2wav: rewinding input: %w", err)
	}
	fw, err := codec.NewFileWriter(out, opts.Container, opts.Rate, st.Channels)
	if err != nil {
		return st, err
	}
	tl := newTimeline(fw, first)
	tl.offline = true
	parties := make(map[Addr]*party, len(order))
	for i, a := range order {
		ch := 0
		if opts.Separate {
			ch = min(i, st.Channels-1)
		}
		parties[a] = &party{channel: ch, place: placer{rate: opts.Rate, t0: first}, decoders: map[uint8]*partyDecoder{}}
	}
	defer func() {
		for _, p := range parties {
			for _, d := range p.decoders {
				d.close()
			}
		}
	}()
	r, err := pcapgo.NewReader(in)
	if err != nil {
		return st, fmt.Errorf("pcap2wav: %w", err)
	}
	maxGap := opts.MaxGap
	if maxGap <= 0 {
		maxGap = DefaultMaxGap
	}
	last := first
	var pcm, out16 []int16
	e := &entry{}
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break // a recording cut short ends with a partial record
		}
		if err != nil {
			return st, fmt.Errorf("pcap2wav: reading packet: %w", err)
		}
		if ci.Timestamp.Sub(last) > maxGap {
			return st, fmt.Errorf("pcap2wav: capture times leap %v ahead at packet %d (more than %v): not a recording rtpbridge wrote?",
				ci.Timestamp.Sub(last).Round(time.Second), st.Packets+st.Skipped+1, maxGap)
		}
		last = later(last, ci.Timestamp)
		src, payload, ok := partyPacket(data)
		p := parties[src]
		if !ok || p == nil {
			st.Skipped++
			continue
		}
		var h rtpnet.RTPHeader
		body, err := rtpnet.ParseRTP(payload, &h)
		if err != nil || len(body) == 0 {
			st.Skipped++
			continue
		}
		d, err := p.decoder(h.PayloadType, body, opts.Rate)
		if err != nil {
			return st, err
		}
		if d.dtmf {
			st.Skipped++
			continue
		}
		if pcm, err = d.decode(pcm[:0], body); err != nil {
			st.Skipped++
			continue
		}
		if out16, err = d.resample(out16[:0], pcm); err != nil {
			return st, err
		}
		pos, piece, ok := p.place.place(out16, ci.Timestamp)
		if !ok || len(piece) == 0 {
			continue
		}
		e.channel, e.pos, e.pcm = p.channel, pos, piece
		if err := tl.write(e); err != nil {
			return st, err
		}
		st.Packets++
	}
	return st, tl.close()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// maxConvertChannels matches the live recordings' limit (§33).
const maxConvertChannels = 8

// scanParties lists the endpoints that sent RTP, in order of their first packet, and the
// timeline's start: 20 ms before the first one (its audio began then).
func scanParties(in io.Reader) ([]Addr, time.Time, error) {
	r, err := pcapgo.NewReader(in)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("pcap2wav: %w", err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		return nil, time.Time{}, fmt.Errorf("pcap2wav: link type %v, want Ethernet (an rtpbridge recording)", r.LinkType())
	}
	seen := map[Addr]bool{}
	var order []Addr
	var first time.Time
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		src, payload, ok := partyPacket(data)
		if !ok || len(payload) < 12 || isRTCP(payload) {
			continue
		}
		if first.IsZero() {
			first = ci.Timestamp.Add(-codec.FrameDuration * time.Millisecond)
		}
		if !seen[src] {
			seen[src] = true
			order = append(order, src)
		}
	}
	if first.IsZero() {
		return nil, time.Time{}, errors.New("pcap2wav: no RTP from any endpoint in this file")
	}
	return order, first, nil
}

// partyPacket picks an endpoint's packet to rtpbridge out of a recorded frame: Ethernet, IPv4
// without options (as rtpbridge writes them), UDP to 10.255.0.1.
func partyPacket(frame []byte) (Addr, []byte, bool) {
	if len(frame) < headersLen || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return Addr{}, nil, false
	}
	ip := frame[ethLen:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ip[9] != 17 || ihl < ipv4Len || len(ip) < ihl+udpLen {
		return Addr{}, nil, false
	}
	var src, dst Addr
	copy(src[:], ip[12:16])
	copy(dst[:], ip[16:20])
	if dst != BridgeAddr {
		return Addr{}, nil, false
	}
	udpLenField := int(binary.BigEndian.Uint16(ip[ihl+4 : ihl+6]))
	payload := ip[ihl+udpLen:]
	if udpLenField >= udpLen && udpLenField-udpLen <= len(payload) {
		payload = payload[:udpLenField-udpLen]
	}
	if isRTCP(payload) {
		return Addr{}, nil, false
	}
	return src, payload, true
}

// isRTCP: RTCP packet types 200-204 where RTP has marker+payload type (RFC 5761 §4).
func isRTCP(b []byte) bool { return len(b) >= 2 && b[1] >= 200 && b[1] <= 204 }

// decoder returns (making it on first use) the party's decoder for payload type pt. Static
// types are G.711/G.722, 127 is a bridge partner's L16; a dynamic type is telephone-event when
// its first payload is one 4-byte event, Opus otherwise.
func (p *party) decoder(pt uint8, first []byte, rate int) (*partyDecoder, error) {
	if d, ok := p.decoders[pt]; ok {
		return d, nil
	}
	d := &partyDecoder{}
	var c codec.Codec
	switch {
	case pt == 0:
		c = codec.PCMU
	case pt == 8:
		c = codec.PCMA
	case pt == 9:
		c = codec.G722
	case pt == 127:
		d.rate = bridgeL16Rate
	case pt >= 96 && len(first) == 4:
		d.dtmf = true
	case pt >= 96:
		c = codec.Opus
	default:
		d.dtmf = true // nothing we can decode: skipped like telephone-events
	}
	if c.Valid() {
		d.rate = c.SampleRate()
		if c == codec.Opus && codec.OpusInputRate(rate) {
			d.rate = rate
		}
		dec, err := codec.NewDecoderRate(c, d.rate)
		if err != nil {
			return nil, fmt.Errorf("pcap2wav: %w", err)
		}
		d.dec = dec
	}
	if !d.dtmf && d.rate != rate {
		rs, err := codec.NewStreamResampler(d.rate, rate)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("pcap2wav: %w", err)
		}
		d.rs = rs
	}
	p.decoders[pt] = d
	return d, nil
}

func (d *partyDecoder) decode(dst []int16, payload []byte) ([]int16, error) {
	if d.dec != nil {
		return d.dec.Decode(dst, payload)
	}
	for i := 0; i+1 < len(payload); i += 2 { // rtpbridge's internal L16 is little-endian (§12)
		dst = append(dst, int16(binary.LittleEndian.Uint16(payload[i:])))
	}
	return dst, nil
}

func (d *partyDecoder) resample(dst, pcm []int16) ([]int16, error) {
	if d.rs == nil {
		return append(dst, pcm...), nil
	}
	return d.rs.Resample(dst, pcm)
}

func (d *partyDecoder) close() {
	if d.dec != nil {
		d.dec.Close()
	}
	if d.rs != nil {
		d.rs.Close()
	}
}
