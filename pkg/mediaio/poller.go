// Package mediaio serves every media socket of the process from a few goroutines: one epoll
// worker per core, each with its own epoll instance. A socket belongs to one worker for its
// whole life, so its datagrams are handled in arrival order and never concurrently; a session
// puts all of its sockets on one worker, so its packets are too. Compared with one reader
// goroutine per socket this costs no goroutine stack per endpoint and no hand-off between
// goroutines per packet: the worker that reads a datagram routes it (see session).
//
// Handlers run on the worker goroutine and must not block: a handler that cannot take its
// session's lock queues the packet instead (session.mediaState.packetIn).
package mediaio

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// Handler is told when a registered socket is readable.
type Handler interface {
	// Readable runs on the worker goroutine when the socket has data, with the worker's
	// receive batch (reused for every call). It reads one batch of datagrams and returns;
	// readiness is level-triggered, so what is left brings it back after the worker's other
	// ready sockets had their turn. It must not block.
	Readable(batch *rtpnet.ReadBatch)
}

// Poller is a fixed set of epoll workers.
type Poller struct {
	log     *slog.Logger
	workers []*Worker
	next    atomic.Uint32
	wg      sync.WaitGroup
}

// New starts n workers (n ≤ 0: one per CPU the process may use).
func New(n int, log *slog.Logger) (*Poller, error) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Poller{log: log}
	for i := 0; i < n; i++ {
		w, err := newWorker(i, log)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.workers = append(p.workers, w)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			w.run()
		}()
	}
	return p, nil
}

// Pick returns the next worker round-robin (a session takes one for all of its sockets).
func (p *Poller) Pick() *Worker {
	i := p.next.Add(1) - 1
	return p.workers[int(i%uint32(len(p.workers)))]
}

// Workers reports how many workers run.
func (p *Poller) Workers() int { return len(p.workers) }

// Close stops every worker and waits for them. Registrations still open are abandoned: their
// handlers are not called again.
func (p *Poller) Close() {
	for _, w := range p.workers {
		w.stop()
	}
	p.wg.Wait()
}

// Worker is one epoll loop. Its epoll instance is itself registered with Go's network poller
// (an epoll descriptor is readable while it has ready events), so an idle worker is a parked
// goroutine: it holds no thread in a blocking system call, which would keep the runtime's
// monitor thread waking every 20 µs to take its processor back (measured: 20,000 context
// switches per second and 8 % more CPU with transcoding on one core).
type Worker struct {
	index  int
	log    *slog.Logger
	epfd   int
	file   *os.File // epfd, owned by Go's poller
	rc     syscall.RawConn
	closed atomic.Bool

	// regs is indexed by registration id (the epoll token); free lists reusable ids.
	mu   sync.Mutex
	regs []*Registration
	free []uint64

	events [128]unix.EpollEvent
	batch  *rtpnet.ReadBatch
}

func newWorker(index int, log *slog.Logger) (*Worker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("mediaio: %w", os.NewSyscallError("epoll_create1", err))
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("mediaio: %w", os.NewSyscallError("fcntl", err))
	}
	// A non-blocking descriptor makes os.NewFile register it with the runtime's poller.
	file := os.NewFile(uintptr(epfd), fmt.Sprintf("mediaio-epoll-%d", index))
	rc, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("mediaio: %w", err)
	}
	// Token 0 is never handed out, so a zeroed event can never name a registration.
	return &Worker{index: index, log: log, epfd: epfd, file: file, rc: rc, regs: []*Registration{nil}, batch: rtpnet.NewReadBatch()}, nil
}

// setToken stores a registration id in the event's 64-bit user data.
func setToken(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func token(ev *unix.EpollEvent) uint64 { return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32 }

// ErrClosed is returned by Register on a stopped worker.
var ErrClosed = errors.New("mediaio: poller closed")

// Registration is one socket on a worker.
type Registration struct {
	w  *Worker
	id uint64
	fd int
	h  Handler

	// busy is held while the handler runs, so Remove can wait for a call in progress.
	busy    sync.Mutex
	removed atomic.Bool
}

// Register adds fd, level-triggered for reading; h.Readable runs on this worker whenever the
// socket has data, until Remove.
func (w *Worker) Register(fd int, h Handler) (*Registration, error) {
	if w.closed.Load() {
		return nil, ErrClosed
	}
	w.mu.Lock()
	var id uint64
	if n := len(w.free); n > 0 {
		id, w.free = w.free[n-1], w.free[:n-1]
	} else {
		id = uint64(len(w.regs))
		w.regs = append(w.regs, nil)
	}
	r := &Registration{w: w, id: id, fd: fd, h: h}
	w.regs[id] = r
	w.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setToken(&ev, id)
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.release(id)
		return nil, fmt.Errorf("mediaio: %w", os.NewSyscallError("epoll_ctl", err))
	}
	return r, nil
}

// release frees a registration id. An event still carrying it finds either nothing or, once
// the id is reused, a newer registration, which only makes that one check its socket early
// (a read that finds nothing is harmless).
func (w *Worker) release(id uint64) {
	w.mu.Lock()
	w.regs[id] = nil
	w.free = append(w.free, id)
	w.mu.Unlock()
}

// lookup finds the registration of an epoll token.
func (w *Worker) lookup(id uint64) *Registration {
	w.mu.Lock()
	var r *Registration
	if id < uint64(len(w.regs)) {
		r = w.regs[id]
	}
	w.mu.Unlock()
	return r
}

// Remove stops the handler: once it returns, Readable is not running and will not be called
// again, so the socket may be closed. It must not be called from the handler itself. Safe to
// call more than once.
func (r *Registration) Remove() {
	if r.removed.Swap(true) {
		return
	}
	if !r.w.closed.Load() {
		_ = unix.EpollCtl(r.w.epfd, unix.EPOLL_CTL_DEL, r.fd, nil)
	}
	r.w.release(r.id)
	// A call that picked this registration before the flag was set finishes first.
	r.busy.Lock()
	r.busy.Unlock() // empty on purpose: it only waits for a Readable in progress
}

// stop ends the worker: closing the epoll file wakes its goroutine, which then returns.
func (w *Worker) stop() {
	if !w.closed.Swap(true) {
		_ = w.file.Close()
	}
}

func (w *Worker) run() {
	var (
		n     int
		errno unix.Errno
	)
	// poll asks the epoll instance without blocking; returning false parks the goroutine in
	// Go's poller until the instance has events.
	poll := func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&w.events[0])), uintptr(len(w.events)), 0, 0, 0)
		n, errno = int(r), e
		return (e == 0 && n > 0) || (e != 0 && e != unix.EINTR)
	}
	for {
		if err := w.rc.Read(poll); err != nil {
			if !w.closed.Load() {
				w.log.Error("media worker's poller failed; it stops", "worker", w.index, "err", err)
			}
			return
		}
		if errno != 0 {
			w.log.Error("epoll_wait failed; media worker stops", "worker", w.index, "err", errno)
			return
		}
		for i := 0; i < n; i++ {
			if r := w.lookup(token(&w.events[i])); r != nil {
				w.dispatch(r)
			}
		}
	}
}

// dispatch runs one handler call. A panic there is a bug reached by one socket's input: it is
// logged and that registration is dropped, the worker and every other socket carry on.
func (w *Worker) dispatch(r *Registration) {
	r.busy.Lock()
	defer r.busy.Unlock()
	if r.removed.Load() {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("panic in media handler; socket dropped", "worker", w.index, "panic", p)
			if !r.removed.Swap(true) {
				_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, r.fd, nil)
				w.release(r.id)
			}
		}
	}()
	r.h.Readable(w.batch)
}
