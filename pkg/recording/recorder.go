package recording

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

// Options configure a recording's queue and writer.
type Options struct {
	// QueueSize is recording_channel_size: how many captured items wait for the writer
	// before further ones are dropped.
	QueueSize int
	// FlushTimeout is recording_flush_timeout_secs: how long a stopped recording's writer may
	// take to drain and flush before it is aborted (D16: once, not twice).
	FlushTimeout time.Duration
	// FlushEvery bounds how long written items may sit in the writer's buffer (1 s if zero),
	// so a process killed mid-call leaves a file that holds all but the last moments.
	FlushEvery time.Duration
	// Log receives the writer's warnings; nil discards them.
	Log *slog.Logger
	// Writers, when set, counts the writer goroutine while it runs, so a process that shuts
	// down can wait for its recordings to be flushed and closed (bounded by FlushTimeout).
	Writers *sync.WaitGroup
}

func (o Options) withDefaults() Options {
	if o.QueueSize <= 0 {
		o.QueueSize = 1000
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = 10 * time.Second
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// entry is one captured item on its way to the writer: a packet with its synthetic addresses
// (PCAP) or a piece of a channel's audio at its place on the timeline (decoded recordings).
// Each recording recycles its own entries (Recorder.free), so capturing allocates nothing in
// steady state and a recording holds at most queue-size entries, allocated only as its queue
// actually fills.
type entry struct {
	at       time.Time
	src, dst Addr
	data     []byte
	// Decoded recordings.
	channel int
	pos     int64 // sample index on the recording's timeline
	pcm     []int16
}

// sink is a recording's file format: the writer goroutine is its only user.
type sink interface {
	write(e *entry) error
	// flush pushes buffered output to the file (periodically and when the queue runs dry).
	flush() error
	// close finishes the file (trailer, final header) after the last entry.
	close() error
}

// Recorder is one active recording: a bounded queue (recording_channel_size) to a writer
// goroutine that owns the file. Capturing never blocks: when the queue is full the item is
// dropped and counted, so a slow or full disk costs recorded packets, never media.
//
// Capture methods and Stop are called by the session loop (under the session's lock); Packets,
// Dropped, Failed and Done are safe from any goroutine.
type Recorder struct {
	opts  Options
	file  *os.File // closed by the writer, or by abort
	sink  sink
	queue chan *entry
	free  chan *entry // entries the writer is done with
	stop  chan struct{}
	done  chan struct{}

	packets atomic.Uint64
	dropped atomic.Uint64
	failed  atomic.Bool // the writer hit a write error and stopped
	aborted atomic.Bool // Stop's flush timeout expired
	err     error       // set by the writer before done closes

	stopOnce  sync.Once
	closeOnce sync.Once
	abortT    *time.Timer
	started   time.Time

	// Decoded recordings (session loop only after NewDecoded).
	rate, channels int
	nextChannel    int // the channel the next new party gets
}

// NewPCAP starts a PCAP recording (PROTOCOL.md §17) into f, which the recorder owns from now on.
func NewPCAP(f *os.File, opts Options) (*Recorder, error) {
	s, err := newPCAPSink(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return start(f, s, opts), nil
}

func start(f *os.File, s sink, opts Options) *Recorder {
	opts = opts.withDefaults()
	r := &Recorder{
		opts:    opts,
		file:    f,
		sink:    s,
		queue:   make(chan *entry, opts.QueueSize),
		free:    make(chan *entry, opts.QueueSize+1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		started: time.Now(),
	}
	if r.opts.Writers != nil {
		r.opts.Writers.Add(1)
	}
	go r.run()
	return r
}

// Started is when the recording began.
func (r *Recorder) Started() time.Time { return r.started }

// Packets is how many items were queued for the file (§7 `packets`).
func (r *Recorder) Packets() uint64 { return r.packets.Load() }

// Dropped is how many items a full queue turned away (§7 `dropped_packets`).
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Failed reports whether the writer stopped on a write error: the session then removes the
// recording with reason write_error.
func (r *Recorder) Failed() bool { return r.failed.Load() }

// Done is closed when the writer has finished (file complete, failed or aborted).
func (r *Recorder) Done() <-chan struct{} { return r.done }

// Err is the writer's error once Done is closed (nil for a complete file).
func (r *Recorder) Err() error {
	<-r.done
	return r.err
}

// CaptureRTP queues an RTP packet from src to dst with its header rebuilt as the plain 12
// bytes §17 asks for (original marker, payload type, sequence, timestamp and SSRC). It reports
// whether the packet was queued.
func (r *Recorder) CaptureRTP(at time.Time, src, dst Addr, h *rtpnet.RTPHeader, payload []byte) bool {
	e, ok := r.reserve()
	if !ok {
		return false
	}
	e.at, e.src, e.dst = at, src, dst
	var hdr [12]byte
	hdr[0] = 0x80
	hdr[1] = h.PayloadType & 0x7f
	if h.Marker {
		hdr[1] |= 0x80
	}
	hdr[2], hdr[3] = byte(h.SequenceNumber>>8), byte(h.SequenceNumber)
	hdr[4], hdr[5], hdr[6], hdr[7] = byte(h.Timestamp>>24), byte(h.Timestamp>>16), byte(h.Timestamp>>8), byte(h.Timestamp)
	hdr[8], hdr[9], hdr[10], hdr[11] = byte(h.SSRC>>24), byte(h.SSRC>>16), byte(h.SSRC>>8), byte(h.SSRC)
	e.data = append(append(e.data[:0], hdr[:]...), payload...)
	return r.enqueue(e)
}

// CaptureRaw queues b (an RTCP packet, or any UDP payload) from src to dst as it is.
func (r *Recorder) CaptureRaw(at time.Time, src, dst Addr, b []byte) bool {
	e, ok := r.reserve()
	if !ok {
		return false
	}
	e.at, e.src, e.dst = at, src, dst
	e.data = append(e.data[:0], b...)
	return r.enqueue(e)
}

// CaptureAudio queues pcm for channel at sample position pos of the timeline (decoded
// recordings).
func (r *Recorder) CaptureAudio(channel int, pos int64, pcm []int16) bool {
	e, ok := r.reserve()
	if !ok {
		return false
	}
	e.channel, e.pos = channel, pos
	e.pcm = append(e.pcm[:0], pcm...)
	return r.enqueue(e)
}

// reserve takes an entry if the queue has room; a full queue counts a drop. Only the session
// loop sends, so room seen here is still there in enqueue.
func (r *Recorder) reserve() (*entry, bool) {
	if len(r.queue) == cap(r.queue) {
		r.dropped.Add(1)
		return nil, false
	}
	select {
	case e := <-r.free:
		return e, true
	default:
		return new(entry), true
	}
}

// putEntry hands an entry back for reuse.
func (r *Recorder) putEntry(e *entry) {
	e.data, e.pcm = e.data[:0], e.pcm[:0]
	select {
	case r.free <- e:
	default:
	}
}

func (r *Recorder) enqueue(e *entry) bool {
	select {
	case r.queue <- e:
		r.packets.Add(1)
		return true
	default:
		r.putEntry(e)
		r.dropped.Add(1)
		return false
	}
}

// Stop ends the recording: nothing more is captured, the writer drains what is queued, flushes
// and closes the file in the background. If that takes longer than the flush timeout the writer
// is aborted (D16): the rest of the queue is discarded and the file closed, which also frees a
// writer blocked on a pipe. Stop returns at once; Done tells when the file is finished.
func (r *Recorder) Stop() {
	r.stopOnce.Do(func() {
		r.abortT = time.AfterFunc(r.opts.FlushTimeout, r.abort)
		close(r.stop)
	})
}

func (r *Recorder) abort() {
	select {
	case <-r.done:
		return
	default:
	}
	r.aborted.Store(true)
	r.opts.Log.Warn("recording writer did not finish within recording_flush_timeout_secs; aborted",
		"file", r.name(), "timeout", r.opts.FlushTimeout)
	r.closeFile()
}

func (r *Recorder) name() string {
	if r.file == nil {
		return ""
	}
	return r.file.Name()
}

func (r *Recorder) closeFile() error {
	var err error
	r.closeOnce.Do(func() {
		if r.file != nil {
			err = r.file.Close()
		}
	})
	return err
}

// run is the writer goroutine: it owns the sink and the file. It ends after Stop (drained) or
// on the first write error.
func (r *Recorder) run() {
	if r.opts.Writers != nil {
		defer r.opts.Writers.Done()
	}
	defer close(r.done)
	flush := time.NewTicker(r.opts.FlushEvery)
	defer flush.Stop()
	fail := func(err error) {
		r.err = err
		r.failed.Store(true)
		r.opts.Log.Warn("recording write failed; recording stopped", "file", r.name(), "err", err)
		r.closeFile()
		r.discard()
	}
	// The writer wakes on a ticker and takes what has queued meanwhile, rather than waking
	// for every packet: with a hundred recordings at 100 packets/s each, a wake-up per packet
	// cost more CPU (scheduler, context switches) than writing the packets (measured with
	// rtpbridge-load -record pcap: 11.7 µs per forwarded packet with one wake-up per packet).
	drain := time.NewTicker(min(drainEvery, r.opts.FlushEvery))
	defer drain.Stop()
	for {
		select {
		case <-drain.C:
			if err := r.drain(); err != nil {
				fail(fmt.Errorf("write: %w", err))
				return
			}
		case <-flush.C:
			err := r.drain()
			if err == nil {
				err = r.sink.flush()
			}
			if err != nil {
				fail(fmt.Errorf("flush: %w", err))
				return
			}
		case <-r.stop:
			r.finish(fail)
			return
		}
	}
}

// drainEvery is how often the writer takes what has queued.
const drainEvery = 50 * time.Millisecond

// drain writes every queued entry (as many as were queued when it started, so a producer
// faster than the disk cannot keep it from flushing or stopping).
func (r *Recorder) drain() error {
	for n := len(r.queue); n > 0; n-- {
		e := <-r.queue
		err := r.sink.write(e)
		r.putEntry(e)
		if err != nil {
			return err
		}
	}
	return nil
}

// finish drains the queue, closes the sink and the file.
func (r *Recorder) finish(fail func(error)) {
	defer func() {
		if r.abortT != nil {
			r.abortT.Stop()
		}
	}()
	for {
		if r.aborted.Load() {
			r.err = errors.New("aborted: flush timeout")
			r.discard()
			return
		}
		select {
		case e := <-r.queue:
			err := r.sink.write(e)
			r.putEntry(e)
			if err != nil {
				if !r.aborted.Load() {
					fail(fmt.Errorf("write: %w", err))
				}
				return
			}
			continue
		default:
		}
		break
	}
	if err := r.sink.close(); err != nil {
		if !r.aborted.Load() {
			fail(fmt.Errorf("finish: %w", err))
		}
		return
	}
	if err := r.closeFile(); err != nil && !r.aborted.Load() {
		r.err = fmt.Errorf("close: %w", err)
	}
}

// discard returns whatever is still queued to the pool.
func (r *Recorder) discard() {
	for {
		select {
		case e := <-r.queue:
			r.putEntry(e)
		default:
			return
		}
	}
}
