package webrtc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
)

// Ports hands out the one UDP socket of each WebRTC endpoint, bound to media_ip on a port of
// webrtc_port_range, or of rtp_port_range when that is unset (PROTOCOL.md §35). It is safe for
// concurrent use; the kernel's exclusive bind is what keeps two endpoints (or an endpoint and a
// plain RTP pair) off the same port, the cursor only spreads the tries.
type Ports struct {
	ip         netip.Addr
	start, end int
	// down walks the range from its top: sharing rtp_port_range, plain RTP pairs are taken from
	// the bottom ("after RTP pairs", §35), so the two rarely meet.
	down bool

	mu     sync.Mutex
	cursor int
}

// NewPorts builds the pool. webrtcRange is webrtc_port_range (nil when unset); rtpRange is
// rtp_port_range, used when webrtcRange is nil.
func NewPorts(mediaIP netip.Addr, webrtcRange *[2]int, rtpRange [2]int) (*Ports, error) {
	if !mediaIP.IsValid() {
		return nil, errors.New("webrtc: invalid media_ip")
	}
	r, down := rtpRange, true
	if webrtcRange != nil {
		r, down = *webrtcRange, false
	}
	if r[0] < 1 || r[1] > 65535 || r[0] > r[1] {
		return nil, fmt.Errorf("webrtc: invalid port range %d-%d", r[0], r[1])
	}
	return &Ports{ip: mediaIP.Unmap(), start: r[0], end: r[1], down: down}, nil
}

// MediaIP is the address every socket binds and the ICE host candidate advertises.
func (p *Ports) MediaIP() netip.Addr { return p.ip }

// Range is the configured range, as used in the exhaustion message.
func (p *Ports) Range() (start, end int) { return p.start, p.end }

func (p *Ports) next() int {
	p.mu.Lock()
	i := p.cursor
	p.cursor = (p.cursor + 1) % (p.end - p.start + 1)
	p.mu.Unlock()
	if p.down {
		return p.end - i
	}
	return p.start + i
}

// Listen binds the next free port of the range. After trying every port once it fails with
// `No available WebRTC port in range A-B`; errors no other port can cure (permission, media_ip
// not local, out of descriptors) fail at once.
func (p *Ports) Listen() (*net.UDPConn, error) {
	for range p.end - p.start + 1 {
		port := p.next()
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.ip, uint16(port))))
		if err == nil {
			return conn, nil
		}
		if fatalBindError(err) {
			return nil, fmt.Errorf("cannot bind a WebRTC port on %s: %w", p.ip, err)
		}
	}
	return nil, fmt.Errorf("No available WebRTC port in range %d-%d", p.start, p.end)
}

func fatalBindError(err error) bool {
	return errors.Is(err, os.ErrPermission) ||
		errors.Is(err, syscall.EADDRNOTAVAIL) ||
		errors.Is(err, syscall.EAFNOSUPPORT) ||
		errors.Is(err, syscall.EMFILE) ||
		errors.Is(err, syscall.ENFILE)
}
