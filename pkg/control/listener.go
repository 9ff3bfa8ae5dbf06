package control

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// rejectResponse is what a connection over the limit receives before it is closed (§2.1).
const rejectResponse = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

// LimitListener admits at most max concurrent connections (HTTP and WebSocket together); the
// ones over the limit get a raw 503 and are closed. max ≤ 0 means unlimited.
func LimitListener(l net.Listener, max int) net.Listener {
	return &limitListener{Listener: l, max: int64(max)}
}

type limitListener struct {
	net.Listener
	max    int64
	active atomic.Int64
}

// Accept returns the next admitted connection, turning away the ones over the limit itself.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max > 0 && l.active.Load() >= l.max {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(rejectResponse))
			_ = c.Close()
			continue
		}
		l.active.Add(1)
		return &countedConn{Conn: c, l: l}, nil
	}
}

// countedConn releases its slot exactly once, however often it is closed.
type countedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.active.Add(-1) })
	return err
}
