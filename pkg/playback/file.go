package playback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/mediaio"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

// FileOptions are the parameters of endpoint.create_with_file (PROTOCOL.md §6) and the
// session's hooks.
type FileOptions struct {
	Source string
	// Start is start_ms: where playback starts and every loop restarts.
	Start time.Duration
	// Loops is loop_count: extra plays; negative means forever.
	Loops int64
	// CacheTTL is cache_ttl_secs (URL sources).
	CacheTTL time.Duration
	// Shared plays from one decoder shared by every endpoint on the same source (§18).
	Shared bool
	// Timeout is timeout_ms: the whole download's deadline (URL sources).
	Timeout time.Duration
	// Headers are sent with the download request (URL sources).
	Headers map[string]string
	// GainDB is gain_db.
	GainDB float32
	// Ready runs on the session loop when a URL source has been fetched and opened, just
	// before the leg turns playing: Rate is known from then on.
	Ready func()
	// Remove runs on the session loop when the file fails after creation (a download or
	// decode error): the session removes the endpoint; endpoint.file.finished with reason
	// error follows.
	Remove func()
}

// Frames a file keeps decoded ahead of its session's clock, and the level below which its
// worker is asked for more: 320 ms and 240 ms, so a worker has 240 ms to get to it before
// the file stalls (on a loaded machine a worker can wait that long for a CPU).
const (
	aheadFrames = 16
	lowFrames   = 12
)

// File is a file endpoint: a sendonly PCM leg that plays a local file or a URL (PROTOCOL.md
// §10). Its audio comes from its own decoder (see fill) or from a shared stream; either way a
// worker decodes ahead and ReadFrame only copies.
type File struct {
	id     uuid.UUID
	svc    *Service
	opts   FileOptions
	remote bool
	// key is the shared stream's key and shared_playback_id: the resolved local path or the
	// URL's cache key.
	key  string
	sink endpoint.Sink

	// Owned by the session loop.
	state    endpoint.State
	rate     int
	closed   bool
	finished bool
	cancel   context.CancelFunc // stops a URL fetch
	release  func()             // gives back the cache entry a URL source plays from

	// Unshared playback: the ring and the decoder, guarded by mu. While busy a worker owns
	// rd (and scratch); seek requests and Close leave it a note.
	mu          sync.Mutex
	rd          *reader
	ring        ring
	frameLen    int
	busy        bool
	ended       bool  // the decoder reached the end of the last play
	err         error // the decoder failed
	gen         uint64
	seekPending bool
	seekTo      time.Duration
	stopped     bool // Close was called: the worker frees rd
	scratch     []int16
	fillJob     func() // f.fill, made once: a method value allocates

	// Shared playback. track is the stream at the rate the session selected, nil for the
	// stream's own rate.
	stream *sharedStream
	track  *rateTrack
	cursor int64
	joined bool
}

var _ endpoint.Leg = (*File)(nil)
var _ endpoint.PCMMedia = (*File)(nil)
var _ endpoint.RateSelector = (*File)(nil)

// Open creates a file endpoint. A local source is resolved, opened, positioned at start_ms
// and its first 160 ms decoded before Open returns, so every local failure is an error here
// (the caller then answers ENDPOINT_ERROR); this does disk I/O and must not run on a session
// loop. A URL source only has its syntax checked: it starts buffering and is fetched once the
// leg is started.
func (s *Service) Open(id uuid.UUID, o FileOptions) (*File, error) {
	f := &File{id: id, svc: s, opts: o, state: endpoint.StatePlaying}
	if IsURL(o.Source) {
		u, err := url.Parse(o.Source)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("invalid URL")
		}
		if s.cache == nil {
			return nil, errors.New("URL playback is disabled (no cache_dir)")
		}
		f.remote, f.state, f.rate = true, endpoint.StateBuffering, 8000
		f.key = URLKey(o.Source, o.Headers)
		return f, nil
	}
	path, err := s.resolveLocal(o.Source)
	if err != nil {
		return nil, err
	}
	f.key = path
	if err := f.openSource(path); err != nil {
		return nil, err
	}
	return f, nil
}

