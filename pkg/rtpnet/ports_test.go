package rtpnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// freeRange finds an even base port such that [base, base+2*pairs) can all
// be bound on 127.0.0.1 right now. It searches below the Linux ephemeral
// range (32768+) so sockets other tests open with port 0 do not interfere.
func freeRange(t *testing.T, pairs int) int {
	t.Helper()
	for range 200 {
		base := 20000 + 2*rand.IntN(6000-pairs)
		var held []*net.UDPConn
		ok := true
		for p := base; p < base+2*pairs; p++ {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
			if err != nil {
				ok = false
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no free range of %d pairs found", pairs)
	return 0
}

func newAlloc(t *testing.T, start, end int) *PortAllocator {
	t.Helper()
	a, err := NewPortAllocator(loopback, start, end)
	if err != nil {
		t.Fatalf("NewPortAllocator(%d, %d): %v", start, end, err)
	}
	return a
}

func mustAllocate(t *testing.T, a *PortAllocator) *PortPair {
	t.Helper()
	pp, err := a.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { pp.Close() })
	return pp
}

func localPort(c *UDPSocket) int { return int(c.LocalAddr().Port()) }

func TestNewPortAllocatorPool(t *testing.T) {
	cases := []struct {
		start, end, first, pairs int
	}{
		{30000, 39999, 30000, 5000},
		{30001, 40000, 30002, 4999}, // start up to even, end down to odd
		{30000, 30001, 30000, 1},
		{30001, 30003, 30002, 1},
		{65534, 65535, 65534, 1},
	}
	for _, c := range cases {
		a := newAlloc(t, c.start, c.end)
		if a.first != c.first || a.Pairs() != c.pairs {
			t.Errorf("range %d-%d: first %d pairs %d, want %d %d", c.start, c.end, a.first, a.Pairs(), c.first, c.pairs)
		}
	}
	bad := []struct{ start, end int }{
		{0, 100}, {100, 65536}, {200, 100}, {30000, 30000}, {30001, 30002}, {-5, 10},
	}
	for _, c := range bad {
		if _, err := NewPortAllocator(loopback, c.start, c.end); err == nil {
			t.Errorf("range %d-%d: want error", c.start, c.end)
		}
	}
	if _, err := NewPortAllocator(netip.Addr{}, 30000, 30001); err == nil {
		t.Error("invalid media_ip: want error")
	}
}

func TestAllocateEvenOddPairOnMediaIP(t *testing.T) {
	base := freeRange(t, 2)
	a := newAlloc(t, base, base+3)
	if a.MediaIP() != loopback {
		t.Fatalf("MediaIP %v", a.MediaIP())
	}
	pp := mustAllocate(t, a)
	rtp, rtcp := localPort(pp.RTP), localPort(pp.RTCP)
	if rtp%2 != 0 || rtcp != rtp+1 || pp.Port() != rtp {
		t.Fatalf("pair RTP %d RTCP %d Port() %d: want even and even+1", rtp, rtcp, pp.Port())
	}
	if rtp != base {
		t.Fatalf("first allocation got %d, want range start %d", rtp, base)
	}
	for _, c := range []*UDPSocket{pp.RTP, pp.RTCP} {
		la := c.LocalAddr()
		if la.Addr().Unmap() != loopback {
			t.Fatalf("socket bound on %v, want %v", la.Addr(), loopback)
		}
		// The sockets are real: a datagram sent to each arrives, and an answer goes back.
		peer, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(la))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		var n int
		var from netip.AddrPort
		deadline := time.Now().Add(2 * time.Second)
		for err = ErrWouldBlock; errors.Is(err, ErrWouldBlock) && time.Now().Before(deadline); {
			n, from, err = c.ReadFrom(buf)
			if errors.Is(err, ErrWouldBlock) {
				time.Sleep(time.Millisecond)
			}
		}
		if err != nil || string(buf[:n]) != "ping" || from != peer.LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Fatalf("read on %v: %q from %v, %v", la, buf[:n], from, err)
		}
		if err := c.WriteTo([]byte("pong"), from); err != nil {
			t.Fatal(err)
		}
		peer.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := peer.Read(buf); err != nil || string(buf[:n]) != "pong" {
			t.Fatalf("answer from %v: %q, %v", la, buf[:n], err)
		}
		peer.Close()
	}
}

