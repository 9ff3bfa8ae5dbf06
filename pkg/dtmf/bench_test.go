package dtmf

import (
	"testing"
	"time"
)

// BenchmarkInband is the in-band detector's cost per 20 ms frame at 8 kHz (PROTOCOL.md §31;
// target ≤ 3 µs) on a digit sequence, with allocations.
func BenchmarkInband(b *testing.B) {
	var pcm []int16
	for _, c := range []byte(allDigits) {
		lo, hi := digitFreqs(b, c)
		pcm = append(pcm, dualTone(b, 8000, lo, hi, -10, -10, 100)...)
		pcm = append(pcm, silence(8000, 100)...)
	}
	d := NewInband(8000)
	out := make([]Report, 0, 4)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		off := (i * 160) % (len(pcm) - 160)
		out = d.Process(out[:0], pcm[off:off+160])
	}
}

// BenchmarkFax is the fax tone detector's cost per 20 ms frame at 8 kHz.
func BenchmarkFax(b *testing.B) {
	pcm, _ := cngCadence(b, 1100, -10, 1)
	f := NewFax(8000)
	out := make([]FaxTone, 0, 4)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		off := (i * 160) % (len(pcm) - 160)
		out = f.Process(out[:0], pcm[off:off+160])
	}
}

// BenchmarkDetectorPacket is the RFC 4733 detector's cost per telephone-event packet.
func BenchmarkDetectorPacket(b *testing.B) {
	pk := stream(b, allPresses(), 8000, 60)
	payloads := make([][4]byte, len(pk))
	for i, p := range pk {
		p.ev.Append(payloads[i][:0])
	}
	d := NewDetector(8000)
	now := time.Unix(1000, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := i % len(pk)
		d.Packet(Packet{SSRC: 1, Timestamp: pk[k].ts + uint32(i/len(pk))*1000000, Marker: pk[k].marker, Payload: payloads[k][:]}, now)
	}
}
