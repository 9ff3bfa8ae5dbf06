package session

import (
	"sync"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
)

// clockShard drives the media clocks of a share of the sessions from one goroutine and one
// 20 ms ticker, instead of a ticker and a goroutine wake-up per session: with a thousand
// sessions playing music on hold, the per-session timers and wake-ups cost as much CPU as the
// frames themselves. On each tick it produces the due frames of every member whose frame work
// is cheap and bounded (inlineClock) under that session's lock, which it only try-locks; a
// busy session, or one whose frames are costly (Opus, G.722, mixing), is kicked instead and
// produces them on its own loop, so no session's work ever delays another's frames by more
// than a cheap frame's cost.
type clockShard struct {
	mu      sync.Mutex
	members []*mediaState // each knows its slot (mediaState.clockSlot)
	batch   []*mediaState // the tick's snapshot, reused

	wake chan struct{} // a member joined an empty shard
	stop chan struct{}
	done chan struct{}
}

func newClockShard() *clockShard {
	c := &clockShard{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// add makes m a member; it is a no-op if m already is one.
func (c *clockShard) add(m *mediaState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.clockSlot >= 0 {
		return
	}
	m.clockSlot = len(c.members)
	c.members = append(c.members, m)
	if len(c.members) == 1 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// remove ends m's membership; a tick already under way may still reach m once (clockFromShard
// checks under m's lock whether its clock still runs).
func (c *clockShard) remove(m *mediaState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := m.clockSlot
	if i < 0 {
		return
	}
	last := len(c.members) - 1
	c.members[i] = c.members[last]
	c.members[i].clockSlot = i
	c.members[last] = nil
	c.members = c.members[:last]
	m.clockSlot = -1
}

// close stops the shard's goroutine and waits for it.
func (c *clockShard) close() {
	close(c.stop)
	<-c.done
}

func (c *clockShard) run() {
	defer close(c.done)
	t := time.NewTicker(frameInterval)
	defer t.Stop()
	for {
		if c.empty() {
			// An idle server has no timer firing 50 times a second.
			t.Stop()
			select {
			case <-c.stop:
				return
			case <-c.wake:
			}
			t.Reset(frameInterval)
		}
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.tick()
		}
	}
}

func (c *clockShard) empty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.members) == 0
}

// tick runs every member's clock once. The member list is copied first, so sessions joining
// or leaving never wait for a tick's frames.
func (c *clockShard) tick() {
	c.mu.Lock()
	c.batch = append(c.batch[:0], c.members...)
	c.mu.Unlock()
	for i, m := range c.batch {
		m.clockFromShard()
		c.batch[i] = nil
	}
}

// clockFromShard is the shard's tick for this session: the due frames are produced right here
// when that is cheap and the session's lock is free, else the session loop is asked to.
func (m *mediaState) clockFromShard() {
	s := m.s
	if s.tryLock() {
		inline, running := m.clockInline, m.clockRunning
		if inline && running {
			m.clockTickSafe(time.Now())
		}
		s.unlock()
		if inline || !running {
			return
		}
	}
	select {
	case m.clockKick <- struct{}{}:
	default: // a kick is already pending; the loop's tick will produce every due frame
	}
}

// clockTickSafe is clockTick off the session loop: a panic there is a bug reached by this
// session's media and ends this session only, never the shard.
func (m *mediaState) clockTickSafe(now time.Time) {
	defer func() {
		if r := recover(); r != nil {
			m.s.mgr.log.Error("panic in media clock; ending the session", "session_id", m.s.id, "panic", r)
			m.s.fail()
		}
	}()
	m.clockTick(now)
}

// inlineClock reports whether a clock tick of this session is cheap enough to run on its
// shard: every route fed by the clock encodes G.711 (a table look-up per sample, plus at most
// a resampling), and no mixer is involved. Costlier frames (Opus, G.722, mixing, writing to
// other PCM legs) run on the session's own loop.
func (m *mediaState) inlineClock() bool {
	if len(m.mixers) > 0 {
		return false
	}
	for _, l := range m.legs {
		if l.pcm == nil || !l.ep.Direction().Sends() {
			continue
		}
		for _, r := range l.routes {
			if r.mode != modeTranscode || r.pipe == nil {
				return false
			}
			if c := r.pipe.enc.Codec(); c != codec.PCMU && c != codec.PCMA {
				return false
			}
		}
	}
	return true
}