// openSource opens the decoder (or joins the shared stream) for path and decodes ahead. It
// runs off the session loop: in Open, or on a URL fetch's goroutine.
func (f *File) openSource(path string) error {
	if f.opts.Shared {
		st, err := f.svc.joinShared(f.key, func() (*reader, error) {
			return openReader(path, f.opts.Start, f.opts.Loops, f.opts.GainDB)
		})
		if err != nil {
			return err
		}
		f.stream, f.rate = st, st.rate
		st.mu.Lock()
		f.cursor, f.joined = st.head, true // joins where the stream is now
		st.mu.Unlock()
		return nil
	}
	rd, err := openReader(path, f.opts.Start, f.opts.Loops, f.opts.GainDB)
	if err != nil {
		return err
	}
	f.rd, f.rate = rd, rd.rate()
	f.frameLen = endpoint.FrameSamples(f.rate)
	f.ring = newRing(aheadFrames * f.frameLen)
	f.scratch = make([]int16, 2*f.frameLen)
	// Prime the ring here, off the loop, so the first frame is ready; a file that yields
	// nothing at all (start_ms at its very end) is a bad start.
	n, err := rd.read(f.scratch[:f.frameLen])
	if n == 0 {
		rd.close()
		f.rd = nil
		if err == nil || errors.Is(err, io.EOF) {
			return fmt.Errorf("start_ms %d is past the end of the file", f.opts.Start.Milliseconds())
		}
		return err
	}
	f.ring.write(f.scratch[:n])
	switch {
	case errors.Is(err, io.EOF):
		f.ended = true
	case err != nil:
		f.err = err
	}
	return nil
}

// ID implements endpoint.Leg.
func (f *File) ID() uuid.UUID { return f.id }

// Type implements endpoint.Leg.
func (f *File) Type() string { return "file" }

// Direction implements endpoint.Leg: files only send.
func (f *File) Direction() endpoint.Direction { return endpoint.SendOnly }

// State implements endpoint.Leg.
func (f *File) State() endpoint.State { return f.state }

// SetState implements endpoint.Leg.
func (f *File) SetState(st endpoint.State) (endpoint.State, bool) {
	old := f.state
	f.state = st
	return old, old != st
}

// SharedPlaybackID is session.info's shared_playback_id: "" unless shared.
func (f *File) SharedPlaybackID() string {
	if !f.opts.Shared {
		return ""
	}
	if IsURL(f.opts.Source) {
		// §4: the SHA-1 hex of the URL itself; the sharing key also covers the headers.
		return URLKey(f.opts.Source, nil)
	}
	return f.key
}

// Start implements endpoint.Leg: a URL source starts its fetch.
func (f *File) Start(_ *mediaio.Worker, sink endpoint.Sink) error {
	f.sink = sink
	if f.remote {
		ctx, cancel := context.WithCancel(context.Background())
		f.cancel = cancel
		go f.fetch(ctx)
	} else if f.stream == nil {
		f.mu.Lock()
		f.kick()
		f.mu.Unlock()
	}
	return nil
}

// fetch downloads (or finds in the cache) a URL source, opens it on this goroutine and hands
// the outcome to the session loop.
func (f *File) fetch(ctx context.Context) {
	path, release, err := f.svc.cache.get(ctx, f.opts.Source, f.opts.Headers, f.opts.Timeout, f.opts.CacheTTL)
	// A separate File value holds the opened source until the loop adopts it, so this
	// goroutine never writes fields the loop reads.
	tmp := &File{id: f.id, svc: f.svc, opts: f.opts, key: f.key}
	if err == nil {
		err = tmp.openSource(path)
	}
	discard := func() {
		tmp.stopped = true
		tmp.closeSource()
		if release != nil {
			release()
		}
	}
	if ctx.Err() != nil {
		discard()
		return
	}
	posted := f.sink.Post(func() {
		if f.closed {
			discard()
			return
		}
		if err != nil {
			f.fail(err)
			return
		}
		f.release = release
		f.rate, f.rd, f.ring, f.frameLen, f.scratch, f.ended, f.err = tmp.rate, tmp.rd, tmp.ring, tmp.frameLen, tmp.scratch, tmp.ended, tmp.err
		f.stream, f.track, f.cursor, f.joined = tmp.stream, nil, tmp.cursor, tmp.joined
		if f.opts.Ready != nil {
			f.opts.Ready()
		}
		f.sink.SetState(f, endpoint.StatePlaying)
		if f.stream == nil {
			f.mu.Lock()
			f.kick()
			f.mu.Unlock()
		}
	})
	if !posted {
		discard()
	}
}

