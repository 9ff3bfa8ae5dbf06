package wsaudio

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/mediaio"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

// Rates are the sample rates an audio socket may use (§30).
var Rates = [...]int{8000, 16000, 48000}

// MaxFlushMs bounds flush_ms (§30).
const MaxFlushMs = 1000

// ValidRate reports whether rate is one of Rates.
func ValidRate(rate int) bool {
	for _, r := range Rates {
		if r == rate {
			return true
		}
	}
	return false
}

// Hooks are what the endpoint asks of its session beyond endpoint.Sink. Both run on the
// session loop (inside a Post'ed function).
type Hooks struct {
	// Remove removes the endpoint from its session (connect timeout).
	Remove func()
	// Changed tells the session that the endpoint left routing (its socket went away).
	Changed func()
}

// outQueueMs is how much outbound audio may wait for a slow peer before messages are dropped.
const outQueueMs = 2000

// Endpoint is a WebSocket audio leg (endpoint type "websocket").
type Endpoint struct {
	id    uuid.UUID
	dir   endpoint.Direction
	rate  int
	token uuid.UUID
	hub   *Hub
	hooks Hooks
	frame int // samples per 20 ms

	// Session loop only.
	state     endpoint.State
	sink      endpoint.Sink
	cur       *outMsg // the outbound message being filled
	starved   int     // ticks in a row that found less than a frame buffered
	connectTm *time.Timer

	// in is the inbound playout buffer, shared by the reader (push) and the session loop
	// (ReadFrame).
	mu        sync.Mutex
	ring      []int16
	head, n   int
	received  uint64 // samples ever pushed
	played    uint64 // samples ever taken out (played, dropped on overflow or cleared)
	marks     []mark
	inDropped uint64 // samples dropped because the buffer was full
	conn      *websocket.Conn
	closed    bool

	// Outbound: fixed message buffers circulate between free and out, so a frame costs no
	// allocation and a peer that does not read costs dropped messages, never memory.
	out        chan *outMsg
	free       chan *outMsg
	text       chan []byte
	outDropped atomic.Uint64 // outbound messages dropped for a slow peer
	// awaitingPong is set by the writer's ping and cleared by the reader's pong handler.
	awaitingPong atomic.Bool
	done         chan struct{} // closed by Close
	closeOnce    sync.Once
}

type mark struct {
	name string
	at   uint64 // the received count the mark waits for
}

type outMsg struct {
	b []byte
}

// New creates an endpoint in state connecting with a fresh connect token, valid with hub once
// the endpoint is started.
// flushMs is a multiple of 20 up to MaxFlushMs (0 means 20).
func New(hub *Hub, id uuid.UUID, dir endpoint.Direction, rate, flushMs int, hooks Hooks) (*Endpoint, error) {
	if !ValidRate(rate) {
		return nil, fmt.Errorf("sample_rate %d is not one of 8000, 16000, 48000", rate)
	}
	if flushMs < 0 || flushMs > MaxFlushMs || flushMs%endpoint.FrameDuration != 0 {
		return nil, fmt.Errorf("flush_ms %d is not a multiple of 20 up to %d", flushMs, MaxFlushMs)
	}
	if flushMs == 0 {
		flushMs = endpoint.FrameDuration
	}
	frame := endpoint.FrameSamples(rate)
	bufSamples := max(frame, hub.opts.BufferMs*rate/1000)
	depth := max(4, outQueueMs/flushMs)
	e := &Endpoint{
		id:    id,
		dir:   dir,
		rate:  rate,
		token: uuid.New(),
		hub:   hub,
		hooks: hooks,
		frame: frame,
		state: endpoint.StateConnecting,
		ring:  make([]int16, bufSamples),
		out:   make(chan *outMsg, depth),
		free:  make(chan *outMsg, depth),
		text:  make(chan []byte, 64),
		done:  make(chan struct{}),
	}
	msgBytes := flushMs / endpoint.FrameDuration * frame * 2
	for i := 0; i < depth; i++ {
		e.free <- &outMsg{b: make([]byte, 0, msgBytes)}
	}
	return e, nil
}

