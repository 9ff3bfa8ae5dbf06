package session

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

// EventSink receives the events of the session a connection is bound to.
type EventSink interface {
	// Emit queues an event for the client. It must never block: a slow client loses events,
	// never stalls a session (PROTOCOL.md §9).
	Emit(name string, data any)
}

// Session states (PROTOCOL.md §4).
const (
	StateActive   = "active"
	StateOrphaned = "orphaned"
)

// command is one unit of work for the session loop.
type command struct {
	method string
	fn     func(s *Session) (any, error)
	reply  chan reply // buffered (1): the loop never blocks on a caller that gave up
	// state makes a command that its caller gave up on (timeout) a no-op, so a client told
	// SESSION_UNRESPONSIVE never finds the command applied later behind its back.
	state atomic.Int32
}

const (
	cmdPending int32 = iota
	cmdRunning
	cmdAbandoned
)

// abandon marks a queued command as not to be run; false if it is already running.
func (c *command) abandon() bool { return c.state.CompareAndSwap(cmdPending, cmdAbandoned) }

type reply struct {
	result any
	err    error
}

// Session is one media session. Its exported methods are safe for concurrent use; everything
// else is owned by the goroutine running run.
type Session struct {
	id        uuid.UUID
	createdAt time.Time
	mgr       *Manager

	cmds   chan *command
	detach chan EventSink // a connection bound to this session went away
	failed chan struct{}  // a media worker hit a bug in this session's packet path
	quit   chan struct{}  // closed by kill: end now
	done   chan struct{}  // closed when the loop has finished tearing down
	killMu sync.Once

	// Snapshots the loop publishes for lock-free listing.
	stateSnap     atomic.Value // string
	endpointCount atomic.Int64

	// mu guards what the session loop shares with its media worker: the media state, sink and
	// lastActivity. The worker only ever try-locks it (see mediaState.Packet).
	mu sync.Mutex

	// Owned by the loop.
	sink         EventSink
	orphanTimer  *time.Timer
	lastActivity time.Time
	emptySince   time.Time // zero while the session has endpoints
	ending       bool
	media        *mediaState
	recs         recordings // recording_methods.go, recording.go
	dtmf         dtmfState  // dtmf.go, dtmf_methods.go
}

func newSession(m *Manager, sink EventSink) *Session {
	now := time.Now()
	s := &Session{
		id:           uuid.New(),
		createdAt:    now,
		mgr:          m,
		cmds:         make(chan *command, commandQueueSize),
		detach:       make(chan EventSink, 4),
		failed:       make(chan struct{}, 1),
		quit:         make(chan struct{}),
		done:         make(chan struct{}),
		sink:         sink,
		lastActivity: now,
		emptySince:   now,
	}
	s.stateSnap.Store(StateActive)
	s.media = newMediaState(s)
	return s
}

// ID is the session's UUID.
func (s *Session) ID() uuid.UUID { return s.id }

// CreatedAt is when the session was created.
func (s *Session) CreatedAt() time.Time { return s.createdAt }

// Done is closed once the session has ended and released its resources.
func (s *Session) Done() <-chan struct{} { return s.done }

// Ended reports whether the session has ended.
func (s *Session) Ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Session) summary() Summary {
	return Summary{
		SessionID:     s.id.String(),
		State:         s.stateSnap.Load().(string),
		EndpointCount: int(s.endpointCount.Load()),
		CreatedAt:     FormatTime(s.createdAt),
	}
}

// FormatTime renders t as PROTOCOL.md §4 wants created_at: RFC 3339 UTC with Z and fractional
// seconds only when non-zero, trailing zeros dropped (which is exactly RFC3339Nano).
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

var (
	errGone         = protocol.Errorf(protocol.CodeSessionGone, "Session has ended")
	errUnresponsive = protocol.Errorf(protocol.CodeSessionUnresponsive, "Session did not respond in time")
)

// Do runs fn on the session loop and returns its result. Enqueueing and the reply each wait at
// most the manager's command timeout (SESSION_UNRESPONSIVE); a session that ends first yields
// SESSION_GONE.
func (s *Session) Do(method string, fn func(s *Session) (any, error)) (any, error) {
	cmd := &command{method: method, fn: fn, reply: make(chan reply, 1)}
	timeout := s.mgr.opts.CommandTimeout
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case s.cmds <- cmd:
	case <-s.done:
		return nil, errGone
	case <-t.C:
		return nil, errUnresponsive
	}
	t.Reset(timeout)
	defer cmd.abandon()
	select {
	case r := <-cmd.reply:
		return r.result, r.err
	case <-s.done:
		// The loop may have answered just before it finished.
		select {
		case r := <-cmd.reply:
			return r.result, r.err
		default:
			return nil, errGone
		}
	case <-t.C:
		return nil, errUnresponsive
	}
}