// Close implements endpoint.Leg: it stops a fetch and frees the decoder (on the worker if
// one is using it) or leaves the shared stream.
func (f *File) Close() {
	if f.closed {
		return
	}
	f.closed = true
	if f.cancel != nil {
		f.cancel()
	}
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	f.closeSource()
	if f.release != nil {
		f.release()
		f.release = nil
	}
}

// closeSource frees the decoder unless a worker holds it (the worker then frees it), or
// leaves the shared stream.
func (f *File) closeSource() {
	if f.stream != nil {
		f.stream.leave(f.svc)
		f.stream, f.track = nil, nil
		return
	}
	f.mu.Lock()
	rd := f.rd
	if f.busy {
		rd = nil
	} else {
		f.rd = nil
	}
	f.mu.Unlock()
	if rd != nil {
		rd.close()
	}
}

// Tick implements endpoint.Leg.
func (f *File) Tick(time.Time) {}

// RTP implements endpoint.Leg: a file speaks PCM.
func (f *File) RTP() endpoint.RTPMedia { return nil }

// PCM implements endpoint.Leg.
func (f *File) PCM() endpoint.PCMMedia { return f }

// Rate implements endpoint.PCMMedia: the file's own sample rate (PROTOCOL.md D18), or the
// rate selected for a shared stream (SelectRate). A URL source reports 8000 until it has been
// fetched; it joins routing only after that.
func (f *File) Rate() int {
	if f.track != nil {
		return f.track.rate
	}
	return f.rate
}

// NativeRate implements endpoint.RateSelector: the file's own sample rate.
func (f *File) NativeRate() int { return f.rate }

// SelectRate implements endpoint.RateSelector. A shared stream resamples once per rate for
// all of its subscribers; an unshared file stays at its own rate (the session resamples it,
// once, as it would any source).
func (f *File) SelectRate(rate int) int {
	f.track = nil
	if f.stream == nil || rate <= 0 || rate == f.stream.rate {
		return f.rate
	}
	tr, err := f.stream.trackFor(rate)
	if err != nil {
		return f.rate
	}
	f.track = tr
	return rate
}

// WriteFrame implements endpoint.PCMMedia; a file is never sent audio.
func (f *File) WriteFrame([]int16, time.Time) {}

// ReadFrame implements endpoint.PCMMedia: the next 20 ms while playing. The frame that
// completes the last play also finishes the endpoint (endpoint.file.finished, completed).
func (f *File) ReadFrame(frame []int16, now time.Time) bool {
	if f.finished || f.closed {
		return false
	}
	if f.stream != nil {
		return f.readShared(frame)
	}
	if f.state != endpoint.StatePlaying || f.ring.buf == nil {
		return false
	}
	f.mu.Lock()
	ok := f.ring.read(frame)
	if !ok && (f.ended || f.err != nil) && f.ring.count > 0 {
		// The last, partial frame of the file, padded with silence.
		n := f.ring.take(frame)
		clear(frame[n:])
		ok = true
	}
	done := f.ring.count == 0 && f.ended
	err := f.err
	if f.ring.count > 0 {
		err = nil // play what was decoded before the failure first
	}
	f.kick()
	f.mu.Unlock()
	switch {
	case err != nil:
		f.fail(err)
	case done:
		f.finish()
	}
	return ok
}