// Token is the single-use connect token of the audio socket.
func (e *Endpoint) Token() uuid.UUID { return e.token }

// ID implements endpoint.Leg.
func (e *Endpoint) ID() uuid.UUID { return e.id }

// Type implements endpoint.Leg.
func (e *Endpoint) Type() string { return "websocket" }

// Direction implements endpoint.Leg.
func (e *Endpoint) Direction() endpoint.Direction { return e.dir }

// State implements endpoint.Leg.
func (e *Endpoint) State() endpoint.State { return e.state }

// SetState implements endpoint.Leg.
func (e *Endpoint) SetState(s endpoint.State) (endpoint.State, bool) {
	old := e.state
	e.state = s
	return old, old != s
}

// RTP implements endpoint.Leg: the leg speaks PCM.
func (e *Endpoint) RTP() endpoint.RTPMedia { return nil }

// PCM implements endpoint.Leg.
func (e *Endpoint) PCM() endpoint.PCMMedia { return e }

// Rate implements endpoint.PCMMedia.
func (e *Endpoint) Rate() int { return e.rate }

// CodecName implements endpoint.CodecDescriber (stats and session.info show L16/<rate>).
func (e *Endpoint) CodecName() string { return fmt.Sprintf("L16/%d", e.rate) }

// Tick implements endpoint.Leg; the leg has no periodic work of its own.
func (e *Endpoint) Tick(time.Time) {}

// Dropped reports inbound samples dropped because the playout buffer was full and outbound
// messages dropped because the peer read too slowly.
func (e *Endpoint) Dropped() (inSamples, outMessages uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inDropped, e.outDropped.Load()
}

// Buffered is how much inbound audio waits for playout.
func (e *Endpoint) Buffered() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return time.Duration(e.n) * time.Second / time.Duration(e.rate)
}

// Start implements endpoint.Leg: it arms the connect timeout and makes the token valid. The
// audio socket arrives through the hub.
func (e *Endpoint) Start(_ *mediaio.Worker, sink endpoint.Sink) error {
	e.sink = sink
	e.connectTm = time.AfterFunc(e.hub.opts.ConnectTimeout, func() {
		sink.Post(func() {
			if e.state != endpoint.StateConnecting || e.isClosed() {
				return
			}
			sink.Emit(protocol.EventWSConnectTimeout, map[string]string{"endpoint_id": e.id.String()})
			if e.hooks.Remove != nil {
				e.hooks.Remove()
			}
		})
	})
	// The token becomes valid last: the hub's lock then publishes sink and timer to the
	// goroutine that accepts the socket.
	e.hub.register(e)
	return nil
}

func (e *Endpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// Close implements endpoint.Leg: the token is forgotten, and an attached socket is closed
// with 1000 by the writer, so the session loop never waits on the network.
func (e *Endpoint) Close() {
	e.closeOnce.Do(func() {
		e.hub.unregister(e)
		if e.connectTm != nil {
			e.connectTm.Stop()
		}
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		close(e.done) // the writer, if a socket is attached, says goodbye and closes it
	})
}

// attach takes over an upgraded audio socket (called by the hub once the token matched).
func (e *Endpoint) attach(conn *websocket.Conn) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.hub.refuse(conn)
		return
	}
	e.conn = conn
	e.mu.Unlock()
	if e.connectTm != nil {
		e.connectTm.Stop()
	}
	conn.SetReadLimit(e.hub.opts.MaxMessageBytes)
	connected := time.Now()
	gone := make(chan struct{}) // closed when the reader stops: the writer stops too
	go e.write(conn, gone)
	go e.read(conn, gone)
	e.sink.Post(func() {
		if e.isClosed() || e.state != endpoint.StateConnecting {
			return
		}
		e.sink.SetState(e, endpoint.StateConnected)
		e.sink.Emit(protocol.EventWSConnected, map[string]any{
			"endpoint_id": e.id.String(), "connected_at_epoch_ms": connected.UnixMilli(),
		})
	})
}

