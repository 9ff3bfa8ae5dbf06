package recording

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Addr is a synthetic IPv4 address of the PCAP address plan (PROTOCOL.md §17).
type Addr [4]byte

// BridgeAddr is rtpbridge itself in recordings: 10.255.0.1.
var BridgeAddr = Addr{10, 255, 0, 1}

// pcapPort is the UDP port of every address in recordings.
const pcapPort = 10000

// MaxEndpointIndex is the last endpoint index the address plan hands out.
const MaxEndpointIndex = 65534

// EndpointAddr is the address of endpoint index n: 10.{min(n/254+1, 254)}.0.{n%254+1}.
func EndpointAddr(n int) Addr {
	return Addr{10, byte(min(n/254+1, 254)), 0, byte(n%254 + 1)}
}

// Indices assigns the per-session endpoint indices of the address plan: in order of each
// endpoint's first recorded packet, indices freed by removal or transfer reused last freed first,
// none after MaxEndpointIndex. K identifies an endpoint. It is owned by the session loop.
type Indices[K comparable] struct {
	byKey map[K]int
	free  []int
	next  int
}

// Index returns k's index, assigning one on first use; false when the plan is exhausted.
func (x *Indices[K]) Index(k K) (int, bool) {
	if n, ok := x.byKey[k]; ok {
		return n, true
	}
	var n int
	switch {
	case len(x.free) > 0:
		n = x.free[len(x.free)-1]
		x.free = x.free[:len(x.free)-1]
	case x.next <= MaxEndpointIndex:
		n = x.next
		x.next++
	default:
		return 0, false
	}
	if x.byKey == nil {
		x.byKey = make(map[K]int)
	}
	x.byKey[k] = n
	return n, true
}

// Release frees k's index (the endpoint was removed or transferred away).
func (x *Indices[K]) Release(k K) {
	if n, ok := x.byKey[k]; ok {
		delete(x.byKey, k)
		x.free = append(x.free, n)
	}
}

// ReleaseUnless frees the index of every endpoint for which alive is false.
func (x *Indices[K]) ReleaseUnless(alive func(K) bool) {
	for k := range x.byKey {
		if !alive(k) {
			x.Release(k)
		}
	}
}

// Frame layout of every recorded packet: Ethernet II, IPv4 without options, UDP.
const (
	ethLen     = 14
	ipv4Len    = 20
	udpLen     = 8
	headersLen = ethLen + ipv4Len + udpLen
	snapLen    = 65535
	// maxPayload keeps IPv4's total length within 16 bits.
	maxPayload = 65535 - ipv4Len - udpLen
)

// pcapSink writes entries as a classic libpcap file (PROTOCOL.md §17) through pcapgo: host
// byte order (pcapgo writes little-endian; rtpbridge runs on little-endian hosts), µs
// timestamps, snaplen 65535, link type Ethernet.
type pcapSink struct {
	buf   *bufio.Writer
	w     *pcapgo.Writer
	frame []byte
}

func newPCAPSink(w io.Writer) (*pcapSink, error) {
	// 16 KiB: about 0.75 s of a two-party PCMU call between flushes, and what each active
	// recording holds besides its queue.
	s := &pcapSink{buf: bufio.NewWriterSize(w, 16<<10), frame: make([]byte, headersLen, headersLen+2048)}
	s.w = pcapgo.NewWriter(s.buf)
	if err := s.w.WriteFileHeader(snapLen, layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("pcap file header: %w", err)
	}
	return s, nil
}

func (s *pcapSink) write(e *entry) error {
	frame := appendFrame(s.frame[:0], e.src, e.dst, e.data)
	s.frame = frame[:0]
	ci := gopacket.CaptureInfo{Timestamp: e.at, CaptureLength: len(frame), Length: len(frame)}
	return s.w.WritePacket(ci, frame)
}

func (s *pcapSink) flush() error { return s.buf.Flush() }

func (s *pcapSink) close() error { return s.buf.Flush() }

// appendFrame appends the synthetic Ethernet/IPv4/UDP frame carrying payload from src to dst.
func appendFrame(b []byte, src, dst Addr, payload []byte) []byte {
	if len(payload) > maxPayload {
		payload = payload[:maxPayload]
	}
	b = append(b, make([]byte, headersLen)...)
	h := b[len(b)-headersLen:]
	// Ethernet: zero MACs, EtherType IPv4.
	clear(h[:12])
	binary.BigEndian.PutUint16(h[12:14], 0x0800)
	ip := h[ethLen : ethLen+ipv4Len]
	ip[0] = 0x45 // version 4, IHL 5
	ip[1] = 0    // TOS
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipv4Len+udpLen+len(payload)))
	binary.BigEndian.PutUint16(ip[4:6], 0)      // id
	binary.BigEndian.PutUint16(ip[6:8], 0x4000) // DF
	ip[8] = 64                                  // TTL
	ip[9] = 17                                  // UDP
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:12], ipv4Checksum(ip))
	udp := h[ethLen+ipv4Len:]
	binary.BigEndian.PutUint16(udp[0:2], pcapPort)
	binary.BigEndian.PutUint16(udp[2:4], pcapPort)
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpLen+len(payload)))
	binary.BigEndian.PutUint16(udp[6:8], 0) // no checksum
	return append(b, payload...)
}

// ipv4Checksum is the RFC 791 header checksum of hdr (its checksum field zero).
func ipv4Checksum(hdr []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(hdr); i += 2 {
		sum += uint32(hdr[i])<<8 | uint32(hdr[i+1])
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
