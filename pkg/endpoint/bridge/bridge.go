// Package bridge implements session bridges (PROTOCOL.md §22 with D15): a pair of legs in two
// sessions, each a PCM leg at 48 kHz ("L16/48000"), joined by a small bounded ring each way.
// What a session routes to its half (WriteFrame, on that session's loop) is pushed into the
// ring; the partner half pops it on its own session's media clock (ReadFrame) and its session
// routes it like any other source's audio. Audio crosses the boundary as PCM, converted once:
// no codec between sessions.
//
// Bridge legs are relays (endpoint.Relay): a session never routes one bridge to another, so
// audio cannot circle through a chain of bridged sessions.
package bridge

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/mediaio"
)

// Rate is the bridge's PCM rate (L16 mono 48 kHz, §11).
const Rate = 48000

// frameSamples is one 20 ms frame at Rate.
const frameSamples = Rate * endpoint.FrameDuration / 1000

// ringFrames bounds each direction's ring: at most 160 ms between the sessions; a writer that
// runs ahead of its reader loses its oldest frames (counted) instead of adding latency.
const ringFrames = 8

// primeFrames is how much a ring holds before its reader starts taking frames, and again after
// it ran dry: the two sessions' clocks tick at the same rate in different phases, and one frame
// of slack keeps timer jitter from turning into gaps.
const primeFrames = 2

// ring carries 20 ms frames from one session to the other. Pushes and pops come from two
// session loops, hence the mutex; both are short copies.
type ring struct {
	mu      sync.Mutex
	frames  [ringFrames][frameSamples]int16
	head, n int
	primed  bool
	waited  int // ticks a short unprimed ring has waited for more
	dropped uint64
}

func (r *ring) push(frame []int16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == ringFrames {
		r.head = (r.head + 1) % ringFrames
		r.n--
		r.dropped++
	}
	copy(r.frames[(r.head+r.n)%ringFrames][:], frame)
	r.n++
}

// pop fills frame with the oldest frame if the reader may take one now.
func (r *ring) pop(frame []int16) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		r.primed, r.waited = false, 0
		return false
	}
	if !r.primed {
		// A lone frame (the end of a talk spurt) plays after one tick rather than waiting for
		// audio that may never come.
		if r.n < primeFrames && r.waited < 1 {
			r.waited++
			return false
		}
		r.primed, r.waited = true, 0
	}
	copy(frame, r.frames[r.head][:])
	r.head = (r.head + 1) % ringFrames
	r.n--
	return true
}

// pair is what both halves share.
type pair struct {
	closed atomic.Bool // the first half to close tells the other's session
}

// Leg is one half of a session bridge (endpoint type "bridge").
type Leg struct {
	id    uuid.UUID
	dir   endpoint.Direction
	state endpoint.State
	in    *ring // filled by the partner's session, read here
	out   *ring // filled here, read by the partner's session
	p     *pair

	onClose func() // set before Start; runs once, when this half closes first

	// Media-timeout bookkeeping (endpoint.MediaWatcher), session loop only.
	created, lastMedia time.Time
	timedOut           bool
}

var (
	_ endpoint.Leg            = (*Leg)(nil)
	_ endpoint.PCMMedia       = (*Leg)(nil)
	_ endpoint.Relay          = (*Leg)(nil)
	_ endpoint.CodecDescriber = (*Leg)(nil)
	_ endpoint.MediaWatcher   = (*Leg)(nil)
)

// Mirror is the partner half's direction for a half with direction d (D15): sendonly and
// recvonly swap, so both halves agree on which way audio flows.
func Mirror(d endpoint.Direction) endpoint.Direction {
	switch d {
	case endpoint.SendOnly:
		return endpoint.RecvOnly
	case endpoint.RecvOnly:
		return endpoint.SendOnly
	}
	return d
}

