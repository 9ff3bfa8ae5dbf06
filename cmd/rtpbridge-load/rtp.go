package main

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// frameInterval is the packet interval of every stream: 20 ms, real clock.
const frameInterval = 20 * time.Millisecond

// ringSize is how many recent send times each stream keeps for latency matching (10.24 s of
// packets); a packet arriving later than that is counted as unmatched, not measured.
const ringSize = 512

// clock gives monotonic nanoseconds since the run started.
type clock struct{ base time.Time }

func (c *clock) now() int64 { return int64(time.Since(c.base)) }

// window is the measurement window [w0, w1) in clock nanoseconds; both are MaxInt64 until the
// window is decided, so nothing counts before.
type window struct{ w0, w1 atomic.Int64 }

func newWindow() *window {
	w := &window{}
	w.w0.Store(math.MaxInt64)
	w.w1.Store(math.MaxInt64)
	return w
}

func (w *window) in(t int64) bool { return t >= w.w0.Load() && t < w.w1.Load() }

// stream is one direction of one call as its sender sees it: a UDP socket, the server's
// address for it, and the looped list of payloads. Before it is handed to the pacer only its
// call's setup goroutine touches it (priming); afterwards only the pacer does, except sent and
// times, which receivers read atomically.
type stream struct {
	conn     *net.UDPConn
	dst      netip.AddrPort
	pt       uint8
	ssrc     uint32
	seq      uint16
	ts       uint32
	step     uint32
	marker   bool
	payloads [][]byte
	idx      int
	buf      []byte

	// Pacer-owned once registered.
	due      int64 // clock time of the next packet
	heapIdx  int
	winFirst int64 // k of the first packet sent inside the window, -1 before
	winCount int64 // packets sent inside the window
	sendErrs int64

	sent  atomic.Int64 // main-stream packets handed to the socket so far (k of the next one)
	times [ringSize]atomic.Int64
}

func newStream(conn *net.UDPConn, dst netip.AddrPort, pt uint8, step uint32, payloads [][]byte, start int, ssrc uint32, seq uint16, ts uint32) *stream {
	maxLen := 0
	for _, p := range payloads {
		maxLen = max(maxLen, len(p))
	}
	return &stream{
		conn: conn, dst: dst, pt: pt, ssrc: ssrc, seq: seq, ts: ts, step: step,
		payloads: payloads, idx: start % len(payloads), buf: make([]byte, 12+maxLen), winFirst: -1,
	}
}

// writeNext sends the next packet of the stream (sequence, timestamp and payload advance).
func (s *stream) writeNext() error {
	p := s.payloads[s.idx]
	s.idx++
	if s.idx == len(s.payloads) {
		s.idx = 0
	}
	b := s.buf
	b[0] = 0x80
	b[1] = s.pt & 0x7f
	if s.marker {
		b[1] |= 0x80
		s.marker = false
	}
	binary.BigEndian.PutUint16(b[2:], s.seq)
	binary.BigEndian.PutUint32(b[4:], s.ts)
	binary.BigEndian.PutUint32(b[8:], s.ssrc)
	n := 12 + copy(b[12:], p)
	s.seq++
	s.ts += s.step
	_, err := s.conn.WriteToUDPAddrPort(b[:n], s.dst)
	return err
}

// startMain ends priming: the main stream continues 20000 sequence numbers later (beyond
// RFC 3550's MAX_DROPOUT of 3000, so the server's decoders treat it as a restarted stream and
// conceal nothing for the pause after priming) with a marker bit.
func (s *stream) startMain() {
	s.seq += 20000
	s.ts += 50 * s.step
	s.marker = true
}

// sendTime returns the clock time main packet k was sent, ok=false when k has not been sent
// or has left the ring.
func (s *stream) sendTime(k int64) (int64, bool) {
	n := s.sent.Load()
	if k >= n || n-k > ringSize-16 {
		return 0, false
	}
	t := s.times[k%ringSize].Load()
	if s.sent.Load()-k > ringSize-16 {
		return 0, false
	}
	return t, true
}

// pacer sends every registered stream's packets on a 20 ms real-clock schedule from one
// goroutine (a min-heap of due times). Streams are staggered on a 1 ms grid so sends spread
// over the 20 ms and the goroutine wakes at most about 1000 times a second. A send is never
// skipped: when the pacer falls behind it catches up at once, and how late each packet went
// out is recorded and reported.
type pacer struct {
	clk *clock
	win *window

	mu   sync.Mutex
	adds []*stream
	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	h streamHeap

	// Pacer-owned; read after done.
	lateness    *histogram // µs, packets sent inside the window
	maxLate     int64      // ns, any packet
	lateOver2   int64      // inside the window
	lateOver20  int64      // inside the window (a whole frame late)
	sentInWin   int64
	sendErrsWin int64
}

func newPacer(clk *clock, win *window) *pacer {
	return &pacer{clk: clk, win: win, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), lateness: newHistogram()}
}

