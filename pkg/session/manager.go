// Package session owns rtpbridge's sessions: the manager (create, attach, list, limits, draining)
// and the per-session loop, one goroutine that runs a session's commands and timers. Commands
// reach a session through a bounded queue and are answered within a bounded time (PROTOCOL.md
// §2.4). Packets are routed by the media worker that read them (package mediaio), under the
// session's one lock, which the worker only ever try-locks: a busy session queues its packets
// and never holds up another.
package session

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint/webrtc"
	"github.com/rtpbridge/rtpbridge/pkg/mediaio"
	"github.com/rtpbridge/rtpbridge/pkg/metrics"
	"github.com/rtpbridge/rtpbridge/pkg/playback"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/wsaudio"
)

// Options configure a Manager. Zero durations take the documented defaults.
type Options struct {
	// MaxSessions limits concurrent sessions; 0 means unlimited.
	MaxSessions int
	// DisconnectTimeout is how long an orphaned session waits for session.attach.
	DisconnectTimeout time.Duration
	// IdleTimeout ends a session without activity for that long; 0 disables it.
	IdleTimeout time.Duration
	// EmptyTimeout ends a session without endpoints for that long; 0 disables it.
	EmptyTimeout time.Duration
	// CommandTimeout bounds both the enqueue and the reply wait of a command (5 s).
	CommandTimeout time.Duration
	// TickInterval is how often a session loop checks its timers (at most 1 s).
	TickInterval time.Duration
	// Media is what endpoints need from the server (ports, SDP limits, codecs); see media.go.
	Media MediaOptions
	// Recording configures recording.start (recording.go).
	Recording RecordingOptions
	// InbandDTMF is inband_dtmf (PROTOCOL.md §31): "auto" ("" too), "always" or "off"; see
	// dtmf.go.
	InbandDTMF string
	// WebRTCPorts binds WebRTC endpoints' sockets (PROTOCOL.md §35); nil refuses WebRTC
	// endpoints.
	WebRTCPorts *webrtc.Ports
	// WSAudio accepts the audio sockets of WebSocket audio endpoints (PROTOCOL.md §30); nil
	// refuses endpoint.create_websocket.
	WSAudio *wsaudio.Hub
	// Playback serves file endpoints (decode workers, URL cache, shared decoders); nil disables
	// endpoint.create_with_file.
	Playback *playback.Service
	// BeforeCommand, when set, runs on the session loop before each command. Tests use it to
	// stall a session and exercise SESSION_UNRESPONSIVE and SESSION_BUSY.
	BeforeCommand func(method string)
}

const (
	defaultCommandTimeout = 5 * time.Second
	defaultTick           = 250 * time.Millisecond
	// commandQueueSize is PROTOCOL.md §28's session command queue.
	commandQueueSize = 64
)

// Manager is the set of live sessions.
type Manager struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics.Metrics

	mu       sync.Mutex
	sessions map[uuid.UUID]*Session
	changed  chan struct{} // closed and replaced whenever a session ends

	draining atomic.Bool
	wg       sync.WaitGroup // session loops
	writers  sync.WaitGroup // recording writers still draining (each bounded by its flush timeout)

	ownPoller bool // the poller was made here (no Options.Media.Poller) and is closed by Close

	clocks    []*clockShard // one per media worker; sessions take them round-robin
	nextClock atomic.Uint32
}

// NewManager returns an empty manager.
func NewManager(opts Options, log *slog.Logger, m *metrics.Metrics) *Manager {
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = defaultCommandTimeout
	}
	if opts.TickInterval <= 0 || opts.TickInterval > time.Second {
		opts.TickInterval = defaultTick
	}
	if opts.DisconnectTimeout <= 0 {
		opts.DisconnectTimeout = 30 * time.Second
	}
	own := false
	if opts.Media.Poller == nil {
		// Embedders and tests that give no poller get one of their own. epoll_create1 only
		// fails when the process is out of file descriptors at start-up.
		p, err := mediaio.New(0, log)
		if err != nil {
			panic(fmt.Sprintf("session: starting the media workers: %v", err))
		}
		opts.Media.Poller, own = p, true
	}
	clocks := make([]*clockShard, opts.Media.Poller.Workers())
	for i := range clocks {
		clocks[i] = newClockShard()
	}
	return &Manager{
		clocks:    clocks,
		ownPoller: own,
		opts:      opts,
		log:       log,
		metrics:   m,
		sessions:  make(map[uuid.UUID]*Session),
		changed:   make(chan struct{}),
	}
}