// kick asks a worker to decode ahead when the ring runs low (f.mu held).
func (f *File) kick() {
	if f.busy || f.stopped || f.rd == nil || f.ended || f.err != nil {
		return
	}
	if !f.seekPending && f.ring.count >= lowFrames*f.frameLen {
		return
	}
	f.busy = true
	if f.fillJob == nil {
		f.fillJob = f.fill
	}
	if !f.svc.pool.submit(f.fillJob) {
		f.busy = false
	}
}

// fill runs on a worker: it decodes until the ring is full, carrying out a pending seek
// first. Audio decoded before a seek that arrived meanwhile is thrown away (gen).
func (f *File) fill() {
	for {
		f.mu.Lock()
		if f.stopped {
			rd := f.rd
			f.rd, f.busy = nil, false
			f.mu.Unlock()
			if rd != nil {
				rd.close()
			}
			return
		}
		seek, to := f.seekPending, f.seekTo
		f.seekPending = false
		gen, space := f.gen, f.ring.space()
		if !seek && (space < f.frameLen || f.ended || f.err != nil) {
			f.busy = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		if seek {
			if err := f.rd.seek(to); err != nil {
				f.mu.Lock()
				if f.gen == gen {
					f.err = err
				}
				f.mu.Unlock()
			}
			continue
		}
		n, err := f.rd.read(f.scratch[:min(space, len(f.scratch))])
		f.mu.Lock()
		if f.gen == gen {
			f.ring.write(f.scratch[:n])
			switch {
			case errors.Is(err, io.EOF):
				f.ended = true
			case err != nil:
				f.err = err
			}
		}
		f.mu.Unlock()
	}
}

// finish ends playback: state finished (no state_changed, §8) and endpoint.file.finished
// with reason completed and error null (D3).
func (f *File) finish() {
	f.finished = true
	f.state = endpoint.StateFinished
	f.sink.Emit(protocol.EventFileFinished, map[string]any{
		"endpoint_id": f.id.String(), "reason": "completed", "error": nil,
	})
}

// fail removes the endpoint (through the session) and then reports the failure.
func (f *File) fail(err error) {
	if f.finished {
		return
	}
	f.finished = true
	if f.opts.Remove != nil {
		f.opts.Remove()
	}
	f.sink.Emit(protocol.EventFileFinished, map[string]any{
		"endpoint_id": f.id.String(), "reason": "error", "error": err.Error(),
	})
}

// Seek is endpoint.file.seek: only while playing or paused, never on a shared stream. The
// buffered audio is dropped at once; a worker repositions the decoder.
func (f *File) Seek(pos time.Duration) error {
	if f.state != endpoint.StatePlaying && f.state != endpoint.StatePaused {
		return fmt.Errorf("Cannot seek in state %s", f.state)
	}
	if f.opts.Shared {
		return errors.New("Cannot seek in a shared playback")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ring.reset()
	f.gen++
	f.seekPending, f.seekTo = true, pos
	f.ended, f.err = false, nil
	f.kick()
	return nil
}

// Pause and Resume check endpoint.file.pause and resume (§6) and return the state to go to,
// or ok false for a no-op. The session changes the state (with its event).
func (f *File) Pause() (endpoint.State, bool, error) {
	switch f.state {
	case endpoint.StatePaused:
		return "", false, nil
	case endpoint.StatePlaying:
		return endpoint.StatePaused, true, nil
	}
	return "", false, fmt.Errorf("Cannot pause in state %s", f.state)
}

// Resume: see Pause. A shared subscriber rejoins the stream where it is now.
func (f *File) Resume() (endpoint.State, bool, error) {
	switch f.state {
	case endpoint.StatePlaying:
		return "", false, nil
	case endpoint.StatePaused:
		f.joined = false
		return endpoint.StatePlaying, true, nil
	}
	return "", false, fmt.Errorf("Cannot resume in state %s", f.state)
}
