package wsaudio

import (
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

// readChunk is how much of a binary message the reader converts at a time.
const readChunk = 4096

// maxTextBytes bounds a text message the reader looks at; longer ones are ignored.
const maxTextBytes = 4096

// read is the socket's reader goroutine: binary messages go to the playout buffer, text
// messages are the clear and mark requests. It ends when the socket fails or closes (a pong
// overdue, the peer gone, Close), and reports the loss.
func (e *Endpoint) read(conn *websocket.Conn, gone chan<- struct{}) {
	defer e.lost()
	defer close(gone)
	defer conn.Close()
	conn.SetPongHandler(func(string) error {
		e.awaitingPong.Store(false)
		return conn.SetReadDeadline(time.Time{})
	})
	var buf [readChunk]byte
	odd := false // buf[0] holds the odd trailing byte of the previous binary data (§30)
	for {
		typ, r, err := conn.NextReader()
		if err != nil {
			return
		}
		switch typ {
		case websocket.BinaryMessage:
			for {
				start := 0
				if odd {
					start = 1
				}
				n, err := r.Read(buf[start:])
				total := start + n
				if even := total &^ 1; even > 0 {
					e.receive(buf[:even])
				}
				odd = total&1 == 1
				if odd {
					buf[0] = buf[total-1]
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					return
				}
			}
		case websocket.TextMessage:
			n, err := io.ReadFull(r, buf[:])
			if err == nil {
				continue // longer than any request: ignored
			}
			if err != io.ErrUnexpectedEOF && err != io.EOF {
				return
			}
			if e.control(buf[:n]) {
				odd = false
			}
		}
	}
}

// receive queues inbound audio for playout. A leg whose direction does not send has nothing
// to play: its peer's audio is dropped as it comes.
func (e *Endpoint) receive(b []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.dir.Sends() {
		n := uint64(len(b) / 2)
		e.received += n
		e.played += n
		e.dueMarks()
		return
	}
	e.push(b)
}

// control handles a text message; it reports whether the buffer was cleared.
func (e *Endpoint) control(b []byte) (cleared bool) {
	var req struct {
		Type string  `json:"type"`
		Name *string `json:"name"`
	}
	if json.Unmarshal(b, &req) != nil {
		return false // other text is ignored (§30)
	}
	switch req.Type {
	case "clear":
		e.mu.Lock()
		dropped := e.n
		e.head, e.n = 0, 0
		e.played += uint64(dropped)
		e.sendText(clearedReply(dropped * 1000 / e.rate))
		e.dueMarks() // the audio marks waited for is gone: they are answered now
		e.mu.Unlock()
		return true
	case "mark":
		if req.Name == nil {
			return false
		}
		e.mu.Lock()
		e.marks = append(e.marks, mark{name: *req.Name, at: e.received})
		e.dueMarks()
		e.mu.Unlock()
	}
	return false
}

func clearedReply(ms int) []byte {
	b := append([]byte(`{"type":"cleared","dropped_ms":`), strconv.Itoa(ms)...)
	return append(b, '}')
}

func markReply(name string) []byte {
	b, _ := json.Marshal(struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}{"mark", name})
	return b
}

// write is the socket's writer goroutine: outbound audio and text replies, pings, and the
// close handshake when the endpoint is removed. A write blocked for WriteWait fails and drops
// the socket (§30).
func (e *Endpoint) write(conn *websocket.Conn, gone <-chan struct{}) {
	defer conn.Close()
	opts := &e.hub.opts
	ping := time.NewTicker(opts.PingInterval)
	defer ping.Stop()
	for {
		var err error
		select {
		case m := <-e.out:
			_ = conn.SetWriteDeadline(time.Now().Add(opts.WriteWait))
			err = conn.WriteMessage(websocket.BinaryMessage, m.b)
			e.free <- m
		case t := <-e.text:
			_ = conn.SetWriteDeadline(time.Now().Add(opts.WriteWait))
			err = conn.WriteMessage(websocket.TextMessage, t)
		case <-ping.C:
			// The deadline is lifted by the pong handler; a peer that does not answer within
			// PongWait of the first unanswered ping fails the reader (later pings do not
			// push the deadline on).
			if !e.awaitingPong.Swap(true) {
				_ = conn.SetReadDeadline(time.Now().Add(opts.PongWait))
			}
			err = conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(opts.WriteWait))
		case <-e.done:
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			return
		case <-gone:
			return
		}
		if err != nil {
			return
		}
	}
}
