package server_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// readUntilClosed reads c until the server closes it or timeout passes. closed is true for a
// clean EOF or a reset (a server that closes with our bytes unread sends RST), false on timeout.
func readUntilClosed(c net.Conn, timeout time.Duration) (data []byte, closed bool, err error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	data, err = io.ReadAll(c)
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		return data, true, err
	}
	return data, false, err
}

// healthOK performs GET /health on a fresh connection and reports whether it got 200.
func healthOK(srv *testserver.Server) bool {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + srv.Addr + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// wsCreateOK opens a WebSocket, creates a session on it and reports whether that worked.
func wsCreateOK(t *testing.T, srv *testserver.Server) bool {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
	conn, resp, err := d.Dial(srv.URL(), nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"id":"c","method":"session.create"}`)); err != nil {
		return false
	}
	_, msg, err := conn.ReadMessage()
	return err == nil && strings.HasPrefix(string(msg), `{"id":"c","result":{"session_id":"`)
}

// Failed WebSocket upgrades are answered and closed at once, so holding them costs the holder
// its slots only for a moment: new clients keep being served (§2.1).
func TestFailedUpgradesAreClosed(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.MaxConnections = 50 }, server.Tuning{})
	requests := []string{
		// No Sec-WebSocket-Key: 400.
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
		// Unsupported version: 400.
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		// Not GET: 405.
		"POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
	}
	const n = 1000
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	var dialErrs sync.Map
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 20 {
				c, err := net.DialTimeout("tcp", srv.Addr, wait)
				if err != nil {
					dialErrs.Store(i, err)
					continue
				}
				conns[i] = c
				// A write may fail on a connection already turned away with a 503.
				_, _ = c.Write([]byte(requests[i%len(requests)]))
			}
		}(w)
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	})
	dialErrs.Range(func(k, v any) bool { t.Fatalf("dial %v: %v", k, v); return false })
	sent := time.Now()

	// Meanwhile — the attacker still holds every socket — a new client is served.
	testserver.Eventually(t, wait, "GET /health", func() bool { return healthOK(srv) })
	testserver.Eventually(t, wait, "WebSocket session.create", func() bool { return wsCreateOK(t, srv) })

	// Every attacking connection has been closed by the server.
	var answered, rejected, reset int
	var mu sync.Mutex
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 20 {
				data, closed, err := readUntilClosed(conns[i], 5*time.Second)
				if !closed {
					t.Errorf("connection %d still open %v after its failed upgrade (%v; got %q)", i, time.Since(sent), err, data)
					continue
				}
				mu.Lock()
				switch {
				case bytes.HasPrefix(data, []byte("HTTP/1.1 503 ")):
					rejected++
				case bytes.HasPrefix(data, []byte("HTTP/1.1 400 ")) || bytes.HasPrefix(data, []byte("HTTP/1.1 405 ")):
					answered++
					if !bytes.Contains(data, []byte("\r\nConnection: close\r\n")) {
						t.Errorf("failed upgrade answered without Connection: close: %q", data)
					}
				case len(data) == 0 && err != nil:
					reset++ // turned away before its request was read
				default:
					t.Errorf("connection %d got %q (%v)", i, data, err)
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	t.Logf("%d answered 400/405, %d rejected with 503, %d reset; all closed within %v of the last request",
		answered, rejected, reset, time.Since(sent).Round(time.Millisecond))
	if answered == 0 {
		t.Error("no failed upgrade was answered")
	}
}

// Connections that send nothing, or a request too slowly, are closed by the HTTP deadlines.
func TestSilentAndSlowConnectionsAreClosed(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{HTTP: server.HTTPTimeouts{
		ReadHeader: 300 * time.Millisecond, Read: 600 * time.Millisecond, Write: time.Second, Idle: time.Second,
	}})
	const bound = 3 * time.Second

	t.Run("silent", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", srv.Addr, wait)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if data, closed, err := readUntilClosed(c, bound); !closed {
			t.Fatalf("silent connection open after %v (%v, %q)", time.Since(start), err, data)
		}
	})

	t.Run("trickled header", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", srv.Addr, wait)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			if _, err := c.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n")); err != nil {
				return
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := c.Write([]byte("X-Slow: " + strings.Repeat("a", i%5) + "\r\n")); err != nil {
					return
				}
			}
		}()
		if data, closed, err := readUntilClosed(c, bound); !closed {
			t.Fatalf("slowloris connection open after %v (%v, %q)", time.Since(start), err, data)
		}
	})

	t.Run("withheld body", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", srv.Addr, wait)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if _, err := c.Write([]byte("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		data, closed, err := readUntilClosed(c, bound)
		if !closed {
			t.Fatalf("connection with a withheld body open after %v (%v, %q)", time.Since(start), err, data)
		}
		if !bytes.HasPrefix(data, []byte("HTTP/1.1 405 ")) {
			t.Errorf("answer %q", data)
		}
	})

	// The server is still fine.
	if !healthOK(srv) {
		t.Error("/health failed afterwards")
	}
}

