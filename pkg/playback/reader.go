package playback

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
)

// reader is one play-out of a file: its decoder plus the playback rules of
// endpoint.create_with_file (PROTOCOL.md §6, §18): the start position, which is also where
// every loop restarts, the number of extra plays, and the gain. It is used by one worker at a
// time.
type reader struct {
	src   *codec.FileSource
	start time.Duration
	loops int64 // extra plays left; negative: forever
	gain  float32
	unity bool
}

// maxLoopCount is loop_count's bound (PROTOCOL.md §6).
const maxLoopCount = 10000

// openReader opens path and positions it at start. A start at or past the end of the file is
// an error, as is a file with no audio at all.
func openReader(path string, start time.Duration, loops int64, gainDB float32) (*reader, error) {
	src, err := codec.OpenFile(path)
	if err != nil {
		return nil, err
	}
	r := &reader{src: src, start: start, loops: loops}
	r.setGain(gainDB)
	if start > 0 {
		if d := src.Duration(); d > 0 && start >= d {
			src.Close()
			return nil, fmt.Errorf("start_ms %d is past the end of the file (%d ms long)", start.Milliseconds(), d.Milliseconds())
		}
		if err := src.Seek(start); err != nil {
			src.Close()
			return nil, fmt.Errorf("seeking to start_ms %d: %w", start.Milliseconds(), err)
		}
	}
	return r, nil
}

// setGain sets gain_db: the linear factor 10^(dB/20), samples clipped (PROTOCOL.md §6).
func (r *reader) setGain(db float32) {
	g := math.Pow(10, float64(db)/20)
	switch {
	case db == 0 || math.IsNaN(g):
		r.gain, r.unity = 1, true
	case g > math.MaxFloat32:
		r.gain = math.MaxFloat32 // any sound clips to full scale
	default:
		r.gain = float32(g)
	}
}

// read fills dst, looping as the rules say, and returns how many samples it wrote: fewer than
// len(dst) only with io.EOF (the last play ended) or another error.
func (r *reader) read(dst []int16) (int, error) {
	n := 0
	emptyPlays := 0
	for n < len(dst) {
		k, err := r.src.Read(dst[n:])
		n += k
		if k > 0 {
			emptyPlays = 0
		}
		if errors.Is(err, io.EOF) {
			// A play that yields nothing (start at the very end) must not loop forever.
			if r.loops == 0 || emptyPlays > 1 {
				r.applyGain(dst[:n])
				return n, io.EOF
			}
			if r.loops > 0 {
				r.loops--
			}
			emptyPlays++
			if err := r.src.Seek(r.start); err != nil {
				r.applyGain(dst[:n])
				return n, fmt.Errorf("restarting the loop at start_ms %d: %w", r.start.Milliseconds(), err)
			}
			continue
		}
		if err != nil {
			r.applyGain(dst[:n])
			return n, err
		}
	}
	r.applyGain(dst[:n])
	return n, nil
}

func (r *reader) applyGain(pcm []int16) {
	if r.unity {
		return
	}
	for i, v := range pcm {
		x := float32(v) * r.gain
		switch {
		case x > math.MaxInt16:
			pcm[i] = math.MaxInt16
		case x < math.MinInt16:
			pcm[i] = math.MinInt16
		default:
			pcm[i] = int16(x)
		}
	}
}

// seek moves within the current play (endpoint.file.seek); loops left are unchanged.
func (r *reader) seek(pos time.Duration) error { return r.src.Seek(pos) }

func (r *reader) rate() int { return r.src.Rate() }

func (r *reader) close() { r.src.Close() }

// ring is a fixed-capacity FIFO of samples: the decoded audio a file has ready ahead of its
// session's media clock. It is guarded by its owner's lock.
type ring struct {
	buf   []int16
	r     int // read index
	count int
}

func newRing(capacity int) ring { return ring{buf: make([]int16, capacity)} }

func (q *ring) space() int { return len(q.buf) - q.count }

// write appends as much of p as fits and returns how much that was.
func (q *ring) write(p []int16) int {
	n := min(len(p), q.space())
	w := (q.r + q.count) % len(q.buf)
	c := copy(q.buf[w:], p[:n])
	copy(q.buf, p[c:n])
	q.count += n
	return n
}

// read fills dst from the ring if it holds that much, and reports whether it did.
func (q *ring) read(dst []int16) bool {
	if q.count < len(dst) {
		return false
	}
	q.take(dst)
	return true
}

// take moves min(len(dst), count) samples into dst and returns how many.
func (q *ring) take(dst []int16) int {
	n := min(len(dst), q.count)
	c := copy(dst[:n], q.buf[q.r:])
	copy(dst[c:n], q.buf)
	q.r = (q.r + n) % len(q.buf)
	q.count -= n
	return n
}

func (q *ring) reset() { q.r, q.count = 0, 0 }
