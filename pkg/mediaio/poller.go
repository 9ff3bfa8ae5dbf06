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
	for _, w := range p.workers {
		_ = unix.Close(w.epfd)
		_ = unix.Close(w.wakefd)
	}
}

// wakeID is the epoll token of a worker's own eventfd.
const wakeID = 0

// Worker is one epoll loop.
type Worker struct {
	index  int
	log    *slog.Logger
	epfd   int
	wakefd int
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
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("mediaio: %w", os.NewSyscallError("eventfd", err))
	}
	w := &Worker{index: index, log: log, epfd: epfd, wakefd: wakefd, regs: []*Registration{wakeID: nil}, batch: rtpnet.NewReadBatch()}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setToken(&ev, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wakefd)
		return nil, fmt.Errorf("mediaio: %w", os.NewSyscallError("epoll_ctl", err))
	}
	return w, nil
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
	_ = unix.EpollCtl(r.w.epfd, unix.EPOLL_CTL_DEL, r.fd, nil)
	r.w.release(r.id)
	// A call that picked this registration before the flag was set finishes first.
	r.busy.Lock()
	r.busy.Unlock() // empty on purpose: it only waits for a Readable in progress
}

func (w *Worker) stop() {
	w.closed.Store(true)
	var one = [8]byte{1}
	_, _ = unix.Write(w.wakefd, one[:])
}

func (w *Worker) run() {
	for {
		n, err := w.wait()
		if err != nil {
			w.log.Error("epoll_wait failed; media worker stops", "worker", w.index, "err", err)
			return
		}
		for i := 0; i < n; i++ {
			id := token(&w.events[i])
			if id == wakeID {
				if w.closed.Load() {
					return
				}
				continue
			}
			if r := w.lookup(id); r != nil {
				w.dispatch(r)
			}
		}
	}
}

// wait returns the next ready sockets. Under load there usually are some already: a
// non-blocking check first spares the scheduler's system-call hand-off (and a thread switch)
// that a blocking wait costs; only an idle worker blocks.
func (w *Worker) wait() (int, error) {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(w.epfd), uintptr(unsafe.Pointer(&w.events[0])), uintptr(len(w.events)), 0, 0, 0)
		if errno == 0 && n > 0 {
			return int(n), nil
		}
		if errno != 0 && errno != unix.EINTR {
			return 0, errno
		}
		m, err := unix.EpollWait(w.epfd, w.events[:], -1)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, unix.EINTR) {
			return 0, err
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
