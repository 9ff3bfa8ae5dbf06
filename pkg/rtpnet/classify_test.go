package rtpnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// rtpPacket builds an RTP packet by hand (independently of ParseRTP).
type rtpPacket struct {
	version  byte
	marker   bool
	pt       byte
	seq      uint16
	ts, ssrc uint32
	csrc     []uint32
	ext      []byte // extension data, length must be a multiple of 4
	extProf  uint16
	hasExt   bool
	payload  []byte
	pad      int // total padding bytes incl. the count octet; 0 = none
}

func (p rtpPacket) bytes() []byte {
	v := p.version
	if v == 0 {
		v = 2
	}
	b := []byte{v<<6 | byte(len(p.csrc)), p.pt}
	if p.marker {
		b[1] |= 0x80
	}
	if p.pad > 0 {
		b[0] |= 0x20
	}
	if p.hasExt {
		b[0] |= 0x10
	}
	b = binary.BigEndian.AppendUint16(b, p.seq)
	b = binary.BigEndian.AppendUint32(b, p.ts)
	b = binary.BigEndian.AppendUint32(b, p.ssrc)
	for _, c := range p.csrc {
		b = binary.BigEndian.AppendUint32(b, c)
	}
	if p.hasExt {
		b = binary.BigEndian.AppendUint16(b, p.extProf)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.ext)/4))
		b = append(b, p.ext...)
	}
	b = append(b, p.payload...)
	if p.pad > 0 {
		b = append(b, make([]byte, p.pad-1)...)
		b = append(b, byte(p.pad))
	}
	return b
}

var payload160 = bytes.Repeat([]byte{0xd5}, 160)

func samplePackets() map[string][]byte {
	sr := &rtcp.SenderReport{SSRC: 1, NTPTime: 2, RTPTime: 3, PacketCount: 4, OctetCount: 5,
		Reports: []rtcp.ReceptionReport{{SSRC: 9, FractionLost: 1, TotalLost: 2, LastSequenceNumber: 3, Jitter: 4}}}
	rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 9}}}
	bye := &rtcp.Goodbye{Sources: []uint32{1}, Reason: "bye"}
	mustMarshal := func(ps ...rtcp.Packet) []byte {
		b, err := rtcp.Marshal(ps)
		if err != nil {
			panic(err)
		}
		return b
	}
	stun := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	dtls := []byte{0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x01, 0x00, 0x00, 0x3c}
	return map[string][]byte{
		"rtp":          rtpPacket{pt: 0, seq: 1, ts: 160, ssrc: 0xabcdef, payload: payload160}.bytes(),
		"rtp-csrc":     rtpPacket{pt: 8, csrc: []uint32{1, 2}, payload: payload160}.bytes(),
		"rtp-ext":      rtpPacket{pt: 111, hasExt: true, extProf: 0xbede, ext: []byte{0x10, 0xff, 0, 0}, payload: payload160[:40]}.bytes(),
		"rtp-pad":      rtpPacket{pt: 9, pad: 4, payload: payload160[:20]}.bytes(),
		"rtp-all":      rtpPacket{pt: 0, marker: true, csrc: []uint32{7}, hasExt: true, extProf: 0x1000, ext: make([]byte, 8), pad: 3, payload: payload160}.bytes(),
		"rtp-empty":    rtpPacket{pt: 13}.bytes(),
		"rtcp-sr-rr":   mustMarshal(sr, rr),
		"rtcp-rr-bye":  mustMarshal(rr, bye),
		"rtcp-sr-bye":  mustMarshal(sr, bye),
		"stun-binding": stun,
		"dtls-hello":   dtls,
		"junk":         []byte("hello, this is not RTP at all"),
		"truncated":    rtpPacket{csrc: []uint32{1, 2, 3}}.bytes()[:20],
		"version1":     rtpPacket{version: 1, payload: payload160}.bytes(),
	}
}

