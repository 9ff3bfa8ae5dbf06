package server_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/config"
	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
	"github.com/rtpbridge/rtpbridge/pkg/internal/rtppeer"
	"github.com/rtpbridge/rtpbridge/pkg/internal/testserver"
	"github.com/rtpbridge/rtpbridge/pkg/server"
)

// benchPlayback starts n sessions, each playing one looping file (shared or not) into a PCMU
// leg whose peer is a bare UDP socket nobody reads (so the test side costs nothing), then
// measures the whole process's CPU while they play: one iteration is one 20 ms frame period.
// cpu-us/frame is the CPU per playing endpoint per 20 ms frame: file read (ring copy), the
// session clock, resampling to 8 kHz, PCMU encoding and the send.
func benchPlayback(b *testing.B, n int, shared bool, rate int) {
	audiotest.RequireFFmpeg(b)
	dir := b.TempDir()
	srv := testserver.Start(b, func(c *config.Config) {
		c.MediaDir = dir
		c.MaxConnections = 0
		c.MaxSessions = 0
	}, server.Tuning{})
	f := audiotest.FileFormat{Ext: ".wav", Rate: rate, Channels: 1, Args: []string{"-c:a", "pcm_s16le", "-f", "wav"}}
	path := audiotest.WriteToneFile(b, dir, "moh", f, 440, 0.3, 10*time.Second)
	for i := range n {
		sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sock.Close() })
		_ = sock.SetReadBuffer(4096)
		c := testserver.Dial(b, srv)
		c.CreateSession()
		offer := rtppeer.SDP(sock.LocalAddr().(*net.UDPAddr).Port, "RTP/AVP", []string{xPCMU.format()})
		c.MustCall("endpoint.create_from_offer", map[string]any{"sdp": offer, "direction": "recvonly"}, nil)
		c.MustCall("endpoint.create_with_file", map[string]any{"source": path, "shared": shared, "loop_count": nil}, nil)
		if i%100 == 99 {
			time.Sleep(20 * time.Millisecond) // spread the sessions' clock phases a little
		}
	}
	time.Sleep(time.Second) // settle: every clock running, every decoder warm
	start := time.Now()
	startCPU := cpuTime(b)
	b.ResetTimer()
	for i := range b.N {
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond)))
	}
	b.StopTimer()
	cpu := cpuTime(b) - startCPU
	frames := float64(n) * float64(time.Since(start)) / float64(20*time.Millisecond)
	b.ReportMetric(float64(cpu.Microseconds())/frames, "cpu-us/frame")
	b.ReportMetric(float64(cpu)/float64(time.Since(start))*100, "cpu-%")
}

// BenchmarkPlaybackShared is PROTOCOL.md §18's music on hold: n sessions share one decoder.
func BenchmarkPlaybackShared(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) { benchPlayback(b, n, true, 16000) })
	}
	// An 8 kHz file needs no resampler before PCMU: the difference is the resampling's cost.
	b.Run("sessions=1000/8kHz", func(b *testing.B) { benchPlayback(b, 1000, true, 8000) })
}

// BenchmarkPlaybackUnshared: n sessions, each with its own decoder of the same file.
func BenchmarkPlaybackUnshared(b *testing.B) {
	b.Run("sessions=100", func(b *testing.B) { benchPlayback(b, 100, false, 16000) })
}