// CommandTimeout is the bound applied to each command's enqueue and reply.
func (m *Manager) CommandTimeout() time.Duration { return m.opts.CommandTimeout }

// DisconnectTimeout is the orphan grace period.
func (m *Manager) DisconnectTimeout() time.Duration { return m.opts.DisconnectTimeout }

// Create starts a new session bound to sink.
func (m *Manager) Create(sink EventSink) (*Session, error) {
	if m.draining.Load() {
		return nil, protocol.Errorf(protocol.CodeShuttingDown, "Server is shutting down")
	}
	m.mu.Lock()
	if m.opts.MaxSessions > 0 && len(m.sessions) >= m.opts.MaxSessions {
		m.mu.Unlock()
		return nil, protocol.Errorf(protocol.CodeMaxSessionsReached, "Maximum sessions (%d) reached", m.opts.MaxSessions)
	}
	s := newSession(m, sink)
	m.sessions[s.id] = s
	m.mu.Unlock()

	m.metrics.SessionsTotal.Inc()
	m.metrics.SessionsActive.Inc()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		s.run()
	}()
	m.log.Info("session created", "session_id", s.id)
	return s, nil
}

// Get returns the live session with that id, or nil.
func (m *Manager) Get(id uuid.UUID) *Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[id]
}

// Attach binds sink to an orphaned session (session.attach).
func (m *Manager) Attach(id uuid.UUID, sink EventSink) (*Session, error) {
	s := m.Get(id)
	if s == nil {
		return nil, protocol.Errorf(protocol.CodeSessionNotFound, "Session not found")
	}
	if err := s.attach(sink); err != nil {
		return nil, err
	}
	return s, nil
}

// Summary is one entry of session.list and GET /sessions.
type Summary struct {
	SessionID     string `json:"session_id"`
	State         string `json:"state"`
	EndpointCount int    `json:"endpoint_count"`
	CreatedAt     string `json:"created_at"`
}

// List describes every live session, oldest first. It reads snapshots the session loops keep
// up to date, so listing never waits on a busy session.
func (m *Manager) List() []Summary {
	m.mu.Lock()
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].createdAt.Before(all[j].createdAt) })
	out := make([]Summary, 0, len(all))
	for _, s := range all {
		out = append(out, s.summary())
	}
	return out
}

// Count is the number of live sessions.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// StartDrain refuses new sessions from now on (graceful shutdown, D21). Existing sessions,
// including orphans waiting for session.attach, carry on.
func (m *Manager) StartDrain() { m.draining.Store(true) }

// Draining reports whether StartDrain was called.
func (m *Manager) Draining() bool { return m.draining.Load() }

// WaitEmpty blocks until no session is left or ctx ends.
func (m *Manager) WaitEmpty(ctx context.Context) error {
	for {
		m.mu.Lock()
		n, ch := len(m.sessions), m.changed
		m.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close ends every session and waits for their loops to finish.
func (m *Manager) Close() {
	m.draining.Store(true)
	m.mu.Lock()
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		s.kill()
	}
	m.wg.Wait()
	// Sessions stopped their recordings as they ended; their files are complete only once
	// the writers have drained and closed them.
	m.writers.Wait()
	for _, c := range m.clocks {
		c.close()
	}
	if m.ownPoller {
		m.opts.Media.Poller.Close()
	}
}

// pickClockShard returns the clock shard for a new session.
func (m *Manager) pickClockShard() *clockShard {
	i := m.nextClock.Add(1) - 1
	return m.clocks[int(i%uint32(len(m.clocks)))]
}

// remove is called by a session loop as it ends.
func (m *Manager) remove(s *Session) {
	m.mu.Lock()
	if m.sessions[s.id] == s {
		delete(m.sessions, s.id)
		m.metrics.SessionsActive.Dec()
	}
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}
