package mediaio

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// collector counts and keeps what its socket receives.
type collector struct {
	sock  *rtpnet.UDPSocket
	mu    sync.Mutex
	got   []string
	calls atomic.Int64
	panic bool
}

func (c *collector) Readable(b *rtpnet.ReadBatch) {
	c.calls.Add(1)
	if c.panic {
		panic("handler bug")
	}
	n, err := c.sock.ReadBatch(b, rtpnet.BatchSize)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 0; i < n; i++ {
		d, _ := b.Datagram(i)
		c.got = append(c.got, string(d))
	}
}

func (c *collector) received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

func listen(t *testing.T) *rtpnet.UDPSocket {
	t.Helper()
	s, err := rtpnet.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sendTo(t *testing.T, to netip.AddrPort, msgs ...string) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range msgs {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Datagrams of one socket reach its handler, in order, on its worker; sockets on one worker
// do not disturb each other.
func TestWorkerDeliversInOrder(t *testing.T) {
	p, err := New(2, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := p.Pick()
	a, b := &collector{sock: listen(t)}, &collector{sock: listen(t)}
	for _, c := range []*collector{a, b} {
		if _, err := w.Register(c.sock.Fd(), c); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for i := 0; i < 200; i++ {
		want = append(want, string(rune('a'+i%26))+time.Duration(i).String())
	}
	sendTo(t, a.sock.LocalAddr(), want...)
	sendTo(t, b.sock.LocalAddr(), "b1", "b2")
	eventually(t, "200 datagrams", func() bool { return len(a.received()) == len(want) })
	eventually(t, "2 datagrams", func() bool { return len(b.received()) == 2 })
	for i, g := range a.received() {
		if g != want[i] {
			t.Fatalf("datagram %d is %q, want %q", i, g, want[i])
		}
	}
}

// After Remove returns the handler is never called again, even with data waiting; Close stops
// every worker goroutine.
func TestRemoveAndCloseStopEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	p, err := New(3, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if p.Workers() != 3 {
		t.Fatalf("%d workers", p.Workers())
	}
	c := &collector{sock: listen(t)}
	reg, err := p.Pick().Register(c.sock.Fd(), c)
	if err != nil {
		t.Fatal(err)
	}
	sendTo(t, c.sock.LocalAddr(), "one")
	eventually(t, "the first datagram", func() bool { return len(c.received()) == 1 })
	reg.Remove()
	reg.Remove() // twice is fine
	calls := c.calls.Load()
	sendTo(t, c.sock.LocalAddr(), "two", "three")
	time.Sleep(100 * time.Millisecond)
	if n := c.calls.Load(); n != calls {
		t.Fatalf("handler called %d times after Remove", n-calls)
	}
	p.Close()
	eventually(t, "the workers to stop", func() bool { return runtime.NumGoroutine() <= before })
	if _, err := p.Pick().Register(c.sock.Fd(), c); err == nil {
		t.Fatal("Register on a closed poller succeeded")
	}
}

// A handler that panics loses its registration; the worker and its other sockets carry on.
func TestHandlerPanicIsContained(t *testing.T) {
	p, err := New(1, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := p.Pick()
	bad, good := &collector{sock: listen(t), panic: true}, &collector{sock: listen(t)}
	for _, c := range []*collector{bad, good} {
		if _, err := w.Register(c.sock.Fd(), c); err != nil {
			t.Fatal(err)
		}
	}
	sendTo(t, bad.sock.LocalAddr(), "boom")
	eventually(t, "the panicking call", func() bool { return bad.calls.Load() == 1 })
	sendTo(t, bad.sock.LocalAddr(), "again")
	sendTo(t, good.sock.LocalAddr(), "fine")
	eventually(t, "the good socket's datagram", func() bool { return len(good.received()) == 1 })
	time.Sleep(50 * time.Millisecond)
	if n := bad.calls.Load(); n != 1 {
		t.Fatalf("panicking handler called %d times, want 1 (dropped after its panic)", n)
	}
}

// Registration ids are reused after Remove without confusing sockets.
func TestRegistrationChurn(t *testing.T) {
	p, err := New(1, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := p.Pick()
	for i := 0; i < 500; i++ {
		c := &collector{sock: listen(t)}
		reg, err := w.Register(c.sock.Fd(), c)
		if err != nil {
			t.Fatal(err)
		}
		sendTo(t, c.sock.LocalAddr(), "x")
		eventually(t, "a datagram", func() bool { return len(c.received()) == 1 })
		reg.Remove()
		c.sock.Close()
	}
	w.mu.Lock()
	n := len(w.regs)
	w.mu.Unlock()
	if n > 3 {
		t.Fatalf("registry grew to %d slots for one socket at a time", n)
	}
}
