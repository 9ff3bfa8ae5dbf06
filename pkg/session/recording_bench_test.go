package session

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/recording"
)

// startFixtureRecording starts a whole-session recording in a routing fixture's session (the
// fixture holds the session's lock throughout, as the session loop would).
func startFixtureRecording(tb testing.TB, f *routingFixture, queue int, format, layout string) *recording.Recorder {
	tb.Helper()
	dir := tb.TempDir()
	f.s.mgr.opts.Recording = RecordingOptions{Dir: recording.NewDir(dir), MaxPerSession: 100, QueueSize: queue, FlushTimeout: 5 * time.Second}
	path := filepath.Join(dir, "rec."+format)
	if _, err := f.s.recordingStart(&recordingStartParams{FilePath: &path, Format: format, Layout: layout, SampleRate: 16000}); err != nil {
		tb.Fatal(err)
	}
	r := f.s.recs.active[len(f.s.recs.active)-1].rec
	tb.Cleanup(func() {
		f.s.stopAllRecordings("", time.Now()) // a no-op once stopped
		<-r.Done()
	})
	return r
}

// processCPU is the process's user+system CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestRecordedPathAllocatesNothing: with a PCAP recording taking every packet, the packet path
// still allocates nothing in steady state.
func TestRecordedPathAllocatesNothing(t *testing.T) {
	f := newRoutingFixture(t, "0", false)
	const queue = 64
	r := startFixtureRecording(t, f, queue, "pcap", "mixed")
	var seq uint16
	// Warm up: the recording's entries are made as its queue first fills, at most queue+1.
	for i := 0; i < 3*queue; i++ {
		seq++
		f.inject(seq)
	}
	time.Sleep(200 * time.Millisecond)
	allocs := testing.AllocsPerRun(500, func() {
		seq++
		f.inject(seq)
	})
	if allocs > 0 {
		t.Fatalf("recorded packet path allocates %.2f per packet", allocs)
	}
	if r.Packets() == 0 {
		t.Fatal("nothing was recorded")
	}
}

// BenchmarkRecordedRouting is the session's per-packet cost (PCMU passthrough between two
// legs) with no recording, a PCAP recording of the session, and a separate-channel WAV
// recording of it (which adds the shared decode of the source and the tap's resampler).
func BenchmarkRecordedRouting(b *testing.B) {
	for _, tc := range []struct{ name, format, layout string }{
		{"none", "", ""}, {"pcap", "pcap", "mixed"}, {"wav-separate", "wav", "separate"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := newRoutingFixture(b, "0", false)
			var r *recording.Recorder
			if tc.format != "" {
				r = startFixtureRecording(b, f, 1<<16, tc.format, tc.layout)
			}
			var seq uint16
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			for i := 0; i < b.N; i++ {
				seq++
				f.inject(seq)
			}
			if r != nil {
				// The writer's share: wait until it has written everything.
				f.s.stopAllRecordings("", time.Now())
				<-r.Done()
			}
			// Process CPU per packet, the recording writer's included.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/pkt")
			b.StopTimer()
			if r != nil && r.Dropped() > 0 {
				b.Logf("%d of %d recorded packets dropped (writer slower than the benchmark loop)", r.Dropped(), r.Packets()+r.Dropped())
			}
		})
	}
}