func TestAllocateRoundRobinWraps(t *testing.T) {
	base := freeRange(t, 3)
	a := newAlloc(t, base, base+5)
	want := []int{base, base + 2, base + 4, base, base + 2}
	for i, w := range want {
		pp := mustAllocate(t, a)
		if pp.Port() != w {
			t.Fatalf("allocation %d: port %d, want %d (cursor must move on even though the previous pair was released)", i, pp.Port(), w)
		}
		pp.Close()
	}
}

func TestAllocateExhaustedMessage(t *testing.T) {
	base := freeRange(t, 2)
	// Configured with odd start and even end: the pool is the single pair
	// base+2/base+3, the message still names the configured range.
	start, end := base+1, base+4
	a := newAlloc(t, start, end)
	if a.Pairs() != 1 {
		t.Fatalf("pairs = %d, want 1", a.Pairs())
	}
	pp := mustAllocate(t, a)
	if pp.Port() != base+2 {
		t.Fatalf("port %d, want %d", pp.Port(), base+2)
	}
	_, err := a.Allocate()
	if err == nil {
		t.Fatal("second allocation from a one-pair pool succeeded")
	}
	if got, want := err.Error(), fmt.Sprintf("No available port pairs in range %d-%d", start, end); got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
	if !errors.Is(err, ErrNoPortPairs) {
		t.Fatalf("errors.Is(%v, ErrNoPortPairs) = false", err)
	}
}

func TestAllocateSkipsPortsHeldElsewhere(t *testing.T) {
	base := freeRange(t, 3)
	// Another process holds the RTCP port of the first pair and the RTP
	// port of the second: only the third pair is usable.
	for _, p := range []int{base + 1, base + 2} {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	a := newAlloc(t, base, base+5)
	pp := mustAllocate(t, a)
	if pp.Port() != base+4 {
		t.Fatalf("got port %d, want %d (pairs with a held port must be skipped)", pp.Port(), base+4)
	}
	// The half-bound first pair must not have leaked its RTP socket.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: base})
	if err != nil {
		t.Fatalf("port %d still bound after a failed pair: %v", base, err)
	}
	c.Close()
	if _, err := a.Allocate(); !errors.Is(err, ErrNoPortPairs) {
		t.Fatalf("want exhaustion, got %v", err)
	}
}

func TestReleaseMakesPairReusable(t *testing.T) {
	base := freeRange(t, 1)
	a := newAlloc(t, base, base+1)
	pp := mustAllocate(t, a)
	if _, err := a.Allocate(); !errors.Is(err, ErrNoPortPairs) {
		t.Fatalf("want exhaustion while held, got %v", err)
	}
	if err := pp.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := pp.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var nilPair *PortPair
	if err := nilPair.Close(); err != nil {
		t.Fatalf("nil Close: %v", err)
	}
	pp2 := mustAllocate(t, a)
	if pp2.Port() != base {
		t.Fatalf("reallocated port %d, want %d", pp2.Port(), base)
	}
}

func TestCloseConcurrent(t *testing.T) {
	base := freeRange(t, 1)
	pp := mustAllocate(t, newAlloc(t, base, base+1))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { pp.Close() })
	}
	wg.Wait()
}

