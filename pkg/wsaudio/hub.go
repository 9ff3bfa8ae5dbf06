// Package wsaudio implements WebSocket audio endpoints (PROTOCOL.md §30): a leg that carries
// raw little-endian PCM16 between a session and an external program (a voice bot, ASR, TTS)
// over a second WebSocket on the control listener, /audio/<connect_token>.
//
// The leg speaks PCM frames at the client's rate (8, 16 or 48 kHz); the session decodes,
// resamples, mixes and encodes around it like around any other PCM leg. Inbound audio is
// buffered (ws_audio_buffer_ms) and paced out by the session's media clock, one 20 ms frame
// per tick, so a peer may send faster than real time. Outbound frames are coalesced into
// messages of flush_ms on a bounded queue that drops, counted, when the peer reads too slowly:
// a slow peer never stalls its session.
//
// Each endpoint owns two goroutines while its socket is attached (a reader and a writer); both
// end when the socket fails or the endpoint is closed.
package wsaudio

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

// Options configure the audio sockets of a Hub. Zero values take the documented defaults.
type Options struct {
	// BufferMs is ws_audio_buffer_ms: inbound audio waiting for playout beyond this is dropped,
	// oldest first (60000).
	BufferMs int
	// ConnectTimeout is how long a new endpoint waits for its audio socket (30 s).
	ConnectTimeout time.Duration
	// PingInterval is how often the audio socket is pinged (30 s); PongWait is how long a pong
	// may take before the socket is dropped (10 s).
	PingInterval time.Duration
	PongWait     time.Duration
	// WriteWait bounds one write to the audio socket: a peer that blocks a write that long is
	// dropped (5 s).
	WriteWait time.Duration
	// MaxMessageBytes bounds one inbound message (ws_max_message_size_kb × 1024; 256 KiB).
	MaxMessageBytes int64
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.ConnectTimeout, 30*time.Second)
	def(&o.PingInterval, 30*time.Second)
	def(&o.PongWait, 10*time.Second)
	def(&o.WriteWait, 5*time.Second)
	if o.BufferMs <= 0 {
		o.BufferMs = 60000
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 256 << 10
	}
	return o
}

// Path is the URL path prefix of audio sockets on the control listener.
const Path = "/audio/"

// Hub hands out single-use connect tokens and accepts the audio sockets that present them. It
// is an http.Handler for Path; one Hub serves the whole process.
type Hub struct {
	opts     Options
	log      *slog.Logger
	upgrader websocket.Upgrader

	mu      sync.Mutex
	pending map[uuid.UUID]*Endpoint // tokens not used yet
}

// NewHub returns a hub with no endpoints.
func NewHub(opts Options, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.Default()
	}
	h := &Hub{opts: opts.withDefaults(), log: log, pending: make(map[uuid.UUID]*Endpoint)}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		// Audio sockets come from bot and ASR services, not from browsers running third-party
		// pages, and the token is the credential (§36): any origin may present it.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return h
}

// Options returns the hub's effective options.
func (h *Hub) Options() Options { return h.opts }

// register makes ep's token valid.
func (h *Hub) register(ep *Endpoint) {
	h.mu.Lock()
	h.pending[ep.token] = ep
	h.mu.Unlock()
}

// unregister forgets ep's token if it was not used.
func (h *Hub) unregister(ep *Endpoint) {
	h.mu.Lock()
	if h.pending[ep.token] == ep {
		delete(h.pending, ep.token)
	}
	h.mu.Unlock()
}

// take redeems a token: the first caller gets its endpoint, every later one nil.
func (h *Hub) take(token uuid.UUID) *Endpoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	ep := h.pending[token]
	delete(h.pending, token)
	return ep
}

// Pending reports how many tokens wait for their socket.
func (h *Hub) Pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pending)
}

// ServeHTTP accepts an audio socket on /audio/<connect_token>. An unknown, malformed or reused
// token gets the WebSocket handshake and then close code 1008 and nothing else (§30).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.URL.Path, Path)
	var ep *Endpoint
	if ok {
		if token, err := uuid.Parse(raw); err == nil {
			ep = h.take(token)
		}
	}
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered with an HTTP error. The token stays spent: the endpoint
		// meets its connect timeout, and the client creates a new one, as after any failure.
		h.log.Debug("audio socket handshake failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	if ep == nil {
		h.refuse(conn)
		return
	}
	ep.attach(conn)
}

// refuse closes a socket that presented no valid token with 1008 (policy violation).
func (h *Hub) refuse(conn *websocket.Conn) {
	msg := websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "invalid connect token")
	_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = conn.Close()
}