func TestClassify(t *testing.T) {
	p := samplePackets()
	rtpMarker72 := rtpPacket{pt: 72, marker: true, payload: payload160}.bytes() // byte 1 = 200
	oversized := rtpPacket{payload: make([]byte, MaxDatagramSize-RTPHeaderSize+1)}.bytes()
	maxSized := rtpPacket{payload: make([]byte, MaxDatagramSize-RTPHeaderSize)}.bytes()
	cases := []struct {
		name       string
		b          []byte
		mux, nomux Kind
		rtcpSocket Kind
	}{
		{"rtp", p["rtp"], KindRTP, KindRTP, KindInvalid},
		{"rtp-csrc", p["rtp-csrc"], KindRTP, KindRTP, KindInvalid},
		{"rtp-ext", p["rtp-ext"], KindRTP, KindRTP, KindInvalid},
		{"rtp-pad", p["rtp-pad"], KindRTP, KindRTP, KindInvalid},
		{"rtp-all", p["rtp-all"], KindRTP, KindRTP, KindInvalid},
		{"rtp-empty", p["rtp-empty"], KindRTP, KindRTP, KindInvalid},
		{"rtp-max-size", maxSized, KindRTP, KindRTP, KindInvalid},
		{"rtp-oversized", oversized, KindInvalid, KindInvalid, KindInvalid},
		{"rtcp-sr-rr", p["rtcp-sr-rr"], KindRTCP, KindInvalid, KindRTCP},
		{"rtcp-rr-bye", p["rtcp-rr-bye"], KindRTCP, KindInvalid, KindRTCP},
		{"rtcp-bye-only", p["rtcp-rr-bye"][32:], KindRTCP, KindInvalid, KindRTCP},
		{"rtcp-length-overrun", append([]byte{0x80, 201, 0, 7}, make([]byte, 8)...), KindInvalid, KindInvalid, KindInvalid},
		{"rtcp-length-zero", []byte{0x80, 203, 0, 0, 0, 0, 0, 1}, KindInvalid, KindInvalid, KindInvalid},
		{"rtcp-v1", []byte{0x40, 201, 0, 1, 0, 0, 0, 1}, KindInvalid, KindInvalid, KindInvalid},
		{"rtcp-fb-first", []byte{0x80, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2}, KindRTP, KindRTP, KindRTCP},
		{"marker-pt72-is-rtcp-range", rtpMarker72, KindInvalid, KindInvalid, KindInvalid},
		{"stun", p["stun-binding"], KindSTUN, KindSTUN, KindSTUN},
		{"stun-no-cookie", append([]byte{0, 1, 0, 0, 1, 2, 3, 4}, make([]byte, 12)...), KindInvalid, KindInvalid, KindInvalid},
		{"stun-short", p["stun-binding"][:19], KindInvalid, KindInvalid, KindInvalid},
		{"stun-length-overrun", append([]byte{0, 1, 0, 8}, p["stun-binding"][4:]...), KindInvalid, KindInvalid, KindInvalid},
		{"dtls", p["dtls-hello"], KindDTLS, KindDTLS, KindDTLS},
		{"dtls-short", p["dtls-hello"][:12], KindInvalid, KindInvalid, KindInvalid},
		{"junk", p["junk"], KindInvalid, KindInvalid, KindInvalid},
		{"truncated", p["truncated"], KindInvalid, KindInvalid, KindInvalid},
		{"version1", p["version1"], KindInvalid, KindInvalid, KindInvalid},
		{"version0", append([]byte{0x00, 0}, make([]byte, 30)...), KindInvalid, KindInvalid, KindInvalid},
		{"version3", rtpPacket{version: 3, payload: payload160}.bytes(), KindInvalid, KindInvalid, KindInvalid},
		{"nil", nil, KindInvalid, KindInvalid, KindInvalid},
		{"one-byte", []byte{0x80}, KindInvalid, KindInvalid, KindInvalid},
		{"11-bytes", make([]byte, 11), KindInvalid, KindInvalid, KindInvalid},
	}
	for _, c := range cases {
		if got := Classify(c.b, true); got != c.mux {
			t.Errorf("%s: Classify(mux) = %v, want %v", c.name, got, c.mux)
		}
		if got := Classify(c.b, false); got != c.nomux {
			t.Errorf("%s: Classify(no mux) = %v, want %v", c.name, got, c.nomux)
		}
		if got := ClassifyRTCPSocket(c.b); got != c.rtcpSocket {
			t.Errorf("%s: ClassifyRTCPSocket = %v, want %v", c.name, got, c.rtcpSocket)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, s := range map[Kind]string{KindInvalid: "invalid", KindRTP: "rtp", KindRTCP: "rtcp", KindSTUN: "stun", KindDTLS: "dtls", Kind(99): "invalid"} {
		if k.String() != s {
			t.Errorf("%d.String() = %q, want %q", k, k.String(), s)
		}
	}
}

func TestParseRTP(t *testing.T) {
	cases := []struct {
		name    string
		p       rtpPacket
		hdrLen  int
		padLen  int
		payload []byte
	}{
		{"plain", rtpPacket{pt: 0, marker: true, seq: 65535, ts: 0xfffffff0, ssrc: 0xdeadbeef, payload: payload160}, 12, 0, payload160},
		{"csrc", rtpPacket{pt: 8, seq: 7, csrc: []uint32{1, 2, 3}, payload: []byte{1, 2, 3}}, 24, 0, []byte{1, 2, 3}},
		{"ext", rtpPacket{pt: 96, hasExt: true, extProf: 0xbede, ext: []byte{0x22, 1, 2, 3, 0, 0, 0, 0}, payload: []byte{9}}, 24, 0, []byte{9}},
		{"ext-empty", rtpPacket{pt: 96, hasExt: true, extProf: 0x1234, payload: []byte{9, 8}}, 16, 0, []byte{9, 8}},
		{"pad", rtpPacket{pt: 0, payload: []byte{5, 6, 7}, pad: 5}, 12, 5, []byte{5, 6, 7}},
		{"pad-one", rtpPacket{pt: 0, payload: []byte{5}, pad: 1}, 12, 1, []byte{5}},
		{"pad-all-payload", rtpPacket{pt: 0, pad: 4}, 12, 4, []byte{}},
		{"everything", rtpPacket{pt: 127, csrc: []uint32{1}, hasExt: true, ext: make([]byte, 4), payload: payload160, pad: 2}, 24, 2, payload160},
	}
	for _, c := range cases {
		b := c.p.bytes()
		var h RTPHeader
		pl, err := ParseRTP(b, &h)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		want := RTPHeader{Marker: c.p.marker, PayloadType: c.p.pt, SequenceNumber: c.p.seq, Timestamp: c.p.ts, SSRC: c.p.ssrc, HeaderLen: c.hdrLen, PaddingLen: c.padLen}
		if h != want {
			t.Errorf("%s: header %+v, want %+v", c.name, h, want)
		}
		if !bytes.Equal(pl, c.payload) {
			t.Errorf("%s: payload %x, want %x", c.name, pl, c.payload)
		}
		// Independent cross-check with pion/rtp.
		var pp rtp.Packet
		if err := pp.Unmarshal(b); err != nil {
			t.Errorf("%s: pion rejects the test packet: %v", c.name, err)
		} else if !bytes.Equal(pp.Payload, pl) || pp.PayloadType != h.PayloadType || pp.SequenceNumber != h.SequenceNumber || pp.SSRC != h.SSRC {
			t.Errorf("%s: pion disagrees: %+v", c.name, pp.Header)
		}
	}
}

func TestParseRTPErrors(t *testing.T) {
	good := rtpPacket{csrc: []uint32{1}, hasExt: true, ext: make([]byte, 8), payload: []byte{1, 2}}.bytes()
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrRTPTooShort},
		{"11", good[:11], ErrRTPTooShort},
		{"v1", rtpPacket{version: 1}.bytes(), ErrRTPVersion},
		{"v0-junk", []byte("abcdefghijklmnop"), ErrRTPVersion},
		{"csrc-cut", good[:15], ErrRTPHeaderLength},
		{"ext-header-cut", good[:18], ErrRTPHeaderLength},
		{"ext-data-cut", good[:25], ErrRTPHeaderLength},
		{"cc15-short", append([]byte{0x8f, 0}, make([]byte, 60)...), ErrRTPHeaderLength},
		{"pad-zero", append(rtpPacket{pad: 1, payload: []byte{1}}.bytes()[:13], 0), ErrRTPPadding},
		{"pad-too-long", func() []byte { b := rtpPacket{pad: 1, payload: []byte{1, 2}}.bytes(); b[len(b)-1] = 4; return b }(), ErrRTPPadding},
		{"pad-over-header", func() []byte { b := rtpPacket{pad: 4}.bytes(); b[len(b)-1] = 5; return b }(), ErrRTPPadding},
		{"pad-no-room", func() []byte { b := rtpPacket{}.bytes(); b[0] |= 0x20; return b }(), ErrRTPPadding},
	}
	for _, c := range cases {
		var h RTPHeader
		pl, err := ParseRTP(c.b, &h)
		if !errors.Is(err, c.want) || pl != nil {
			t.Errorf("%s: got %v (payload %x), want %v", c.name, err, pl, c.want)
		}
	}
}

func TestPutRTPHeaderRoundTrip(t *testing.T) {
	h := RTPHeader{Marker: true, PayloadType: 101, SequenceNumber: 4242, Timestamp: 0x01020304, SSRC: 0xcafebabe}
	buf := make([]byte, 64)
	n, err := PutRTPHeader(buf, &h)
	if err != nil || n != RTPHeaderSize {
		t.Fatalf("PutRTPHeader: %d, %v", n, err)
	}
	copy(buf[n:], "abc")
	var got RTPHeader
	pl, err := ParseRTP(buf[:n+3], &got)
	h.HeaderLen = 12
	if err != nil || got != h || string(pl) != "abc" {
		t.Fatalf("round trip: %+v %q %v", got, pl, err)
	}
	if _, err := PutRTPHeader(buf[:11], &h); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("short buffer: %v", err)
	}
}