// add registers s; its first packet goes out at due (clock time).
func (p *pacer) add(s *stream, due int64) {
	s.due = due
	p.mu.Lock()
	p.adds = append(p.adds, s)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pacer) run() {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		for _, s := range p.adds {
			heap.Push(&p.h, s)
		}
		p.adds = p.adds[:0]
		p.mu.Unlock()

		if len(p.h) == 0 {
			select {
			case <-p.wake:
				continue
			case <-p.stop:
				return
			}
		}
		if d := p.h[0].due - p.clk.now(); d > 0 {
			timer.Reset(time.Duration(d))
			select {
			case <-timer.C:
			case <-p.wake:
				continue
			case <-p.stop:
				return
			}
		}
		now := p.clk.now()
		for len(p.h) > 0 && p.h[0].due <= now {
			s := p.h[0]
			p.send(s, now)
			s.due += int64(frameInterval)
			heap.Fix(&p.h, 0)
		}
		select {
		case <-p.stop:
			return
		default:
		}
	}
}

// send transmits the next main packet of s. The send time is recorded (and the sent count
// published) before the write, so a receiver woken by the packet always finds it.
func (p *pacer) send(s *stream, now int64) {
	t := p.clk.now()
	k := s.sent.Load()
	s.times[k%ringSize].Store(t)
	s.sent.Store(k + 1)
	err := s.writeNext()
	late := t - s.due
	p.maxLate = max(p.maxLate, late)
	if p.win.in(t) {
		if s.winFirst < 0 {
			s.winFirst = k
		}
		s.winCount++
		p.sentInWin++
		p.lateness.record(late / 1000)
		if late > int64(2*time.Millisecond) {
			p.lateOver2++
		}
		if late > int64(frameInterval) {
			p.lateOver20++
		}
		if err != nil {
			s.sendErrs++
			p.sendErrsWin++
		}
	}
}

func (p *pacer) close() {
	close(p.stop)
	<-p.done
}

type streamHeap []*stream

func (h streamHeap) Len() int           { return len(h) }
func (h streamHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h streamHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *streamHeap) Push(x any) {
	s := x.(*stream)
	s.heapIdx = len(*h)
	*h = append(*h, s)
}
func (h *streamHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	*h = old[:len(old)-1]
	return s
}

// receiver is the far end of one stream: it reads a peer socket, ignores RTCP, counts priming
// packets until armed, then numbers main-stream packets by their (extended) sequence number
// relative to the first one received, k, and pairs the k-th arrival with the k-th send. The
// server rewrites SSRC, sequence numbers and timestamps, but passthrough and 20 ms → 20 ms
// transcoding produce exactly one packet per packet, so the k-th out is the k-th in.
type receiver struct {
	conn *net.UDPConn
	src  *stream // the sender at the other end; nil when that direction carries no main stream
	clk  *clock
	win  *window

	primed atomic.Int64
	armed  atomic.Bool
	done   chan struct{}

	// Owned by the goroutine; read after done.
	started     bool
	baseExt     int64
	lastExt     int64
	lastSeq     uint16
	got         bitset
	dups        int64
	rtcp        int64
	invalid     int64
	early       int64 // sequence before the first main packet (reordered)
	unmatched   int64 // no send time (too late for the ring, or unexpected)
	negative    int64 // arrived before it was sent: the 1:1 pairing is off
	winArrivals int64 // main-stream packets arriving inside the window
	lat         *histogram
}

func newReceiver(conn *net.UDPConn, src *stream, clk *clock, win *window) *receiver {
	return &receiver{conn: conn, src: src, clk: clk, win: win, done: make(chan struct{}), lat: newHistogram()}
}

func (r *receiver) run() {
	defer close(r.done)
	buf := make([]byte, 2048)
	for {
		n, err := r.conn.Read(buf)
		if err != nil {
			if isClosed(err) {
				return
			}
			continue // e.g. ICMP-induced errors on Linux; keep reading
		}
		at := r.clk.now()
		if n < 12 || buf[0]>>6 != 2 {
			r.invalid++
			continue
		}
		if buf[1] >= 200 && buf[1] <= 204 { // RTCP (muxed): SR every 5 s
			r.rtcp++
			continue
		}
		if !r.armed.Load() {
			r.primed.Add(1)
			continue
		}
		if r.win.in(at) {
			r.winArrivals++
		}
		seq := binary.BigEndian.Uint16(buf[2:])
		var ext int64
		if !r.started {
			r.started = true
			r.baseExt, r.lastExt, r.lastSeq = int64(seq), int64(seq), seq
			ext = int64(seq)
		} else {
			ext = r.lastExt + int64(int16(seq-r.lastSeq))
			if ext > r.lastExt {
				r.lastExt, r.lastSeq = ext, seq
			}
		}
		k := ext - r.baseExt
		if k < 0 {
			r.early++
			continue
		}
		if r.got.set(k) {
			r.dups++
			continue
		}
		if r.src == nil {
			r.unmatched++
			continue
		}
		sentAt, ok := r.src.sendTime(k)
		if !ok {
			r.unmatched++
			continue
		}
		if r.win.in(sentAt) {
			if at < sentAt {
				r.negative++
				continue
			}
			r.lat.record((at - sentAt) / 1000)
		}
	}
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
