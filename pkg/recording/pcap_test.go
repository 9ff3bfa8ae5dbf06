package recording

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	pionrtp "github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/rtpnet"
)

func newTestPCAP(t *testing.T, opts Options) (*Recorder, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "call.pcap")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewPCAP(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, path
}

func stopAndWait(t *testing.T, r *Recorder) {
	t.Helper()
	r.Stop()
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("recording did not finish")
	}
	if err := r.Err(); err != nil {
		t.Fatalf("recording finished with %v", err)
	}
}

// TestPCAPFormat checks the file byte for byte where §17 fixes it, then decodes it with gopacket.
func TestPCAPFormat(t *testing.T) {
	r, path := newTestPCAP(t, Options{})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	a, b := EndpointAddr(0), EndpointAddr(1)
	payload := bytes.Repeat([]byte{0xd5}, 160)
	for i := 0; i < 50; i++ {
		h := &rtpnet.RTPHeader{PayloadType: 0, SequenceNumber: uint16(1000 + i), Timestamp: uint32(160 * i), SSRC: 0x11223344, Marker: i == 0}
		r.CaptureRTP(t0.Add(time.Duration(i)*20*time.Millisecond), a, BridgeAddr, h, payload)
		h2 := &rtpnet.RTPHeader{PayloadType: 101, SequenceNumber: uint16(7 + i), Timestamp: 5, SSRC: 0x55667788}
		r.CaptureRTP(t0.Add(time.Duration(i)*20*time.Millisecond+time.Millisecond), b, BridgeAddr, h2, []byte{1, 0x80, 0, 160})
	}
	r.CaptureRaw(t0.Add(2*time.Second), BridgeAddr, a, []byte{0x80, 200, 0, 6, 1, 2, 3, 4})
	stopAndWait(t, r)
	if r.Packets() != 101 || r.Dropped() != 0 {
		t.Fatalf("packets %d dropped %d, want 101 and 0", r.Packets(), r.Dropped())
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if le.Uint32(raw[0:]) != 0xa1b2c3d4 || le.Uint16(raw[4:]) != 2 || le.Uint16(raw[6:]) != 4 ||
		le.Uint32(raw[16:]) != 65535 || le.Uint32(raw[20:]) != 1 {
		t.Fatalf("file header % x", raw[:24])
	}
	rec := raw[24:]
	if sec, usec := le.Uint32(rec[0:]), le.Uint32(rec[4:]); int64(sec) != t0.Unix() || usec != 678000 {
		t.Fatalf("record time %d.%06d, want %d.678000", sec, usec, t0.Unix())
	}
	frame := rec[16 : 16+le.Uint32(rec[8:])]
	wantEth := append(make([]byte, 12), 0x08, 0x00)
	if !bytes.Equal(frame[:14], wantEth) {
		t.Fatalf("ethernet % x", frame[:14])
	}
	ip := frame[14:34]
	if ip[0] != 0x45 || ip[1] != 0 || ip[4] != 0 || ip[5] != 0 || ip[6] != 0x40 || ip[7] != 0 || ip[8] != 64 || ip[9] != 17 {
		t.Fatalf("ipv4 header % x", ip)
	}
	if ipv4Checksum(ip) != 0 {
		t.Fatalf("ipv4 checksum does not verify: % x", ip)
	}
	udp := frame[34:42]
	if binary.BigEndian.Uint16(udp[0:]) != 10000 || binary.BigEndian.Uint16(udp[2:]) != 10000 || binary.BigEndian.Uint16(udp[6:]) != 0 {
		t.Fatalf("udp header % x", udp)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if pr.LinkType() != layers.LinkTypeEthernet || pr.Snaplen() != 65535 {
		t.Fatalf("link type %v snaplen %d", pr.LinkType(), pr.Snaplen())
	}
	var n int
	for {
		data, ci, err := pr.ReadPacketData()
		if err != nil {
			break
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		ipl, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udpl, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if ipl == nil || udpl == nil {
			t.Fatalf("packet %d: not IPv4/UDP: %v", n, pkt)
		}
		if ipl.Flags&layers.IPv4DontFragment == 0 || ipl.TTL != 64 {
			t.Fatalf("packet %d: flags %v ttl %d", n, ipl.Flags, ipl.TTL)
		}
		if n < 100 {
			var rtp pionrtp.Header
			if _, err := rtp.Unmarshal(udpl.Payload); err != nil {
				t.Fatalf("packet %d: rtp: %v", n, err)
			}
			wantSrc, wantSSRC, wantPT, wantSeq := "10.1.0.1", uint32(0x11223344), uint8(0), uint16(1000+n/2)
			if n%2 == 1 {
				wantSrc, wantSSRC, wantPT, wantSeq = "10.1.0.2", 0x55667788, 101, uint16(7+n/2)
			}
			if ipl.SrcIP.String() != wantSrc || ipl.DstIP.String() != "10.255.0.1" || rtp.SSRC != wantSSRC ||
				rtp.PayloadType != wantPT || rtp.SequenceNumber != wantSeq || rtp.Marker != (n == 0) {
				t.Fatalf("packet %d: %s→%s %+v", n, ipl.SrcIP, ipl.DstIP, rtp)
			}
			if !ci.Timestamp.Equal(t0.Add(time.Duration(n/2)*20*time.Millisecond + time.Duration(n%2)*time.Millisecond)) {
				t.Fatalf("packet %d: time %v", n, ci.Timestamp)
			}
		} else if ipl.SrcIP.String() != "10.255.0.1" || ipl.DstIP.String() != "10.1.0.1" {
			t.Fatalf("rtcp %s→%s", ipl.SrcIP, ipl.DstIP)
		}
		n++
	}
	if n != 101 {
		t.Fatalf("read %d packets, want 101", n)
	}

	// tshark, an independent reader, sees two RTP streams with the §17 addresses.
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("tshark is missing (make test-tools installs it)")
	}
	out, err := exec.Command("tshark", "-r", path, "-n", "-d", "udp.port==10000,rtp", "-Y", "rtp",
		"-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "rtp.ssrc", "-e", "rtp.seq", "-e", "rtp.p_type").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 100 {
		t.Fatalf("tshark shows %d RTP packets, want 100:\n%s", len(lines), out)
	}
	if lines[0] != "10.1.0.1\t10.255.0.1\t0x11223344\t1000\t0" || lines[99] != "10.1.0.2\t10.255.0.1\t0x55667788\t56\t101" {
		t.Fatalf("tshark lines: %q … %q", lines[0], lines[99])
	}
}

func TestEndpointAddr(t *testing.T) {
	for _, c := range []struct {
		n    int
		want Addr
	}{{0, Addr{10, 1, 0, 1}}, {253, Addr{10, 1, 0, 254}}, {254, Addr{10, 2, 0, 1}}, {65534, Addr{10, 254, 0, 3}}} {
		if got := EndpointAddr(c.n); got != c.want {
			t.Errorf("EndpointAddr(%d) = %v, want %v", c.n, got, c.want)
		}
	}
}

func TestIndicesReuseLastFreedFirst(t *testing.T) {
	var x Indices[string]
	for i, k := range []string{"a", "b", "c", "d"} {
		if n, ok := x.Index(k); !ok || n != i {
			t.Fatalf("Index(%s) = %d", k, n)
		}
	}
	if n, _ := x.Index("b"); n != 1 {
		t.Fatal("an endpoint keeps its index")
	}
	x.Release("b")
	x.Release("d")
	if n, _ := x.Index("e"); n != 3 {
		t.Fatalf("last freed (3) first, got %d", n)
	}
	if n, _ := x.Index("f"); n != 1 {
		t.Fatalf("then 1, got %d", n)
	}
	if n, _ := x.Index("g"); n != 4 {
		t.Fatalf("then fresh 4, got %d", n)
	}
	x.next = MaxEndpointIndex + 1
	if _, ok := x.Index("h"); ok {
		t.Fatal("no index after 65534")
	}
}

// TestSlowWriterDropsExactly blocks the writer on a pipe nobody reads: capturing never blocks,
// and every packet is either queued or counted as dropped.
func TestSlowWriterDropsExactly(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	const queue = 50
	r, err := NewPCAP(pw, Options{QueueSize: queue, FlushTimeout: 500 * time.Millisecond, FlushEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1000)
	h := &rtpnet.RTPHeader{}
	const total = 5000
	start := time.Now()
	for i := 0; i < total; i++ {
		h.SequenceNumber = uint16(i)
		r.CaptureRTP(time.Now(), EndpointAddr(0), BridgeAddr, h, payload)
		if i%100 == 0 {
			time.Sleep(2 * time.Millisecond) // let the writer fill the pipe and block
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("capturing %d packets took %v: it blocked", total, d)
	}
	if r.Packets()+r.Dropped() != total {
		t.Fatalf("packets %d + dropped %d != %d", r.Packets(), r.Dropped(), total)
	}
	// A 64 KiB pipe holds about 60 of these 1 KiB packets, the queue 50, the writer's buffer 60.
	if r.Dropped() < total-400 {
		t.Fatalf("only %d dropped: the writer was not blocked", r.Dropped())
	}
	// Stop cannot drain into a pipe nobody reads: after the flush timeout the writer is
	// aborted and the file closed, which frees the blocked write.
	r.Stop()
	select {
	case <-r.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("writer not aborted after the flush timeout")
	}
	if r.Err() == nil {
		t.Fatal("an aborted recording reports an error")
	}
}

// TestWriteErrorStopsRecording: a write that fails (the pipe's reader is gone) marks the
// recording failed.
func TestWriteErrorStopsRecording(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close()
	r, err := NewPCAP(pw, Options{QueueSize: 10, FlushEvery: 5 * time.Millisecond})
	if err == nil {
		h := &rtpnet.RTPHeader{}
		deadline := time.Now().Add(5 * time.Second)
		for !r.Failed() && time.Now().Before(deadline) {
			r.CaptureRTP(time.Now(), EndpointAddr(0), BridgeAddr, h, make([]byte, 100))
			time.Sleep(5 * time.Millisecond)
		}
		if !r.Failed() {
			t.Fatal("recording did not fail on a broken pipe")
		}
		<-r.Done()
		if r.Err() == nil {
			t.Fatal("no error")
		}
		r.Stop() // harmless after a failure
		return
	}
	// The file header itself may already hit the broken pipe.
	if !errors.Is(err, os.ErrClosed) && !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("NewPCAP: %v", err)
	}
}

func TestCaptureAllocatesNothing(t *testing.T) {
	r, _ := newTestPCAP(t, Options{QueueSize: 100000})
	defer stopAndWait(t, r)
	h := &rtpnet.RTPHeader{PayloadType: 0, SSRC: 1}
	payload := make([]byte, 160)
	now := time.Now()
	// Warm the entry pool.
	for i := 0; i < 1000; i++ {
		r.CaptureRTP(now, EndpointAddr(0), BridgeAddr, h, payload)
	}
	time.Sleep(100 * time.Millisecond)
	allocs := testing.AllocsPerRun(1000, func() {
		r.CaptureRTP(now, EndpointAddr(0), BridgeAddr, h, payload)
	})
	if allocs > 0.05 {
		t.Fatalf("CaptureRTP allocates %.2f per packet", allocs)
	}
}

func BenchmarkCaptureRTP(b *testing.B) {
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "b.pcap"))
	if err != nil {
		b.Fatal(err)
	}
	// A queue for every packet: the writer drains on its ticker, and the benchmark measures
	// CPU per packet, not how long the producer would wait for room.
	r, err := NewPCAP(f, Options{QueueSize: b.N + 1})
	if err != nil {
		b.Fatal(err)
	}
	h := &rtpnet.RTPHeader{PayloadType: 0, SSRC: 1}
	payload := make([]byte, 160)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for i := 0; i < b.N; i++ {
		h.SequenceNumber = uint16(i)
		for !r.CaptureRTP(time.Now(), EndpointAddr(0), BridgeAddr, h, payload) {
			// Measure the whole cost (capture + writer), not drops: wait for room.
			time.Sleep(10 * time.Microsecond)
		}
	}
	r.Stop()
	<-r.Done()
	b.StopTimer()
	// Process CPU, the writer goroutine's included: what a recorded packet costs whatever
	// else the machine runs.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/pkt")
	if r.Err() != nil {
		b.Fatal(r.Err())
	}
}

// processCPU is the process's user+system CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