// lost reports a socket that closed or failed: state disconnected, the event, and the leg
// leaves routing (no re-dial, §30).
func (e *Endpoint) lost() {
	e.sink.Post(func() {
		if e.isClosed() || e.state != endpoint.StateConnected {
			return
		}
		e.sink.SetState(e, endpoint.StateDisconnected)
		e.sink.Emit(protocol.EventWSDisconnected, map[string]string{"endpoint_id": e.id.String()})
		if e.hooks.Changed != nil {
			e.hooks.Changed()
		}
	})
}

// ReadFrame implements endpoint.PCMMedia: the next 20 ms of the peer's audio, on the session's
// media clock. A buffer holding less than a frame waits one tick for the rest (a peer streaming
// in real time sends whole frames late, not halves), then plays what it has, padded.
func (e *Endpoint) ReadFrame(frame []int16, _ time.Time) bool {
	if e.state != endpoint.StateConnected {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.n >= len(frame):
		e.pop(frame)
		e.starved = 0
	case e.n == 0:
		e.starved = 0
		return false
	case e.starved == 0:
		e.starved++
		return false
	default:
		k := e.n
		e.pop(frame[:k])
		clear(frame[k:])
		e.starved = 0
	}
	e.dueMarks()
	return true
}

// pop takes len(dst) samples off the buffer; callers hold mu and checked n.
func (e *Endpoint) pop(dst []int16) {
	k := copy(dst, e.ring[e.head:min(len(e.ring), e.head+len(dst))])
	if k < len(dst) {
		copy(dst[k:], e.ring[:len(dst)-k])
	}
	e.head = (e.head + len(dst)) % len(e.ring)
	e.n -= len(dst)
	e.played += uint64(len(dst))
}

// push appends samples decoded from b (little-endian PCM16, even length); when the buffer is
// full the oldest audio goes (counted). Callers hold mu.
func (e *Endpoint) push(b []byte) {
	n := len(b) / 2
	if over := e.n + n - len(e.ring); over > 0 {
		drop := min(over, e.n)
		e.head = (e.head + drop) % len(e.ring)
		e.n -= drop
		e.played += uint64(drop)
		e.inDropped += uint64(drop)
		if n > len(e.ring) {
			skip := n - len(e.ring)
			b = b[2*skip:]
			e.received += uint64(skip)
			e.played += uint64(skip)
			e.inDropped += uint64(skip)
			n = len(e.ring)
		}
	}
	tail := (e.head + e.n) % len(e.ring)
	for i := 0; i < n; i++ {
		e.ring[tail] = int16(binary.LittleEndian.Uint16(b[2*i:]))
		tail++
		if tail == len(e.ring) {
			tail = 0
		}
	}
	e.n += n
	e.received += uint64(n)
}

// dueMarks answers every mark whose audio has been played out. Callers hold mu.
func (e *Endpoint) dueMarks() {
	for len(e.marks) > 0 && e.marks[0].at <= e.played {
		e.sendText(markReply(e.marks[0].name))
		e.marks[0] = mark{}
		e.marks = e.marks[1:]
	}
	if len(e.marks) == 0 {
		e.marks = nil // let the backing array go after a burst of marks
	}
}

// sendText queues a text message; the text queue is large for the few control replies a peer
// can provoke, and a peer that floods marks without reading loses replies rather than the
// session stalling.
func (e *Endpoint) sendText(b []byte) {
	select {
	case e.text <- b:
	default:
		e.outDropped.Add(1)
	}
}

// WriteFrame implements endpoint.PCMMedia: 20 ms routed to the peer, coalesced into messages
// of flush_ms. A message that finds the queue full is dropped (counted).
func (e *Endpoint) WriteFrame(frame []int16, _ time.Time) {
	if e.state != endpoint.StateConnected {
		return
	}
	if e.cur == nil {
		select {
		case e.cur = <-e.free:
			e.cur.b = e.cur.b[:0]
		default:
			e.outDropped.Add(1) // every buffer waits for the peer
			return
		}
	}
	b := e.cur.b
	for _, s := range frame {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	e.cur.b = b
	if len(b) < cap(b) {
		return
	}
	select {
	case e.out <- e.cur:
	default:
		e.outDropped.Add(1)
		e.free <- e.cur
	}
	e.cur = nil
}
