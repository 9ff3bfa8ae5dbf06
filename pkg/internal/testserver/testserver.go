// Package testserver starts a real rtpbridge in-process for end-to-end tests and drives it the
// way a client application does: WebSocket JSON requests and events, plain HTTP.
package testserver

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// Server is a running rtpbridge bound to 127.0.0.1 on a free port.
type Server struct {
	*server.Server
	Config *config.Config
	Addr   string // host:port
}

// Start runs a server with the default configuration changed by mutate (may be nil). It stops
// when the test ends.
func Start(t testing.TB, mutate func(*config.Config), tune server.Tuning) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.RecordingDir = t.TempDir()
	cfg.CacheDir = t.TempDir()
	if mutate != nil {
		mutate(cfg)
	}
	level := slog.LevelWarn
	if os.Getenv("RTPBRIDGE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	codec.QuietFFmpeg(level == slog.LevelDebug)
	srv, err := server.New(cfg, log, tune)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &Server{Server: srv, Config: cfg, Addr: srv.Addrs()[0].String()}
}

// URL is the WebSocket URL of the server.
func (s *Server) URL() string { return "ws://" + s.Addr + "/" }

// Get performs GET path and returns the status and body.
func (s *Server) Get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	return s.Do(t, http.MethodGet, path)
}

// Do performs an HTTP request without a body and returns the status and body.
func (s *Server) Do(t testing.TB, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Addr+path, nil)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, body
}

// Message is anything the server sends: a response (ID set) or an event (Event set).
type Message struct {
	ID     *string         `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *protocol.Error `json:"error"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	Raw    []byte          `json:"-"`
}

// Client is a WebSocket control client. Responses and events are read by one goroutine and
// delivered in arrival order on Messages.
type Client struct {
	t        testing.TB
	conn     *websocket.Conn
	Messages chan Message
	done     chan struct{}
	mu       sync.Mutex
	nextID   int
	closeErr error
}

// Dial connects a client; it is closed when the test ends.
func Dial(t testing.TB, s *Server) *Client {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(s.URL(), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", s.URL(), err)
	}
	resp.Body.Close()
	c := &Client{t: t, conn: conn, Messages: make(chan Message, 4096), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { _ = c.conn.Close(); <-c.done })
	return c
}

// Conn exposes the underlying connection (for raw frames and pings).
func (c *Client) Conn() *websocket.Conn { return c.conn }

func (c *Client) read() {
	defer close(c.done)
	defer close(c.Messages)
	for {
		typ, b, err := c.conn.ReadMessage()
		if err != nil {
			c.mu.Lock()
			c.closeErr = err
			c.mu.Unlock()
			return
		}
		if typ != websocket.TextMessage {
			continue
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Errorf("server sent invalid JSON %q: %v", b, err)
			continue
		}
		m.Raw = b
		c.Messages <- m
	}
}

// Closed returns the error that ended the connection once it has ended.
func (c *Client) Closed(timeout time.Duration) (error, bool) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closeErr, true
	case <-time.After(timeout):
		return nil, false
	}
}

// SendRaw writes one text frame as is.
func (c *Client) SendRaw(frame string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Next returns the next message, failing the test after timeout.
func (c *Client) Next(timeout time.Duration) Message {
	c.t.Helper()
	select {
	case m, ok := <-c.Messages:
		if !ok {
			c.t.Fatalf("connection closed while waiting for a message")
		}
		return m
	case <-time.After(timeout):
		c.t.Fatalf("no message within %v", timeout)
	}
	return Message{}
}

// Response returns the next response, skipping (and returning) events before it.
func (c *Client) Response(timeout time.Duration) (Message, []Message) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var events []Message
	for {
		m := c.Next(time.Until(deadline))
		if m.ID != nil {
			return m, events
		}
		events = append(events, m)
	}
}

// Call sends a request and returns its response; events that arrive first are discarded.
func (c *Client) Call(method string, params any) Message {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := fmt.Sprintf("req-%d", c.nextID)
	c.mu.Unlock()
	req := map[string]any{"id": id, "method": method}
	if params != nil {
		req["params"] = params
	}
	b, err := json.Marshal(req)
	if err != nil {
		c.t.Fatalf("marshal: %v", err)
	}
	c.SendRaw(string(b))
	m, _ := c.Response(15 * time.Second)
	if m.ID == nil || *m.ID != id {
		c.t.Fatalf("%s: response id %v, want %q (%s)", method, m.ID, id, m.Raw)
	}
	return m
}

// MustCall is Call that fails the test on an error response and decodes the result into out.
func (c *Client) MustCall(method string, params any, out any) {
	c.t.Helper()
	m := c.Call(method, params)
	if m.Error != nil {
		c.t.Fatalf("%s: error %s: %s", method, m.Error.Code, m.Error.Message)
	}
	if out != nil {
		if err := json.Unmarshal(m.Result, out); err != nil {
			c.t.Fatalf("%s: decode result %s: %v", method, m.Result, err)
		}
	}
}

// ExpectError calls method and fails the test unless it answers with code.
func (c *Client) ExpectError(method string, params any, code string) *protocol.Error {
	c.t.Helper()
	m := c.Call(method, params)
	if m.Error == nil || m.Error.Code != code {
		c.t.Fatalf("%s: got %s, want error %s", method, m.Raw, code)
	}
	return m.Error
}

// WaitEvent returns the next event called name, skipping others, failing after timeout.
func (c *Client) WaitEvent(name string, timeout time.Duration) Message {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			c.t.Fatalf("no %s event within %v", name, timeout)
		}
		m := c.Next(left)
		if m.Event == name {
			return m
		}
	}
}

// CreateSession creates a session and returns its id.
func (c *Client) CreateSession() string {
	c.t.Helper()
	var res struct {
		SessionID string `json:"session_id"`
	}
	c.MustCall("session.create", nil, &res)
	if res.SessionID == "" {
		c.t.Fatalf("session.create returned no session_id")
	}
	return res.SessionID
}

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MetricValue reads one sample from /metrics (text format), failing if it is absent.
func (s *Server) MetricValue(t testing.TB, name string) float64 {
	t.Helper()
	_, body := s.Get(t, "/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") {
			var v float64
			if _, err := fmt.Sscanf(strings.TrimPrefix(line, name+" "), "%g", &v); err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// EndpointInfo is one endpoint of session.info as tests read it (PROTOCOL.md §4).
type EndpointInfo struct {
	EndpointID       string  `json:"endpoint_id"`
	EndpointType     string  `json:"endpoint_type"`
	Direction        string  `json:"direction"`
	State            string  `json:"state"`
	Codec            *string `json:"codec"`
	SharedPlaybackID string  `json:"shared_playback_id"`
}

// SessionInfo is what tests read of session.info.
type SessionInfo struct {
	Endpoints []EndpointInfo `json:"endpoints"`
}

// SessionInfo calls session.info on the client's session.
func (c *Client) SessionInfo() SessionInfo {
	c.t.Helper()
	var info SessionInfo
	c.MustCall("session.info", nil, &info)
	return info
}