// NewPair returns the caller's half a (direction dir) and the target's half b (the mirror),
// both connected for life.
func NewPair(idA, idB uuid.UUID, dir endpoint.Direction) (a, b *Leg) {
	ab, ba := new(ring), new(ring)
	p := new(pair)
	now := time.Now()
	a = &Leg{id: idA, dir: dir, state: endpoint.StateConnected, in: ba, out: ab, p: p, created: now}
	b = &Leg{id: idB, dir: Mirror(dir), state: endpoint.StateConnected, in: ab, out: ba, p: p, created: now}
	return a, b
}

// OnClose sets what runs when this half is closed while its partner still lives (removal,
// session end): the session layer removes the partner from its session. Call before Start.
func (l *Leg) OnClose(fn func()) { l.onClose = fn }

// ID implements endpoint.Leg.
func (l *Leg) ID() uuid.UUID { return l.id }

// Type implements endpoint.Leg.
func (l *Leg) Type() string { return "bridge" }

// Direction implements endpoint.Leg.
func (l *Leg) Direction() endpoint.Direction { return l.dir }

// State implements endpoint.Leg.
func (l *Leg) State() endpoint.State { return l.state }

// SetState implements endpoint.Leg.
func (l *Leg) SetState(s endpoint.State) (endpoint.State, bool) {
	old := l.state
	l.state = s
	return old, old != s
}

// Start implements endpoint.Leg; a bridge has no transport.
func (l *Leg) Start(*mediaio.Worker, endpoint.Sink) error { return nil }

// Close implements endpoint.Leg. The first half to close runs its OnClose function.
func (l *Leg) Close() {
	if l.p.closed.CompareAndSwap(false, true) && l.onClose != nil {
		l.onClose()
	}
}

// Tick implements endpoint.Leg.
func (l *Leg) Tick(time.Time) {}

// RTP implements endpoint.Leg: a bridge speaks PCM.
func (l *Leg) RTP() endpoint.RTPMedia { return nil }

// PCM implements endpoint.Leg.
func (l *Leg) PCM() endpoint.PCMMedia { return l }

// Relay implements endpoint.Relay.
func (l *Leg) Relay() bool { return true }

// CodecName implements endpoint.CodecDescriber.
func (l *Leg) CodecName() string { return "L16/48000" }

// Rate implements endpoint.PCMMedia.
func (l *Leg) Rate() int { return Rate }

// ReadFrame implements endpoint.PCMMedia: the partner session's next 20 ms, if any.
func (l *Leg) ReadFrame(frame []int16, now time.Time) bool {
	if l.p.closed.Load() || !l.in.pop(frame) {
		return false
	}
	l.lastMedia, l.timedOut = now, false
	return true
}

// LastMedia implements endpoint.MediaWatcher: when the partner's audio last arrived.
func (l *Leg) LastMedia() time.Time { return l.lastMedia }

// MediaExpectedSince implements endpoint.MediaWatcher: a half whose session takes audio from
// it expects the partner's from its creation on; a half that only sends expects none.
func (l *Leg) MediaExpectedSince() time.Time {
	if !l.dir.Sends() {
		return time.Time{}
	}
	return l.created
}

// TimedOut implements endpoint.MediaWatcher.
func (l *Leg) TimedOut() bool { return l.timedOut }

// SetTimedOut implements endpoint.MediaWatcher.
func (l *Leg) SetTimedOut(v bool) { l.timedOut = v }

// WriteFrame implements endpoint.PCMMedia: 20 ms for the partner session.
func (l *Leg) WriteFrame(frame []int16, _ time.Time) {
	if l.p.closed.Load() {
		return
	}
	l.out.push(frame)
}

// Linked reports whether both halves are still open (neither has been closed).
func (l *Leg) Linked() bool { return !l.p.closed.Load() }

// Dropped reports frames this half wrote that its partner had no room for.
func (l *Leg) Dropped() uint64 {
	l.out.mu.Lock()
	defer l.out.mu.Unlock()
	return l.out.dropped
}
