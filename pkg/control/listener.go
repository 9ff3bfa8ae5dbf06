package control

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// rejectResponse is what a connection over the limit receives before it is closed (§2.1).
const rejectResponse = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

// LimitListener admits at most max concurrent connections (HTTP and WebSocket together); the
// ones over the limit get a raw 503 and are closed. max ≤ 0 means unlimited (and no per-source
// cap either).
//
// Per-source cap: of the connections that have not (yet) become WebSocket sessions — plain
// HTTP requests and upgrade handshakes in progress, the only ones a client can hold without
// speaking the protocol — one source IP address may hold at most half of max (rounded up, at
// least 1); the ones over that cap get the same raw 503. So a single address that opens
// connections and sends nothing (or trickles a request) as fast as slots free can fill at most
// half of the budget, and the other half stays open to everybody else. Established WebSocket
// sessions do not count against the cap: a control application normally runs all its sessions
// from one address and may use the whole budget. A connection counts as established from the
// moment the HTTP server hands it to the WebSocket upgrader; the owning http.Server must report
// that through ConnState (set http.Server.ConnState to it), otherwise every connection counts
// as pending for its whole life.
func LimitListener(l net.Listener, max int) net.Listener {
	ll := &limitListener{Listener: l, max: max, pending: map[string]int{}}
	if max > 0 {
		ll.perSource = (max + 1) / 2
	}
	return ll
}

type limitListener struct {
	net.Listener
	max       int
	perSource int

	mu      sync.Mutex
	active  int
	pending map[string]int // source IP → admitted connections not yet upgraded
}

// Accept returns the next admitted connection, turning away the ones over the limit itself.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max <= 0 {
			return c, nil
		}
		src := sourceIP(c.RemoteAddr())
		l.mu.Lock()
		admit := l.active < l.max && l.pending[src] < l.perSource
		if admit {
			l.active++
			l.pending[src]++
		}
		l.mu.Unlock()
		if !admit {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(rejectResponse))
			_ = c.Close()
			continue
		}
		return &countedConn{Conn: c, l: l, src: src, pending: true}, nil
	}
}

// sourceIP is the address a connection comes from, without its port.
func sourceIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// countedConn releases its slot exactly once, however often it is closed.
type countedConn struct {
	net.Conn
	l       *limitListener
	src     string
	pending bool // guarded by l.mu
	closed  bool // guarded by l.mu
}

// established moves the connection out of its source's pending count.
func (c *countedConn) established() {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.pending && !c.closed {
		c.pending = false
		c.l.release(c.src)
	}
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.l.active--
		if c.pending {
			c.pending = false
			c.l.release(c.src)
		}
	}
	return err
}

// release drops one pending connection of src; l.mu is held.
func (l *limitListener) release(src string) {
	if l.pending[src] <= 1 {
		delete(l.pending, src)
	} else {
		l.pending[src]--
	}
}

// ConnState is an http.Server.ConnState hook for servers on a LimitListener: a hijacked
// connection (a WebSocket upgrade) stops counting against its source's per-source cap.
func ConnState(c net.Conn, st http.ConnState) {
	if st != http.StateHijacked {
		return
	}
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok { // a *tls.Conn over our listener
		c = tc.NetConn()
	}
	if cc, ok := c.(*countedConn); ok {
		cc.established()
	}
}
