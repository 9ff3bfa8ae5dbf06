// Package control is rtpbridge's control plane: the WebSocket JSON protocol (via melody), request
// dispatch to sessions, per-connection event queues, and the plain HTTP API on the same listener.
// It never touches media state: everything about a session goes through the session package.
package control

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/olahol/melody"

	"github.com/rtpbridge/rtpbridge/pkg/metrics"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/session"
)

// Options configure the control plane.
type Options struct {
	// MaxMessageBytes bounds a WebSocket message (ws_max_message_size_kb × 1024).
	MaxMessageBytes int64
	// PingInterval is how often the server pings each client (ws_ping_interval_secs).
	PingInterval time.Duration
	// EventQueueSize and CriticalQueueSize size each connection's event queues.
	EventQueueSize    int
	CriticalQueueSize int
	// WriteWait bounds a single socket write and the wait for room to write (10 s).
	WriteWait time.Duration
	// RecordingsHandler serves /recordings routes; nil means 404 for them.
	RecordingsHandler http.Handler
	// AudioHandler takes WebSocket upgrades on /audio/<connect_token> (PROTOCOL.md §30); nil
	// treats them as control connections.
	AudioHandler http.Handler
}

// Server dispatches WebSocket requests and HTTP routes. It implements http.Handler.
type Server struct {
	opts    Options
	mgr     *session.Manager
	metrics *metrics.Metrics
	log     *slog.Logger
	ws      *melody.Melody
	api     http.Handler
}

// New wires a control plane to a session manager.
func New(opts Options, mgr *session.Manager, m *metrics.Metrics, log *slog.Logger) *Server {
	if opts.WriteWait <= 0 {
		opts.WriteWait = 10 * time.Second
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 30 * time.Second
	}
	s := &Server{opts: opts, mgr: mgr, metrics: m, log: log}

	ws := melody.New()
	ws.Config.MaxMessageSize = opts.MaxMessageBytes
	ws.Config.PingPeriod = opts.PingInterval
	// A peer is dead when two pings in a row go unanswered (the reader never waits on a
	// command, so pongs are read even while one is slow).
	ws.Config.PongWait = 2 * opts.PingInterval
	ws.Config.WriteWait = opts.WriteWait
	ws.Config.MessageBufferSize = writeWindow + 8
	ws.Upgrader.HandshakeTimeout = 10 * time.Second
	// Reads go through a small buffer of the connection's own (net/http's 4 KiB reader is let
	// go, see hijackTrimmer); write buffers come from a pool and are held only while a message
	// is written, so an idle connection keeps no write buffer of its own.
	ws.Upgrader.ReadBufferSize = controlReadBuffer
	ws.Upgrader.WriteBufferSize = 0
	ws.Upgrader.WriteBufferPool = &sync.Pool{}
	// Clients are applications, not browsers running third-party pages: any origin may connect.
	ws.Upgrader.CheckOrigin = func(*http.Request) bool { return true }
	// A failed handshake is answered (gorilla's status and body) and the connection closed
	// (§2.1): without Connection: close net/http would keep it open for another request.
	ws.Upgrader.Error = func(w http.ResponseWriter, _ *http.Request, status int, _ error) {
		w.Header().Set("Sec-Websocket-Version", "13")
		w.Header().Set("Connection", "close")
		http.Error(w, http.StatusText(status), status)
	}

	ws.HandleConnect(s.onConnect)
	ws.HandleDisconnect(s.onDisconnect)
	ws.HandleMessage(s.onMessage)
	ws.HandleMessageBinary(func(*melody.Session, []byte) {}) // binary frames are ignored (§2.1)
	ws.HandleSentMessage(func(ms *melody.Session, msg []byte) {
		if c := connOf(ms); c != nil {
			c.release()
			if g := c.goodbye.Load(); g != nil && &(*g)[0] == &msg[0] {
				close(c.goodbyeSent)
			}
		}
	})
	ws.HandleClose(s.onClose)
	ws.HandleError(s.onError)
	s.ws = ws
	s.api = s.routes()
	return s
}