// Upgraded WebSocket connections are not subject to the HTTP deadlines: a control connection
// may stay quiet far longer than any of them (§2.1; only pings govern it).
func TestWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{HTTP: server.HTTPTimeouts{
		ReadHeader: 200 * time.Millisecond, Read: 300 * time.Millisecond, Write: 300 * time.Millisecond, Idle: 300 * time.Millisecond,
	}})
	c := testserver.Dial(t, srv)
	time.Sleep(1500 * time.Millisecond) // idle before the first request
	c.CreateSession()
	time.Sleep(1500 * time.Millisecond) // idle between requests
	c.MustCall("session.info", nil, nil)
	if err, closed := c.Closed(0); closed {
		t.Fatalf("connection closed: %v", err)
	}
}

// One source that holds silent connections gets at most half of max_connections; the other
// half stays open to other addresses (control.LimitListener).
func TestSilentConnectionsFromOneSourceLeaveRoom(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.MaxConnections = 10 }, server.Tuning{})
	attacker := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: wait}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	rejected := 0
	for i := 0; i < 20; i++ {
		c, err := attacker.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatalf("dialling from 127.0.0.2 (all of 127.0.0.0/8 is loopback on Linux): %v", err)
		}
		held = append(held, c)
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 64)
		if n, _ := c.Read(buf); bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 503 ")) {
			rejected++
		}
	}
	if rejected != 15 {
		t.Errorf("%d of 20 silent connections from one source turned away, want 15 (cap 5 of 10)", rejected)
	}
	// While the attacker holds its 5, everybody else is served.
	if !healthOK(srv) {
		t.Error("/health from another address failed")
	}
	if !wsCreateOK(t, srv) {
		t.Error("session.create from another address failed")
	}
}

// A request nested deeper than encoding/json accepts still gets its id back (§2.2).
func TestDeeplyNestedRequestEchoesID(t *testing.T) {
	srv := testserver.Start(t, nil, server.Tuning{})
	c := testserver.Dial(t, srv)
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	c.SendRaw(`{"id":"abc","method":"session.create","x":` + deep + `}`)
	m, _ := c.Response(wait)
	if m.ID == nil || *m.ID != "abc" || m.Error == nil || m.Error.Code != protocol.CodeParseError {
		t.Fatalf("got %s", m.Raw)
	}
	c.SendRaw(`{"method":"session.create","x":` + deep + `,"id":"after"}`)
	if m, _ := c.Response(wait); m.ID == nil || *m.ID != "after" || m.Error == nil || m.Error.Code != protocol.CodeParseError {
		t.Fatalf("got %s", m.Raw)
	}
	// Broken as well as deep: nothing can be trusted, id "".
	c.SendRaw(`{"id":"abc","x":` + deep)
	if m, _ := c.Response(wait); m.ID == nil || *m.ID != "" || m.Error == nil || m.Error.Code != protocol.CodeParseError {
		t.Fatalf("got %s", m.Raw)
	}
	// The connection is unharmed.
	c.CreateSession()
}