// attach binds sink to the session if it is orphaned. The command is only queued if there is
// room right now (SESSION_BUSY otherwise, PROTOCOL.md §3).
func (s *Session) attach(sink EventSink) error {
	cmd := &command{method: "session.attach", reply: make(chan reply, 1), fn: func(s *Session) (any, error) {
		if s.sink != nil {
			return nil, protocol.Errorf(protocol.CodeSessionNotOrphaned, "Session is not orphaned")
		}
		s.sink = sink
		if s.orphanTimer != nil {
			s.orphanTimer.Stop()
			s.orphanTimer = nil
		}
		s.stateSnap.Store(StateActive)
		s.mgr.log.Info("session attached", "session_id", s.id)
		return nil, nil
	}}
	select {
	case s.cmds <- cmd:
	case <-s.done:
		return protocol.Errorf(protocol.CodeSessionNotFound, "Session not found")
	default:
		return protocol.Errorf(protocol.CodeSessionBusy, "Session command queue is full")
	}
	t := time.NewTimer(s.mgr.opts.CommandTimeout)
	defer t.Stop()
	defer cmd.abandon()
	select {
	case r := <-cmd.reply:
		return r.err
	case <-s.done:
		return protocol.Errorf(protocol.CodeSessionNotFound, "Session not found")
	case <-t.C:
		return errUnresponsive
	}
}

// Detach tells the session that sink's connection is gone: the session becomes orphaned and
// starts its disconnect timer. It never blocks for long: the detach channel has room for every
// connection that can be bound at once.
func (s *Session) Detach(sink EventSink) {
	select {
	case s.detach <- sink:
	case <-s.done:
	case <-time.After(s.mgr.opts.CommandTimeout):
		s.mgr.log.Warn("session did not take a detach in time", "session_id", s.id)
	}
}

// Destroy ends the session (session.destroy): the reply comes at once, teardown follows.
func (s *Session) Destroy() error {
	_, err := s.Do("session.destroy", func(s *Session) (any, error) {
		s.ending = true
		return nil, nil
	})
	var perr *protocol.Error
	if errors.As(err, &perr) && perr.Code == protocol.CodeSessionGone {
		return protocol.Errorf(protocol.CodeSessionNotFound, "Session not found")
	}
	return err
}

// kill asks the loop to end as soon as it can (process exit).
func (s *Session) kill() { s.killMu.Do(func() { close(s.quit) }) }

// emit sends an event to the bound connection, if any. While orphaned, events are discarded
// uncounted (PROTOCOL.md §9).
func (s *Session) emit(name string, data any) {
	if s.sink != nil {
		s.sink.Emit(name, data)
	}
}

// run is the session loop.
func (s *Session) run() {
	defer s.teardown()
	defer func() {
		// A bug reached by one session's media must end that session, not the process: the
		// teardown above still releases its sockets and tells the manager.
		if r := recover(); r != nil {
			s.mgr.log.Error("panic in session loop; ending the session", "session_id", s.id, "panic", r)
		}
	}()
	tick := time.NewTicker(s.mgr.opts.TickInterval)
	defer tick.Stop()
	for !s.ending {
		var orphanC <-chan time.Time
		if s.orphanTimer != nil {
			orphanC = s.orphanTimer.C
		}
		// Everything a media worker also reaches (media state, the bound sink, activity) is
		// touched under s.mu; waiting in select is not.
		select {
		case cmd := <-s.cmds:
			if !cmd.state.CompareAndSwap(cmdPending, cmdRunning) {
				continue // its caller has given up
			}
			var r reply
			s.locked(func() {
				s.lastActivity = time.Now()
				if hook := s.mgr.opts.BeforeCommand; hook != nil {
					hook(cmd.method)
				}
				r.result, r.err = s.execAside(cmd)
			})
			cmd.reply <- r
		case sink := <-s.detach:
			s.locked(func() {
				s.lastActivity = time.Now()
				if s.sink == sink {
					s.sink = nil
					s.orphanTimer = time.NewTimer(s.mgr.opts.DisconnectTimeout)
					s.stateSnap.Store(StateOrphaned)
					s.mgr.log.Info("session orphaned", "session_id", s.id, "timeout", s.mgr.opts.DisconnectTimeout)
				}
			})
		case <-orphanC:
			s.mgr.log.Info("orphaned session timed out", "session_id", s.id)
			s.ending = true
		case now := <-tick.C:
			s.locked(func() { s.checkTimers(now) })
		case <-s.media.queue.ready:
			s.locked(s.media.handleQueued)
		case <-s.media.clockKick:
			s.locked(s.media.clockKicked)
		case <-s.media.statsC():
			s.locked(func() { s.media.emitStats(time.Now()) })
		case ev := <-s.media.events:
			s.locked(func() { s.handleMediaEvent(ev) })
		case <-s.failed:
			s.ending = true
		case <-s.quit:
			s.ending = true
		}
	}
}