func TestConcurrentAllocationNeverSharesAPair(t *testing.T) {
	const pairs, workers, rounds = 24, 8, 25
	base := freeRange(t, pairs)
	a := newAlloc(t, base, base+2*pairs-1)

	var (
		mu    sync.Mutex
		inUse = map[int]bool{}
		wg    sync.WaitGroup
		errs  = make(chan error, workers*rounds)
	)
	for range workers {
		wg.Go(func() {
			for range rounds {
				pp, err := a.Allocate()
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if inUse[pp.Port()] {
					errs <- fmt.Errorf("port %d handed out twice", pp.Port())
				}
				inUse[pp.Port()] = true
				mu.Unlock()
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
				mu.Lock()
				delete(inUse, pp.Port())
				mu.Unlock()
				pp.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// All at once: as many holders as pairs, all distinct.
	held := make([]*PortPair, pairs)
	for i := range held {
		wg.Go(func() {
			pp, err := a.Allocate()
			if err != nil {
				t.Error(err)
				return
			}
			held[i] = pp
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, pp := range held {
		if pp == nil {
			continue
		}
		if seen[pp.Port()] {
			t.Errorf("port %d held twice", pp.Port())
		}
		seen[pp.Port()] = true
		defer pp.Close()
	}
	if len(seen) != pairs {
		t.Errorf("%d distinct pairs held, want %d", len(seen), pairs)
	}
}

func TestAllocatePermissionErrorFailsAtOnce(t *testing.T) {
	// The tests may run as root, where binding a low port succeeds, so the
	// EACCES a non-root process gets is injected at the bind primitive.
	a := newAlloc(t, 30000, 39999)
	calls := 0
	a.listen = func(addr netip.AddrPort) (*UDPSocket, error) {
		calls++
		return nil, fmt.Errorf("listen udp %s: %w", addr, os.NewSyscallError("bind", syscall.EACCES))
	}
	_, err := a.Allocate()
	if err == nil || !errors.Is(err, os.ErrPermission) || errors.Is(err, ErrNoPortPairs) {
		t.Fatalf("got %v, want a permission error", err)
	}
	if calls != 1 {
		t.Fatalf("%d bind attempts, want 1 (permission errors fail at once)", calls)
	}
	t.Log(err)
}

func TestAllocateForeignMediaIPFailsAtOnce(t *testing.T) {
	// 198.51.100.7 (TEST-NET-2) is not an address of this host: EADDRNOTAVAIL
	// would repeat on every port, so it is reported at once.
	a, err := NewPortAllocator(netip.MustParseAddr("198.51.100.7"), 30000, 39999)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = a.Allocate()
	if err == nil || !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("got %v, want EADDRNOTAVAIL", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestAllocateOtherBindErrorsMoveOn(t *testing.T) {
	base := freeRange(t, 2)
	a := newAlloc(t, base, base+3)
	calls := 0
	bind := a.listen
	a.listen = func(addr netip.AddrPort) (*UDPSocket, error) {
		calls++
		if int(addr.Port()) == base { // first try: address in use
			return nil, fmt.Errorf("listen udp %s: %w", addr, os.NewSyscallError("bind", syscall.EADDRINUSE))
		}
		return bind(addr)
	}
	pp := mustAllocate(t, a)
	if pp.Port() != base+2 || calls != 3 {
		t.Fatalf("port %d after %d binds, want %d after 3", pp.Port(), calls, base+2)
	}
}

func TestAllocateIPv6(t *testing.T) {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	c.Close()
	base := freeRange(t, 1)
	a, err := NewPortAllocator(netip.MustParseAddr("::1"), base, base+1)
	if err != nil {
		t.Fatal(err)
	}
	pp, err := a.Allocate()
	if err != nil {
		t.Fatalf("Allocate on ::1: %v", err)
	}
	defer pp.Close()
	if got := pp.RTP.LocalAddr().Addr(); got != netip.IPv6Loopback() {
		t.Fatalf("bound on %v", got)
	}
}

func TestAllocateTriesEachPairTwice(t *testing.T) {
	// PROTOCOL §14: exhaustion after 2 × pairs tries, so a pair freed by
	// another session while the cursor walks is found on the second lap.
	a := newAlloc(t, 30000, 30005) // 3 pairs
	var tried []int
	inUse := func(addr netip.AddrPort) (*UDPSocket, error) {
		tried = append(tried, int(addr.Port()))
		return nil, fmt.Errorf("listen udp %s: %w", addr, os.NewSyscallError("bind", syscall.EADDRINUSE))
	}
	a.listen = inUse
	if _, err := a.Allocate(); !errors.Is(err, ErrNoPortPairs) {
		t.Fatalf("want exhaustion, got %v", err)
	}
	want := []int{30000, 30002, 30004, 30000, 30002, 30004}
	if fmt.Sprint(tried) != fmt.Sprint(want) {
		t.Fatalf("tried %v, want %v", tried, want)
	}

	base := freeRange(t, 3)
	a = newAlloc(t, base, base+5)
	bind := a.listen
	calls := 0
	a.listen = func(addr netip.AddrPort) (*UDPSocket, error) {
		calls++
		if calls <= 4 { // busy during the first lap and one more try
			return inUse(addr)
		}
		return bind(addr)
	}
	pp := mustAllocate(t, a)
	if pp.Port() != base+2 {
		t.Fatalf("second lap gave %d, want %d", pp.Port(), base+2)
	}
}
