package rtpnet

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BatchSize is how many datagrams one ReadBatch call can return.
const BatchSize = 16

// batchBufferSize is each slot's buffer: larger than any datagram a media socket accepts, so an
// oversized one shows as such (see ReadBufferSize).
const batchBufferSize = 2048

// mmsghdr is struct mmsghdr (recvmmsg(2)).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// ReadBatch is the memory for reading several datagrams with one recvmmsg(2) call. It belongs
// to one reader (a media worker) and is reused for every call; nothing is allocated per read.
type ReadBatch struct {
	n     int
	hdrs  [BatchSize]mmsghdr
	iovs  [BatchSize]unix.Iovec
	names [BatchSize]rawSockaddr
	bufs  [BatchSize][batchBufferSize]byte
}

// NewReadBatch prepares a batch.
func NewReadBatch() *ReadBatch {
	b := new(ReadBatch)
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.SetIovlen(1)
	}
	return b
}

// Len is the number of datagrams the last ReadBatch returned.
func (b *ReadBatch) Len() int { return b.n }

// Datagram returns the i-th datagram of the last read and its source. The bytes stay valid
// until the next read into b.
func (b *ReadBatch) Datagram(i int) ([]byte, netip.AddrPort) {
	return b.bufs[i][:b.hdrs[i].len], fromRaw(&b.names[i])
}

// ReadBatch reads up to max (≤ BatchSize) waiting datagrams with one system call. It returns
// ErrWouldBlock when none is waiting.
func (s *UDPSocket) ReadBatch(b *ReadBatch, max int) (int, error) {
	max = min(max, BatchSize)
	for i := 0; i < max; i++ {
		b.iovs[i].SetLen(batchBufferSize)
		b.hdrs[i].hdr.Namelen = uint32(unsafe.Sizeof(b.names[i]))
		b.hdrs[i].len = 0
	}
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(max),
			unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			b.n = int(n)
			return b.n, nil
		case unix.EAGAIN:
			b.n = 0
			return 0, ErrWouldBlock
		case unix.EINTR, unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH:
			continue // ICMP errors of earlier sends: keep reading
		default:
			b.n = 0
			return 0, errno
		}
	}
}