// ServeHTTP accepts a WebSocket upgrade on any path (D2) and serves the HTTP API otherwise.
// Every answer that is not a completed upgrade closes the connection (§2.1, §24).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if websocket.IsWebSocketUpgrade(r) {
		if s.opts.AudioHandler != nil && strings.HasPrefix(r.URL.Path, "/audio/") {
			s.opts.AudioHandler.ServeHTTP(w, r) // a WebSocket audio endpoint's socket (§30)
			return
		}
		// Headers must not be set on w before the upgrade: melody passes w.Header() to the
		// upgrader as the 101's extra headers. Failures set Connection: close in Upgrader.Error.
		ht := &hijackTrimmer{ResponseWriter: w}
		if err := s.ws.HandleRequestWithKeys(ht, r, map[string]any{trimKey: ht}); err != nil {
			if errors.Is(err, melody.ErrClosed) {
				// Shutting down: nothing was written yet.
				w.Header().Set("Connection", "close")
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			s.log.Debug("websocket handshake failed", "remote", r.RemoteAddr, "err", err)
		}
		return
	}
	w.Header().Set("Connection", "close")
	s.api.ServeHTTP(w, r)
}

// Close disconnects every WebSocket client. Sessions stay with the manager.
func (s *Server) Close() error { return s.ws.Close() }

const connKey = "rtpbridge.conn"

// trimKey holds the connection's hijackTrimmer until the connect handler has used it.
const trimKey = "rtpbridge.trim"

func connOf(ms *melody.Session) *conn {
	v, ok := ms.Get(connKey)
	if !ok {
		return nil
	}
	return v.(*conn)
}

func (s *Server) onConnect(ms *melody.Session) {
	if v, ok := ms.Get(trimKey); ok {
		v.(*hijackTrimmer).trimHijacked()
		ms.UnSet(trimKey)
	}
	c := newConn(s, ms)
	ms.Set(connKey, c)
	s.log.Debug("websocket connected", "remote", ms.RemoteAddr())
}

func (s *Server) onDisconnect(ms *melody.Session) {
	c := connOf(ms)
	if c == nil {
		return
	}
	c.markDead() // the worker orphans the session as it stops
	s.log.Debug("websocket disconnected", "remote", ms.RemoteAddr())
}

// onClose runs when the client sends a Close frame: the one moment a goodbye can still reach it,
// so session.orphaned is written directly here (best effort, §9), then the Close is answered.
// melody tears the socket down as soon as this handler returns, so it waits (briefly) until the
// notice is on the wire.
func (s *Server) onClose(ms *melody.Session, code int, _ string) error {
	if c := connOf(ms); c != nil && c.bound.Load() != nil {
		msg := marshalEvent(protocol.EventSessionOrphaned, map[string]int64{
			"timeout_remaining_ms": s.mgr.DisconnectTimeout().Milliseconds(),
		})
		c.goodbye.Store(&msg)
		if ms.Write(msg) == nil {
			select {
			case <-c.goodbyeSent:
			case <-time.After(time.Second):
			}
		}
	}
	if code == websocket.CloseNoStatusReceived {
		code = websocket.CloseNormalClosure
	}
	return ms.CloseWithMsg(websocket.FormatCloseMessage(code, ""))
}

func (s *Server) onError(ms *melody.Session, err error) {
	if errors.Is(err, melody.ErrMessageBufferFull) {
		// Cannot happen while the write window is smaller than melody's buffer; count it if it does.
		s.metrics.EventsDropped.Inc()
		if c := connOf(ms); c != nil {
			c.release()
		}
		return
	}
	s.log.Debug("websocket error", "remote", ms.RemoteAddr(), "err", err)
	if c := connOf(ms); c != nil && !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
		// A failed write ends the connection; stop waiting writers at once.
		if ms.IsClosed() {
			c.markDead()
		}
	}
}

// onMessage queues one request for the connection's worker. melody calls it from the
// connection's reader, so requests keep their order (§2.3).
func (s *Server) onMessage(ms *melody.Session, frame []byte) {
	c := connOf(ms)
	if c == nil {
		return
	}
	select {
	case c.requests <- frame:
		c.kick()
	case <-c.dead:
	}
}

