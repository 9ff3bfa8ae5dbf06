package rtpnet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
)

// ErrNoPortPairs is matched (errors.Is) by the error Allocate returns when
// every pair of the range was tried and none could be bound.
const ErrNoPortPairs = constError("no available port pairs")

// constError is a comparable, allocation-free error usable as a constant.
type constError string

func (e constError) Error() string { return string(e) }

// ExhaustedError is returned by Allocate after 2 × pairs failed tries
// (PROTOCOL §14). Its text is normative: "No available port pairs in range
// A-B", where A-B is the range as configured (before rounding).
type ExhaustedError struct {
	Start, End int
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("No available port pairs in range %d-%d", e.Start, e.End)
}

// Is makes errors.Is(err, ErrNoPortPairs) true for an *ExhaustedError.
func (e *ExhaustedError) Is(target error) bool { return target == ErrNoPortPairs }

// listenFunc is the bind primitive; a field so tests can inject failures
// that cannot be provoked for real (EACCES when the tests run as root).
type listenFunc func(addr netip.AddrPort) (*UDPSocket, error)

// PortAllocator hands out RTP/RTCP socket pairs (even port, even+1) bound on
// media_ip from rtp_port_range (PROTOCOL §14). The pool is the configured
// range with its start rounded up to even and its end rounded down to odd.
// One cursor, shared by all sessions, walks the even ports round-robin and
// wraps, so a just-released pair is not reused at once (late packets of the
// old call do not land in a new one).
//
// It is safe for concurrent use. Only the cursor is under the mutex: binding
// happens outside it, and the kernel's exclusive bind (no SO_REUSEADDR or
// SO_REUSEPORT is set) is what guarantees that two callers never hold the
// same pair, even when both land on it.
type PortAllocator struct {
	ip         netip.Addr
	start, end int // as configured, for the exhaustion message
	first      int // first even port of the pool
	pairs      int
	listen     listenFunc

	mu     sync.Mutex
	cursor int // index of the next pair to try, 0 ≤ cursor < pairs
}

// NewPortAllocator builds an allocator for the range [start, end] on
// mediaIP. It fails when mediaIP is invalid, the bounds are outside 1-65535
// or reversed, or the rounded range holds no even/odd pair.
func NewPortAllocator(mediaIP netip.Addr, start, end int) (*PortAllocator, error) {
	if !mediaIP.IsValid() {
		return nil, errors.New("rtpnet: invalid media_ip")
	}
	if start < 1 || end > 65535 || start > end {
		return nil, fmt.Errorf("rtpnet: invalid rtp_port_range %d-%d", start, end)
	}
	ip := mediaIP.Unmap()
	first := start + start&1     // round up to even
	lastOdd := end - (1 - end&1) // round down to odd
	pairs := (lastOdd - first + 1) / 2
	if pairs < 1 {
		return nil, fmt.Errorf("rtpnet: rtp_port_range %d-%d holds no even/odd port pair", start, end)
	}
	return &PortAllocator{
		ip:     ip,
		start:  start,
		end:    end,
		first:  first,
		pairs:  pairs,
		listen: ListenUDP,
	}, nil
}

// Pairs reports how many even/odd pairs the pool holds (for the
// max_sessions warning of PROTOCOL §26).
func (a *PortAllocator) Pairs() int { return a.pairs }

// MediaIP reports the address every socket is bound to.
func (a *PortAllocator) MediaIP() netip.Addr { return a.ip }

// nextPort advances the shared cursor and returns the even port to try.
func (a *PortAllocator) nextPort() int {
	a.mu.Lock()
	i := a.cursor
	a.cursor++
	if a.cursor == a.pairs {
		a.cursor = 0
	}
	a.mu.Unlock()
	return a.first + 2*i
}

// Allocate binds the next free pair: RTP on an even port and RTCP on the
// following odd port, both on media_ip (both are bound even when the call
// will use rtcp-mux, PROTOCOL §14). A pair where either bind fails (a port
// used by another process or another session) is skipped. After 2 × pairs
// tries it returns an *ExhaustedError. Errors that no other port can cure —
// permission denied, media_ip not local, out of file descriptors — are
// returned at once, wrapped with the port and address.
func (a *PortAllocator) Allocate() (*PortPair, error) {
	for range 2 * a.pairs {
		port := a.nextPort()
		pp, err := a.bindPair(port)
		if err == nil {
			return pp, nil
		}
		if fatalBindError(err) {
			return nil, fmt.Errorf("cannot allocate RTP port pair on %s: %w", a.ip, err)
		}
	}
	return nil, &ExhaustedError{Start: a.start, End: a.end}
}

// bindPair binds port and port+1 or neither.
func (a *PortAllocator) bindPair(port int) (*PortPair, error) {
	rtp, err := a.listen(netip.AddrPortFrom(a.ip, uint16(port)))
	if err != nil {
		return nil, err
	}
	rtcp, err := a.listen(netip.AddrPortFrom(a.ip, uint16(port+1)))
	if err != nil {
		_ = rtp.Close() // nothing to report: the pair is abandoned either way
		return nil, err
	}
	return &PortPair{RTP: rtp, RTCP: rtcp, port: port}, nil
}

// fatalBindError tells errors that would repeat on every port of the range
// (so trying the others only delays a misleading exhaustion message) from
// per-port ones such as EADDRINUSE, which just move the cursor on.
func fatalBindError(err error) bool {
	switch {
	case errors.Is(err, os.ErrPermission): // EACCES, EPERM
		return true
	case errors.Is(err, syscall.EADDRNOTAVAIL), // media_ip is not an address of this host
		errors.Is(err, syscall.EAFNOSUPPORT),
		errors.Is(err, syscall.EMFILE),
		errors.Is(err, syscall.ENFILE):
		return true
	}
	return false
}

// PortPair is one allocated RTP/RTCP socket pair. The endpoint owns it;
// Close releases both ports (after the endpoint stopped reading them).
type PortPair struct {
	RTP  *UDPSocket // even port
	RTCP *UDPSocket // RTP port + 1

	port      int
	closeOnce sync.Once
}

// Port is the RTP (even) port; the RTCP port is Port()+1.
func (p *PortPair) Port() int { return p.port }

// Close closes both sockets and returns the ports to the pool. It is safe to call more than once and from several
// goroutines; later calls return nil.
func (p *PortPair) Close() error {
	if p == nil {
		return nil
	}
	var err error
	p.closeOnce.Do(func() {
		var errs []error
		if p.RTP != nil {
			if err := p.RTP.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close RTP port %d: %w", p.port, err))
			}
		}
		if p.RTCP != nil {
			if err := p.RTCP.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close RTCP port %d: %w", p.port+1, err))
			}
		}
		err = errors.Join(errs...)
	})
	return err
}
