package rtpnet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrWouldBlock is returned by UDPSocket.ReadFrom when no datagram is waiting, and by WriteTo
// when the socket's send buffer is full (the datagram is then dropped, as a router would).
var ErrWouldBlock = errors.New("rtpnet: operation would block")

// UDPSocket is a non-blocking UDP socket driven by raw system calls: media sockets are served
// by a few epoll workers (package mediaio), not by Go's network poller, so that no goroutine per
// socket and no second wake-up per datagram are needed. ReadFrom and WriteTo allocate nothing.
//
// ReadFrom may run on one goroutine while WriteTo runs on another; Close must not run
// concurrently with either (the owner stops its reader first, see mediaio.Registration.Remove).
type UDPSocket struct {
	fd    int
	local netip.AddrPort
	v6    bool

	closeOnce sync.Once
}

// ListenUDP binds a non-blocking, close-on-exec UDP socket on addr. Errors wrap the system call
// error (errors.Is works with syscall errnos and os.ErrPermission).
func ListenUDP(addr netip.AddrPort) (*UDPSocket, error) {
	ip := addr.Addr().Unmap()
	family := unix.AF_INET
	if ip.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("listen udp %s: %w", addr, os.NewSyscallError("socket", err))
	}
	var sa unix.Sockaddr
	if ip.Is4() {
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}
	} else {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("listen udp %s: %w", addr, os.NewSyscallError("setsockopt", err))
		}
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("listen udp %s: %w", addr, os.NewSyscallError("bind", err))
	}
	s := &UDPSocket{fd: fd, local: netip.AddrPortFrom(ip, addr.Port()), v6: ip.Is6()}
	if addr.Port() == 0 {
		bound, err := unix.Getsockname(fd)
		if err != nil {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("listen udp %s: %w", addr, os.NewSyscallError("getsockname", err))
		}
		switch b := bound.(type) {
		case *unix.SockaddrInet4:
			s.local = netip.AddrPortFrom(ip, uint16(b.Port))
		case *unix.SockaddrInet6:
			s.local = netip.AddrPortFrom(ip, uint16(b.Port))
		}
	}
	return s, nil
}

// Fd is the socket's file descriptor, for registration with an epoll worker.
func (s *UDPSocket) Fd() int { return s.fd }

// LocalAddr is the bound address.
func (s *UDPSocket) LocalAddr() netip.AddrPort { return s.local }

// Close closes the socket once; later calls return nil.
func (s *UDPSocket) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if e := unix.Close(s.fd); e != nil {
			err = os.NewSyscallError("close", e)
		}
	})
	return err
}

// errAddrFamily: the destination cannot be reached from the socket's address family (an
// IPv6 peer on an IPv4 media_ip).
var errAddrFamily = errors.New("rtpnet: destination address family differs from the socket's")

// rawSockaddr is large enough for both address families.
type rawSockaddr = unix.RawSockaddrInet6

// ReadFrom reads one datagram into buf. It returns ErrWouldBlock when none is waiting. A
// datagram longer than buf is truncated to len(buf) (give a buffer one byte longer than the
// largest datagram accepted, so truncation shows as an oversized length).
func (s *UDPSocket) ReadFrom(buf []byte) (int, netip.AddrPort, error) {
	var sa rawSockaddr
	salen := uint32(unsafe.Sizeof(sa))
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(s.fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&salen)))
		switch errno {
		case 0:
			return int(n), fromRaw(&sa), nil
		case unix.EAGAIN:
			return 0, netip.AddrPort{}, ErrWouldBlock
		case unix.EINTR:
			continue
		default:
			// ECONNREFUSED and the like report ICMP errors of earlier sends: keep reading.
			if errno == unix.ECONNREFUSED || errno == unix.EHOSTUNREACH || errno == unix.ENETUNREACH {
				continue
			}
			return 0, netip.AddrPort{}, errno
		}
	}
}

// WriteTo sends one datagram to to without blocking. A full send buffer drops the datagram and
// returns ErrWouldBlock.
func (s *UDPSocket) WriteTo(b []byte, to netip.AddrPort) error {
	if a := to.Addr(); !a.IsValid() || (!s.v6 && !a.Unmap().Is4()) {
		return errAddrFamily
	}
	var sa rawSockaddr
	salen := toRaw(&sa, to, s.v6)
	for {
		_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa)), uintptr(salen))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return ErrWouldBlock
		default:
			return errno
		}
	}
}

// fromRaw decodes a kernel socket address without allocating.
func fromRaw(sa *rawSockaddr) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&in4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// toRaw encodes to for a socket of the given family and returns the address length.
func toRaw(sa *rawSockaddr, to netip.AddrPort, v6 bool) uint32 {
	port := to.Port()
	if !v6 {
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		in4.Family = unix.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&in4.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		in4.Addr = to.Addr().Unmap().As4()
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	sa.Addr = to.Addr().As16()
	return unix.SizeofSockaddrInet6
}
