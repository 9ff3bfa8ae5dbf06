package server_test

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pump sends b.N RTP packets from tx to dst in windows of 16 and reads each window back on rx,
// reporting the process CPU per packet. Raw sockets keep the test side's own cost small and
// allocation-free.
func pump(b *testing.B, tx, rx *net.UDPConn, dst *net.UDPAddr) {
	pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 7}, Payload: make([]byte, 160)}).Marshal()
	buf := make([]byte, 2048)
	const window = 16
	_ = rx.SetReadBuffer(1 << 20)
	b.ResetTimer()
	startCPU := cpuTime(b)
	sent := 0
	for sent < b.N {
		n := min(window, b.N-sent)
		for i := 0; i < n; i++ {
			seq := uint16(sent + i)
			pkt[2], pkt[3] = byte(seq>>8), byte(seq)
			if _, err := tx.WriteToUDP(pkt, dst); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; i < n; i++ {
			_ = rx.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, _, err := rx.ReadFromUDP(buf); err != nil {
				b.Fatalf("packet %d lost: %v", sent+i, err)
			}
		}
		sent += n
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-startCPU)/float64(b.N), "cpu-ns/pkt")
}

// BenchmarkForwardLoopback is the whole path of one forwarded packet through a real server on
// loopback: peer → UDP → reader → session loop (classify, parse, stats, route, rewrite) → UDP →
// peer. cpu-ns/pkt is the CPU of the whole process (server and both peers); subtract
// BenchmarkLoopbackBaseline (the peers alone) for rtpbridge's share.
func BenchmarkForwardLoopback(b *testing.B) {
	srv := testserver.Start(b, nil, server.Tuning{})
	c := testserver.Dial(b, srv)
	c.CreateSession()
	tx, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	rx, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer tx.Close()
	defer rx.Close()
	create := func(port int) int {
		var res struct {
			SDPAnswer string `json:"sdp_answer"`
		}
		c.MustCall("endpoint.create_from_offer", map[string]any{"sdp": plainSDP(port, 0, "PCMU/8000")}, &res)
		return mPort(b, res.SDPAnswer)
	}
	aPort := create(tx.LocalAddr().(*net.UDPAddr).Port)
	create(rx.LocalAddr().(*net.UDPAddr).Port)
	pump(b, tx, rx, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: aPort})
}

// BenchmarkLoopbackBaseline is the same traffic straight from peer to peer.
func BenchmarkLoopbackBaseline(b *testing.B) {
	tx, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	rx, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer tx.Close()
	defer rx.Close()
	pump(b, tx, rx, rx.LocalAddr().(*net.UDPAddr))
}
