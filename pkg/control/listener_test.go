package control

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"
)

// acceptAll runs l's accept loop, delivering admitted connections.
func acceptAll(t *testing.T, l net.Listener) <-chan net.Conn {
	t.Helper()
	ch := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(ch)
				return
			}
			ch <- c
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		for c := range ch {
			_ = c.Close()
		}
	})
	return ch
}

// dialOutcome dials l and reports whether it was admitted (nothing received) or turned away
// with the raw 503.
func dialOutcome(t *testing.T, addr string, admitted <-chan net.Conn) (client, server net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	select {
	case s := <-admitted:
		return c, s
	case <-time.After(500 * time.Millisecond):
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "HTTP/1.1 503 Service Unavailable\r\n" {
		t.Fatalf("neither admitted nor rejected: %q, %v", line, err)
	}
	return c, nil
}

func TestLimitListenerPerSourceCap(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := LimitListener(raw, 4) // one source may hold 2 pending connections
	admitted := acceptAll(t, l)
	addr := raw.Addr().String()

	_, s1 := dialOutcome(t, addr, admitted)
	_, s2 := dialOutcome(t, addr, admitted)
	if s1 == nil || s2 == nil {
		t.Fatal("first two connections were not admitted")
	}
	if _, s := dialOutcome(t, addr, admitted); s != nil {
		t.Fatal("a third pending connection from one source was admitted")
	}
	// An upgraded connection leaves the pending count, so the source may open another...
	ConnState(s1, http.StateHijacked)
	ConnState(s1, http.StateHijacked) // idempotent
	_, s3 := dialOutcome(t, addr, admitted)
	if s3 == nil {
		t.Fatal("not admitted after an upgrade freed a pending slot")
	}
	// ...and only up to the pending cap again.
	if _, s := dialOutcome(t, addr, admitted); s != nil {
		t.Fatal("pending cap exceeded after an upgrade")
	}
	// Closing (twice) gives back exactly one slot.
	_ = s2.Close()
	_ = s2.Close()
	_, s4 := dialOutcome(t, addr, admitted)
	if s4 == nil {
		t.Fatal("not admitted after a pending connection closed")
	}
	ConnState(s3, http.StateHijacked)
	ConnState(s4, http.StateHijacked)
	// Now 3 are open, all upgraded: one more fits the total of 4, then the total is full.
	_, s5 := dialOutcome(t, addr, admitted)
	if s5 == nil {
		t.Fatal("not admitted below the total limit")
	}
	ConnState(s5, http.StateHijacked)
	if _, s := dialOutcome(t, addr, admitted); s != nil {
		t.Fatal("admitted over the total limit")
	}
	// Closing an upgraded connection frees a slot of the total.
	_ = s1.Close()
	if _, s := dialOutcome(t, addr, admitted); s == nil {
		t.Fatal("not admitted after an upgraded connection closed")
	}
}

func TestLimitListenerUnlimited(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admitted := acceptAll(t, LimitListener(raw, 0))
	for i := 0; i < 5; i++ {
		if _, s := dialOutcome(t, raw.Addr().String(), admitted); s == nil {
			t.Fatalf("connection %d rejected without a limit", i)
		}
	}
}
