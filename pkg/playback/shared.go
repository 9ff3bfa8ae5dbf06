package playback

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
)

// Shared playback (PROTOCOL.md §18): every endpoint with shared: true on the same source
// reads one decoder's frames. The stream keeps the last sharedBuffer frames, so a subscriber
// that falls behind (a late session clock) catches up from there; one further behind, and one
// that resumes after a pause, rejoins where the stream is. The stream moves on as its most
// advanced subscriber reads (head); a worker keeps sharedAhead frames decoded past head.
// Stream end finishes every subscriber; the decoder stops when the last one leaves.
const (
	sharedBuffer = 128
	sharedAhead  = 8
	sharedFrames = sharedBuffer + sharedAhead
)

type sharedStream struct {
	key      string
	rate     int
	frameLen int

	mu      sync.Mutex
	rd      *reader
	frames  []int16 // sharedFrames slots of frameLen samples; frame i is in slot i % sharedFrames
	written int64   // frames decoded so far
	head    int64   // the next frame of the most advanced subscriber
	end     int64   // number of frames in the stream once the decoder reached its end, else -1
	err     error
	busy    bool
	stopped bool
	subs    int
	scratch []int16
	pool    *pool
	fillJob func() // st.fill, made once
	// tracks are the stream at the other rates its subscribers' sessions asked for
	// (File.SelectRate): a thousand sessions playing a 16 kHz file into PCMU legs share one
	// 16 → 8 kHz resampler instead of running one each.
	tracks []*rateTrack
}

// rateTrack is the stream resampled to one other rate. A frame is resampled when the first
// subscriber at that rate reads it (under the stream's lock); frame i is in slot
// i % sharedFrames, as in the stream's own buffer.
type rateTrack struct {
	rate     int
	frameLen int
	rs       *codec.Resampler
	frames   []int16
	next     int64   // the next stream frame to resample; -1 before the first
	out      []int16 // the resampler's output, reused
}

// maxTrackCatchUp bounds the frames one read resamples to bring a track up to date: a track
// nobody read for longer (its subscribers paused) resumes at the frame asked for.
const maxTrackCatchUp = 8

// trackFor returns the stream's track at rate, creating it. Frames at the stream's rate must
// map onto whole frames at rate (every usual rate does: 44.1 kHz has 882 samples per 20 ms,
// 8 kHz 160), so each track frame is exactly one stream frame.
func (st *sharedStream) trackFor(rate int) (*rateTrack, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped {
		return nil, errors.New("playback: shared stream stopped")
	}
	for _, tr := range st.tracks {
		if tr.rate == rate {
			return tr, nil
		}
	}
	n := endpoint.FrameSamples(rate)
	if n*st.rate != st.frameLen*rate {
		return nil, fmt.Errorf("playback: %d Hz frames do not map onto %d Hz frames", st.rate, rate)
	}
	rs, err := codec.NewStreamResampler(st.rate, rate)
	if err != nil {
		return nil, err
	}
	tr := &rateTrack{rate: rate, frameLen: n, rs: rs, frames: make([]int16, sharedFrames*n), next: -1, out: make([]int16, 0, 2*n)}
	st.tracks = append(st.tracks, tr)
	return tr, nil
}

// frame returns stream frame i at the track's rate, resampling what the track lacks up to it
// (st.mu held; frame i is in the stream's buffer, so every frame before it back to the
// track's position is too).
func (tr *rateTrack) frame(st *sharedStream, i int64) []int16 {
	if tr.next < 0 || i >= tr.next+maxTrackCatchUp || i < tr.next-sharedBuffer {
		tr.next = i
	}
	for ; tr.next <= i; tr.next++ {
		in := st.frames[int(tr.next%sharedFrames)*st.frameLen:][:st.frameLen]
		dst := tr.frames[int(tr.next%sharedFrames)*tr.frameLen:][:tr.frameLen]
		out, err := tr.rs.Resample(tr.out[:0], in)
		tr.out = out[:0]
		if err != nil {
			out = nil // a frame of silence; the stream goes on
		}
		// The stream resampler returns exactly one frame per frame (see trackFor); should it
		// ever return less, the rest is silence rather than stale samples.
		clear(dst[copy(dst, out):])
	}
	return tr.frames[int(i%sharedFrames)*tr.frameLen:][:tr.frameLen]
}

