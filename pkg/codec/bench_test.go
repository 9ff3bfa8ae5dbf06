package codec

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// speechPackets returns the committed speech sample (media/speech-16k.wav) as 20 ms packets
// of c, encoded with our encoder at c's own rate (resampled from 16 kHz with our resampler).
func speechPackets(tb testing.TB, c Codec) []packet {
	tb.Helper()
	pcm := resample(tb, audiotest.Speech(tb), 16000, c.SampleRate())
	return encodeStream(tb, c, c.SampleRate(), pcm)
}

// benchPairs are the directions issue 4 asks to measure, then the rest.
var benchPairs = [][2]Codec{
	{PCMU, Opus}, {PCMA, Opus}, {G722, Opus}, {Opus, PCMU}, {Opus, G722}, {PCMU, G722}, {G722, PCMU}, {PCMU, PCMA},
	{PCMA, PCMU}, {PCMA, G722}, {G722, PCMA}, {Opus, PCMA},
}

// BenchmarkTranscode measures one 20 ms source packet of speech through a Transcoder per
// operation, so ns/op is the CPU cost per 20 ms frame; allocs/op must be 0.
func BenchmarkTranscode(b *testing.B) {
	for _, pair := range benchPairs {
		src, dst := pair[0], pair[1]
		b.Run(fmt.Sprintf("%s_to_%s", src, dst), func(b *testing.B) {
			packets := speechPackets(b, src)
			tr, err := NewTranscoder(src, dst, DefaultOptions())
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			var frames [][]byte
			seq, ts := uint16(0), uint32(0)
			run := func(i int) {
				p := packets[i%len(packets)]
				if frames, err = tr.Transcode(frames[:0], p.payload, seq, ts); err != nil {
					b.Fatal(err)
				}
				seq++
				ts += src.TimestampStep()
			}
			for i := 0; i < 2*len(packets); i++ { // warm up: buffers, libopus's adaptation
				run(i)
			}
			var out int
			b.ReportAllocs()
			cpu := startCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run(i)
				out += len(frames)
			}
			cpu.report(b)
			b.ReportMetric(float64(out)/float64(b.N), "frames/op")
		})
	}
}

// BenchmarkDecodeToPCM measures the mixer's per-source half: one 20 ms packet of speech to
// 48 kHz PCM.
func BenchmarkDecodeToPCM(b *testing.B) {
	for _, c := range Codecs() {
		b.Run(c.Name()+"_to_48k", func(b *testing.B) {
			packets := speechPackets(b, c)
			sd, err := NewStreamDecoder(c, 48000)
			if err != nil {
				b.Fatal(err)
			}
			defer sd.Close()
			pcm := make([]int16, 0, 5760)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := packets[i%len(packets)]
				if pcm, err = sd.Decode(pcm[:0], p.payload, uint16(i), uint32(i)*c.TimestampStep()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeFromPCM measures the mixer's per-destination half: 20 ms of 48 kHz speech
// to one payload.
func BenchmarkEncodeFromPCM(b *testing.B) {
	speech := resample(b, audiotest.Speech(b), 16000, 48000)
	frames48 := audiotest.Frames(speech, 960)
	for _, c := range Codecs() {
		b.Run("48k_to_"+c.Name(), func(b *testing.B) {
			se, err := NewStreamEncoder(c, 48000, DefaultOptions())
			if err != nil {
				b.Fatal(err)
			}
			defer se.Close()
			var out [][]byte
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if out, err = se.Encode(out[:0], frames48[i%len(frames48)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSteadyStateAllocatesNothing is the allocation half of the benchmarks as a test: after
// warm-up, a Transcode call, a StreamDecoder.Decode and a StreamEncoder.Encode allocate
// nothing on the Go heap, for every pair.
func TestSteadyStateAllocatesNothing(t *testing.T) {
	for _, pair := range benchPairs {
		src, dst := pair[0], pair[1]
		packets := speechPackets(t, src)[:100]
		tr, err := NewTranscoder(src, dst, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		var frames [][]byte
		i := 0
		run := func() {
			p := packets[i%len(packets)]
			if frames, err = tr.Transcode(frames[:0], p.payload, uint16(i), uint32(i)*src.TimestampStep()); err != nil {
				t.Fatal(err)
			}
			i++
		}
		for range 20 {
			run()
		}
		if a := testing.AllocsPerRun(len(packets), run); a != 0 {
			t.Errorf("%s→%s: %.2f allocations per Transcode", src, dst, a)
		}
		// A gap every few packets: concealment allocates nothing either.
		lossy := func() { i += 2; run() }
		if a := testing.AllocsPerRun(20, lossy); a != 0 {
			t.Errorf("%s→%s: %.2f allocations per Transcode after a gap", src, dst, a)
		}
		tr.Close()
	}
	for _, c := range Codecs() {
		packets := speechPackets(t, c)[:50]
		sd, err := NewStreamDecoder(c, 48000)
		if err != nil {
			t.Fatal(err)
		}
		se, err := NewStreamEncoder(c, 48000, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		pcm := make([]int16, 0, 5760)
		var out [][]byte
		i := 0
		run := func() {
			p := packets[i%len(packets)]
			if pcm, err = sd.Decode(pcm[:0], p.payload, uint16(i), uint32(i)*c.TimestampStep()); err != nil {
				t.Fatal(err)
			}
			if out, err = se.Encode(out[:0], pcm); err != nil {
				t.Fatal(err)
			}
			i++
		}
		for range 10 {
			run()
		}
		if a := testing.AllocsPerRun(len(packets), run); a != 0 {
			t.Errorf("%s halves: %.2f allocations per packet", c, a)
		}
		sd.Close()
		se.Close()
	}
}

// BenchmarkOpusComplexity measures PCMU→opus on speech at several libopus complexities, the
// main lever on the cost of Opus destinations (configuration key opus_complexity).
func BenchmarkOpusComplexity(b *testing.B) {
	packets := speechPackets(b, PCMU)
	for _, cx := range []int{0, 3, 5, 7, 9, 10} {
		b.Run(fmt.Sprintf("PCMU_to_opus_c%d", cx), func(b *testing.B) {
			tr, err := NewTranscoder(PCMU, Opus, Options{OpusComplexity: cx})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			var frames [][]byte
			b.ReportAllocs()
			cpu := startCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := packets[i%len(packets)]
				if frames, err = tr.Transcode(frames[:0], p.payload, uint16(i), uint32(i)*160); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}

// cpuClock measures the CPU time of the benchmark's own OS thread, so that the figure
// reported as cpu-ns/op is the work done per frame even when other processes compete for
// the machine's cores and inflate ns/op (wall time).
type cpuClock struct{ start time.Duration }

func startCPU() cpuClock {
	runtime.LockOSThread()
	return cpuClock{threadCPU()}
}

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(threadCPU()-c.start)/float64(b.N), "cpu-ns/op")
	runtime.UnlockOSThread()
}

func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD (Linux)
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
