package testserver

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// AudioMessage is one binary message an audio socket received: PCM16 samples and when.
type AudioMessage struct {
	PCM []int16
	At  time.Time
}

// AudioText is one text message an audio socket received.
type AudioText struct {
	Type      string `json:"type"`
	Name      string `json:"name"`
	DroppedMs *int   `json:"dropped_ms"`
	At        time.Time
}

// AudioClient is the far side of a WebSocket audio endpoint (PROTOCOL.md §30): a voice bot
// that sends and receives little-endian PCM16.
type AudioClient struct {
	t     testing.TB
	conn  *websocket.Conn
	Audio chan AudioMessage
	Text  chan AudioText
	done  chan struct{}

	mu       sync.Mutex
	closeErr error
	wmu      sync.Mutex
}

// DialAudio opens /audio/<token> on s. With read false the client never reads (a peer that
// stalls), and its receive buffer is made small so the server's writes back up quickly.
func DialAudio(t testing.TB, s *Server, token string, read bool) (*AudioClient, error) {
	t.Helper()
	d := *websocket.DefaultDialer
	if !read {
		d.NetDial = func(network, addr string) (net.Conn, error) {
			c, err := net.Dial(network, addr)
			if err == nil {
				_ = c.(*net.TCPConn).SetReadBuffer(4096)
			}
			return c, err
		}
	}
	conn, resp, err := d.Dial("ws://"+s.Addr+"/audio/"+token, nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	c := &AudioClient{t: t, conn: conn, Audio: make(chan AudioMessage, 1<<14), Text: make(chan AudioText, 256), done: make(chan struct{})}
	if read {
		go c.read()
	}
	t.Cleanup(func() {
		_ = c.conn.Close()
		if read {
			<-c.done
		}
	})
	return c, nil
}

func (c *AudioClient) read() {
	defer close(c.done)
	for {
		typ, b, err := c.conn.ReadMessage()
		at := time.Now()
		if err != nil {
			c.mu.Lock()
			c.closeErr = err
			c.mu.Unlock()
			return
		}
		switch typ {
		case websocket.BinaryMessage:
			pcm := make([]int16, len(b)/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
			}
			c.Audio <- AudioMessage{PCM: pcm, At: at}
		case websocket.TextMessage:
			var m AudioText
			if err := json.Unmarshal(b, &m); err != nil {
				c.t.Errorf("audio socket sent invalid JSON %q: %v", b, err)
				continue
			}
			m.At = at
			c.Text <- m
		}
	}
}

// SendPCM writes pcm as one binary message.
func (c *AudioClient) SendPCM(pcm []int16) error {
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return c.SendBytes(b)
}

// SendBytes writes b as one binary message as is (odd lengths included).
func (c *AudioClient) SendBytes(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.conn.WriteMessage(websocket.BinaryMessage, b)
}

// SendText writes one text message.
func (c *AudioClient) SendText(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.conn.WriteMessage(websocket.TextMessage, []byte(s))
}

// Close closes the socket with a normal closure.
func (c *AudioClient) Close() {
	c.wmu.Lock()
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	_ = c.conn.Close()
}

// CloseCode waits until the server closed the socket and returns its close code (-1 when the
// socket ended without a close frame).
func (c *AudioClient) CloseCode(timeout time.Duration) (int, bool) {
	select {
	case <-c.done:
	case <-time.After(timeout):
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var ce *websocket.CloseError
	if errors.As(c.closeErr, &ce) {
		return ce.Code, true
	}
	return -1, true
}

// WaitText returns the next text message of type typ, skipping others.
func (c *AudioClient) WaitText(typ string, timeout time.Duration) (AudioText, bool) {
	deadline := time.After(timeout)
	for {
		select {
		case m := <-c.Text:
			if m.Type == typ {
				return m, true
			}
		case <-deadline:
			return AudioText{}, false
		}
	}
}

// Gather collects received audio until want samples arrived or timeout passed.
func (c *AudioClient) Gather(want int, timeout time.Duration) []AudioMessage {
	var out []AudioMessage
	n := 0
	deadline := time.After(timeout)
	for n < want {
		select {
		case m := <-c.Audio:
			out = append(out, m)
			n += len(m.PCM)
		case <-deadline:
			return out
		}
	}
	return out
}
