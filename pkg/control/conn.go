package control

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/olahol/melody"

	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/session"
)

// writeWindow is how many text messages may sit in melody's output buffer at once. The real
// backlog lives in the two event queues, where drops are counted and critical events overtake
// normal ones; melody only ever holds a short window of already-ordered messages.
const writeWindow = 32

// requestQueueSize is how many requests of one connection may wait for the worker.
const requestQueueSize = 64

// conn is one WebSocket connection: its binding to a session, its two event queues and the
// rules for ordering responses and events on the wire (PROTOCOL.md §2.3, §9).
type conn struct {
	srv *Server
	ws  *melody.Session

	// mu serialises everything written to the socket: a request holds it from decoding to the
	// flush after its response, so that events caused by a command always follow its reply.
	mu sync.Mutex

	critical *eventQueue
	normal   *eventQueue
	dropped  atomic.Int64
	wake     chan struct{}
	credits  chan struct{}

	// requests feeds the connection's worker, which processes them one at a time, in order. The
	// reader only blocks when it is full, so pongs keep being read during slow commands.
	requests chan []byte
	// working is set while a worker runs (see kick); it stays set once the connection is dead.
	working atomic.Bool

	dead     chan struct{}
	deadOnce sync.Once

	// goodbye is the session.orphaned notice being written during a client-initiated close;
	// goodbyeSent is closed once melody has put it on the wire.
	goodbye     atomic.Pointer[[]byte]
	goodbyeSent chan struct{}

	// bound is written only by the worker; the Close handler reads it for the orphan notice.
	bound atomic.Pointer[session.Session]
}

func newConn(srv *Server, ws *melody.Session) *conn {
	return &conn{
		srv:      srv,
		ws:       ws,
		critical: newEventQueue(srv.opts.CriticalQueueSize),
		normal:   newEventQueue(srv.opts.EventQueueSize),
		wake:     make(chan struct{}, 1),
		credits:  make(chan struct{}, writeWindow),
		requests: make(chan []byte, requestQueueSize),
		dead:     make(chan struct{}),

		goodbyeSent: make(chan struct{}),
	}
}

// Emit implements session.EventSink. It is called from session loops and never blocks.
func (c *conn) Emit(name string, data any) {
	select {
	case <-c.dead:
		return // the session is about to be told; nothing to count
	default:
	}
	msg := marshalEvent(name, data)
	queued := protocol.IsCritical(name) && c.critical.push(msg)
	if !queued && !c.normal.push(msg) {
		c.dropped.Add(1)
		c.srv.metrics.EventsDropped.Inc()
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	c.kick()
}

// flushEvents writes the dropped-events notice (after a response), then every queued critical
// event, then normal events, letting critical events overtake at each step. Callers hold mu.
func (c *conn) flushEvents(afterResponse bool) {
	if afterResponse {
		c.writeDroppedNotice()
	}
	for {
		if msg, ok := c.critical.pop(); ok {
			c.write(msg)
			continue
		}
		if msg, ok := c.normal.pop(); ok {
			c.writeDroppedNotice()
			c.write(msg)
			continue
		}
		return
	}
}

func (c *conn) writeDroppedNotice() {
	if n := c.dropped.Swap(0); n > 0 {
		c.write(marshalEvent(protocol.EventEventsDropped, map[string]int64{"count": n}))
	}
}

// write hands one text message to melody once the write window has room. The wait is bounded:
// a client that reads nothing for the whole write deadline is disconnected.
func (c *conn) write(msg []byte) {
	t := time.NewTimer(c.srv.opts.WriteWait)
	defer t.Stop()
	select {
	case c.credits <- struct{}{}:
	case <-c.dead:
		return
	case <-t.C:
		c.srv.log.Warn("websocket client not reading; closing", "remote", c.ws.RemoteAddr())
		_ = c.ws.Close()
		c.markDead()
		return
	}
	if err := c.ws.Write(msg); err != nil {
		c.release()
	}
}

// release returns a write credit once melody has written a message (or dropped it).
func (c *conn) release() {
	select {
	case <-c.credits:
	default:
	}
}

// markDead ends the connection's work; a worker is started if none runs, to orphan the session.
func (c *conn) markDead() {
	c.deadOnce.Do(func() { close(c.dead) })
	c.kick()
}

// boundSession is the session this connection drives, unbinding it once it has ended (D20).
// Only the worker calls it.
func (c *conn) boundSession() *session.Session {
	s := c.bound.Load()
	if s != nil && s.Ended() {
		c.bound.Store(nil)
		return nil
	}
	return s
}

// kick makes sure a worker runs: one is started when none is. An idle connection has no
// worker goroutine (and no stack): with thousands of connections mostly waiting, that is a
// goroutine less per session; starting one per burst of requests costs about a microsecond.
func (c *conn) kick() {
	if c.working.CompareAndSwap(false, true) {
		go c.work()
	}
}

// work processes the connection's requests in order, and writes the events that arrive while
// no request is being processed, until there is nothing left to do; once the connection is
// gone it orphans the bound session and no worker runs again. At most one worker runs at a
// time (working).
func (c *conn) work() {
	for {
		if c.isDead() {
			// The connection is gone: no new worker may start (working stays set).
			if s := c.bound.Swap(nil); s != nil && !s.Ended() {
				s.Detach(c)
			}
			return
		}
		select {
		case frame := <-c.requests:
			c.handle(frame)
			continue
		case <-c.wake:
			c.mu.Lock()
			c.flushEvents(false)
			c.mu.Unlock()
			continue
		default:
		}
		// Nothing to do: stop, unless work arrived between the check and the stop (whoever
		// queued it saw working set and started no worker).
		c.working.Store(false)
		if len(c.requests) == 0 && len(c.wake) == 0 && !c.isDead() {
			return
		}
		if !c.working.CompareAndSwap(false, true) {
			return // another worker took over
		}
	}
}

func (c *conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// handle answers one request: the response, then the events it caused (§2.3).
func (c *conn) handle(frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.respondLocked(frame)
}

// respondLocked dispatches a request and writes its response and the pending events; the
// caller holds mu.
func (c *conn) respondLocked(frame []byte) {
	resp := c.srv.dispatch(c, frame)
	b, err := json.Marshal(resp)
	if err != nil {
		b = []byte(`{"error":{"code":"INTERNAL_ERROR","message":"serialize error"}}`)
	}
	c.write(b)
	c.flushEvents(true)
}

// marshalEvent encodes an event; if its data cannot be encoded, PROTOCOL.md §8's fallback goes.
func marshalEvent(name string, data any) []byte {
	b, err := json.Marshal(struct {
		Event string `json:"event"`
		Data  any    `json:"data"`
	}{name, data})
	if err != nil {
		return []byte(`{"event":"error","data":{}}`)
	}
	return b
}
