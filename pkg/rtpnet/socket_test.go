package rtpnet

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func loopbackSocket(t *testing.T) *UDPSocket {
	t.Helper()
	s, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitBatch reads until at least one datagram arrived.
func waitBatch(t *testing.T, s *UDPSocket, b *ReadBatch) int {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, err := s.ReadBatch(b, BatchSize)
		if err == nil {
			return n
		}
		if !errors.Is(err, ErrWouldBlock) || time.Now().After(deadline) {
			t.Fatalf("ReadBatch: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSocketBatchesAndSources(t *testing.T) {
	s := loopbackSocket(t)
	b := NewReadBatch()
	if _, err := s.ReadBatch(b, BatchSize); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("empty socket: %v, want ErrWouldBlock", err)
	}
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	to := net.UDPAddrFromAddrPort(s.LocalAddr())
	for _, m := range []string{"one", "two", "three"} {
		if _, err := peer.WriteToUDP([]byte(m), to); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 1800) // longer than any media datagram: must not come back truncated to fit
	if _, err := peer.WriteToUDP(big, to); err != nil {
		t.Fatal(err)
	}
	var got []string
	var sizes []int
	for len(sizes) < 4 {
		n := waitBatch(t, s, b)
		for i := 0; i < n; i++ {
			d, src := b.Datagram(i)
			if src != peer.LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("source %v, want %v", src, peer.LocalAddr())
			}
			got = append(got, string(d))
			sizes = append(sizes, len(d))
		}
	}
	if got[0] != "one" || got[1] != "two" || got[2] != "three" || sizes[3] != 1800 {
		t.Fatalf("got %q / sizes %v", got[:3], sizes)
	}
	// An IPv4 socket cannot reach an IPv6 peer: an error, not a panic.
	if err := s.WriteTo([]byte("x"), netip.MustParseAddrPort("[2001:db8::1]:5000")); err == nil {
		t.Fatal("IPv4 socket wrote to an IPv6 address")
	}
	if err := s.WriteTo([]byte("x"), netip.AddrPort{}); err == nil {
		t.Fatal("wrote to the zero address")
	}
}

// The receive and send paths allocate nothing.
func TestSocketIODoesNotAllocate(t *testing.T) {
	a, bsock := loopbackSocket(t), loopbackSocket(t)
	batch := NewReadBatch()
	msg := make([]byte, 172)
	allocs := testing.AllocsPerRun(200, func() {
		if err := a.WriteTo(msg, bsock.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		for {
			n, err := bsock.ReadBatch(batch, BatchSize)
			if err == nil && n > 0 {
				batch.Datagram(0)
				return
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per send+receive, want 0", allocs)
	}
}