// locked runs fn under the session's lock, releasing it even if fn panics.
func (s *Session) locked(fn func()) {
	s.lock()
	defer s.unlock()
	fn()
}

// lock takes the session's lock and borrows the packet scratch its endpoints use meanwhile.
func (s *Session) lock() {
	s.mu.Lock()
	s.media.scratch.Borrow()
}

// tryLock is lock if the lock is free right now.
func (s *Session) tryLock() bool {
	if !s.mu.TryLock() {
		return false
	}
	s.media.scratch.Borrow()
	return true
}

func (s *Session) unlock() {
	s.media.scratch.Return()
	s.mu.Unlock()
}

// fail ends the session from a media worker (a panic in its packet path): the loop tears it
// down. It never blocks.
func (s *Session) fail() {
	select {
	case s.failed <- struct{}{}:
	default:
	}
}

// execAside runs a command on a short-lived goroutine while the loop waits (still holding the
// session's lock for it). Commands go deep (SDP, endpoint set-up, JSON): run on the loop, they
// would grow its stack to tens of KiB, and a long-lived goroutine keeps a grown stack until
// the garbage collector shrinks it, a few cycles later; with thousands of mostly idle
// sessions those stacks are a large share of the memory. The extra goroutine costs about a
// microsecond per command.
func (s *Session) execAside(cmd *command) (res any, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = s.safeExec(cmd)
	}()
	<-done
	return res, err
}

// safeExec runs a command, turning a panic into an error so that one bad request can never take
// the process down.
func (s *Session) safeExec(cmd *command) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.mgr.log.Error("panic in session command", "session_id", s.id, "method", cmd.method, "panic", r)
			res, err = nil, protocol.Errorf(protocol.CodeInternalError, "internal error in %s", cmd.method)
		}
	}()
	return cmd.fn(s)
}

func (s *Session) checkTimers(now time.Time) {
	if d := s.mgr.opts.IdleTimeout; d > 0 && now.Sub(s.lastActivity) >= d {
		s.emit(protocol.EventSessionIdleTimeout, map[string]any{
			"session_id": s.id.String(), "idle_timeout_secs": int64(d / time.Second),
		})
		s.mgr.log.Info("session idle timeout", "session_id", s.id)
		s.ending = true
		return
	}
	if d := s.mgr.opts.EmptyTimeout; d > 0 && !s.emptySince.IsZero() && now.Sub(s.emptySince) >= d {
		s.emit(protocol.EventSessionEmptyTimeout, map[string]any{
			"session_id": s.id.String(), "empty_timeout_secs": int64(d / time.Second),
		})
		s.mgr.log.Info("session empty timeout", "session_id", s.id)
		s.ending = true
		return
	}
	s.recordingsTick(now)
	s.dtmfTick(now)
	s.media.tick(now)
}

// touch records activity (a packet, a playing file) for the idle timeout.
func (s *Session) touch(now time.Time) { s.lastActivity = now }

// endpointsChanged keeps the empty-session clock and the published count in step.
func (s *Session) endpointsChanged(n int, now time.Time) {
	s.endpointCount.Store(int64(n))
	if n == 0 {
		if s.emptySince.IsZero() {
			s.emptySince = now
		}
	} else {
		s.emptySince = time.Time{}
	}
}

func (s *Session) teardown() {
	s.locked(func() { s.stopAllRecordings(reasonSessionDestroyed, time.Now()) })
	s.locked(s.media.close)
	if s.orphanTimer != nil {
		s.orphanTimer.Stop()
	}
	s.mgr.remove(s)
	close(s.done)
	// Fail whatever is still queued instead of leaving callers to time out.
	for {
		select {
		case cmd := <-s.cmds:
			cmd.reply <- reply{err: errGone}
		default:
			s.mgr.log.Info("session ended", "session_id", s.id)
			return
		}
	}
}