// dispatch applies PROTOCOL.md §2.2's checks in order and runs the method.
func (s *Server) dispatch(c *conn, frame []byte) (resp *response) {
	req, bad := decodeRequest(frame)
	if bad != nil {
		return bad
	}
	defer func() {
		// A panic in a handler must cost this request only.
		if r := recover(); r != nil {
			s.log.Error("panic handling request", "method", req.Method, "panic", r)
			resp = &response{ID: req.ID, Error: protocol.Errorf(protocol.CodeInternalError, "internal error")}
		}
	}()
	if req.Method == "session.create" && s.mgr.Draining() {
		return errResponse(req.ID, protocol.Errorf(protocol.CodeShuttingDown, "Server is shutting down"))
	}
	if req.ID == "" {
		return errResponse(req.ID, protocol.Errorf(protocol.CodeInvalidRequest, "Request id must not be empty"))
	}
	result, err := s.call(c, req)
	if err != nil {
		return errResponse(req.ID, err)
	}
	if result == nil {
		result = struct{}{}
	}
	return &response{ID: req.ID, Result: result}
}

func (s *Server) call(c *conn, req request) (any, error) {
	switch req.Method {
	case "session.create":
		if err := session.DecodeParams(req.Params, &struct{}{}); err != nil {
			return nil, err
		}
		if c.boundSession() != nil {
			return nil, protocol.Errorf(protocol.CodeSessionAlreadyBound, "Connection is already bound to a session")
		}
		sess, err := s.mgr.Create(c)
		if err != nil {
			return nil, err
		}
		c.bound.Store(sess)
		return map[string]string{"session_id": sess.ID().String()}, nil

	case "session.attach":
		if c.boundSession() != nil {
			return nil, protocol.Errorf(protocol.CodeSessionAlreadyBound, "Connection is already bound to a session")
		}
		var p struct {
			SessionID *uuid.UUID `json:"session_id"`
		}
		if err := session.DecodeParams(req.Params, &p); err != nil {
			return nil, err
		}
		if p.SessionID == nil {
			return nil, protocol.Errorf(protocol.CodeInvalidParams, "missing field `session_id`")
		}
		sess, err := s.mgr.Attach(*p.SessionID, c)
		if err != nil {
			return nil, err
		}
		c.bound.Store(sess)
		return nil, nil

	case "session.destroy":
		// The binding is checked before the parameters, as the original does, for every
		// session-bound method (issue 11).
		sess := c.boundSession()
		if sess == nil {
			return nil, errNoSession
		}
		if err := session.DecodeParams(req.Params, &struct{}{}); err != nil {
			return nil, err
		}
		c.bound.Store(nil) // unbound even on error (§5)
		return nil, sess.Destroy()

	case "session.list":
		if err := session.DecodeParams(req.Params, &struct{}{}); err != nil {
			return nil, err
		}
		return map[string]any{"sessions": s.mgr.List()}, nil
	}

	m, ok := session.LookupMethod(req.Method)
	if !ok {
		return nil, protocol.Errorf(protocol.CodeUnknownMethod, "Unknown method: %s", req.Method)
	}
	sess := c.boundSession()
	if sess == nil {
		return nil, errNoSession
	}
	params, err := m.Decode(req.Params)
	if err != nil {
		return nil, err
	}
	res, err := sess.Call(m, params)
	var perr *protocol.Error
	if req.Method == "session.info" && errors.As(err, &perr) && perr.Code == protocol.CodeSessionUnresponsive {
		// §3: session.info reports a session that does not answer in time as gone.
		return nil, protocol.Errorf(protocol.CodeSessionGone, "Session did not respond in time")
	}
	return res, err
}

// errNoSession answers a session-bound method on a connection without a session. It comes
// before any parameter error: a client learns first that it must bind.
var errNoSession = protocol.Errorf(protocol.CodeNoSession, "No session bound to this connection")

func errResponse(id string, err error) *response {
	var perr *protocol.Error
	if !errors.As(err, &perr) {
		perr = protocol.Errorf(protocol.CodeInternalError, "%s", err.Error())
	}
	return &response{ID: id, Error: perr}
}