// joinShared subscribes to the stream of key, starting it with open (which applies the first
// subscriber's start_ms, loop_count and gain) when there is none. open runs without any lock
// held: two first subscribers may race, and the loser's decoder is closed.
func (s *Service) joinShared(key string, open func() (*reader, error)) (*sharedStream, error) {
	if st := s.subscribe(key); st != nil {
		return st, nil
	}
	rd, err := open()
	if err != nil {
		return nil, err
	}
	rate := rd.rate()
	n := endpoint.FrameSamples(rate)
	st := &sharedStream{key: key, rate: rate, frameLen: n, rd: rd, end: -1, subs: 1, pool: s.pool,
		frames: make([]int16, sharedFrames*n), scratch: make([]int16, n)}
	st.fillJob = st.fill
	s.sharedMu.Lock()
	if other := s.subscribeLocked(key); other != nil {
		s.sharedMu.Unlock()
		rd.close()
		return other, nil
	}
	s.shared[key] = st
	s.sharedMu.Unlock()
	st.mu.Lock()
	st.kick()
	st.mu.Unlock()
	return st, nil
}

func (s *Service) subscribe(key string) *sharedStream {
	s.sharedMu.Lock()
	defer s.sharedMu.Unlock()
	return s.subscribeLocked(key)
}

func (s *Service) subscribeLocked(key string) *sharedStream {
	st := s.shared[key]
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped || st.end >= 0 || st.err != nil {
		return nil // ended: a new subscriber starts a new stream
	}
	st.subs++
	return st
}

// leave drops one subscriber; the last one stops the decoder.
func (st *sharedStream) leave(s *Service) {
	st.mu.Lock()
	st.subs--
	last := st.subs == 0
	var rd *reader
	if last {
		st.stopped = true
		for _, tr := range st.tracks {
			tr.rs.Close()
		}
		st.tracks = nil
		if !st.busy {
			rd, st.rd = st.rd, nil
		}
	}
	st.mu.Unlock()
	if last {
		s.forget(st)
	}
	if rd != nil {
		rd.close()
	}
}

// forget removes st from the registry if it is still the stream of its key.
func (s *Service) forget(st *sharedStream) {
	s.sharedMu.Lock()
	if s.shared[st.key] == st {
		delete(s.shared, st.key)
	}
	s.sharedMu.Unlock()
}

// kick asks a worker to decode ahead of head (st.mu held).
func (st *sharedStream) kick() {
	if st.busy || st.stopped || st.end >= 0 || st.err != nil || st.written >= st.head+sharedAhead/2 {
		return
	}
	st.busy = true
	if !st.pool.submit(st.fillJob) {
		st.busy = false
	}
}

// fill runs on a worker: it decodes frames until sharedAhead are ready past head.
func (st *sharedStream) fill() {
	for {
		st.mu.Lock()
		if st.stopped {
			rd := st.rd
			st.rd, st.busy = nil, false
			st.mu.Unlock()
			if rd != nil {
				rd.close()
			}
			return
		}
		if st.written >= st.head+sharedAhead || st.end >= 0 || st.err != nil {
			st.busy = false
			st.mu.Unlock()
			return
		}
		st.mu.Unlock()
		n, err := st.rd.read(st.scratch)
		clear(st.scratch[n:])
		st.mu.Lock()
		if n > 0 {
			slot := int(st.written%sharedFrames) * st.frameLen
			copy(st.frames[slot:slot+st.frameLen], st.scratch)
			st.written++
		}
		switch {
		case errors.Is(err, io.EOF):
			st.end = st.written
		case err != nil:
			st.err = err
			st.end = st.written
		}
		st.mu.Unlock()
	}
}

// readShared is ReadFrame for a subscriber.
func (f *File) readShared(frame []int16) bool {
	st := f.stream
	st.mu.Lock()
	if !f.joined {
		f.cursor, f.joined = st.head, true
	}
	var ok, done bool
	switch f.state {
	case endpoint.StatePlaying:
		if f.cursor < st.written-sharedBuffer {
			f.cursor = st.head // fell too far behind: rejoin
		}
		if f.cursor < st.written {
			if f.track != nil {
				copy(frame, f.track.frame(st, f.cursor))
			} else {
				slot := int(f.cursor%sharedFrames) * st.frameLen
				copy(frame, st.frames[slot:slot+st.frameLen])
			}
			f.cursor++
			st.head = max(st.head, f.cursor)
			ok = true
		}
		done = st.end >= 0 && f.cursor >= st.end
	case endpoint.StatePaused:
		// Stream end finishes paused subscribers too, once the others have played it out.
		done = st.end >= 0 && st.head >= st.end
	}
	err := st.err
	st.kick()
	st.mu.Unlock()
	switch {
	case done && err != nil:
		f.fail(err)
	case done:
		f.finish()
	}
	return ok
}
