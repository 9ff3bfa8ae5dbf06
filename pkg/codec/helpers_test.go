package codec

import (
	"math"
	"os"
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

func TestMain(m *testing.M) {
	// Corrupt-payload and fuzz tests make FFmpeg log an error per packet; only fatal ones are
	// worth seeing here. (Process-wide FFmpeg state: the server sets its own level in main.)
	astiav.SetLogLevel(astiav.LogLevelFatal)
	os.Exit(m.Run())
}

// packet is one RTP packet of a test stream.
type packet struct {
	payload []byte
	seq     uint16
	ts      uint32
}

// encodeStream encodes pcm (at c's sample rate, or at rate for Opus) into 20 ms payloads of
// c with our own Encoder, numbered from seq 1000 and timestamp 5000.
func encodeStream(t testing.TB, c Codec, rate int, pcm []int16) []packet {
	t.Helper()
	enc, err := NewEncoder(c, rate, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out []packet
	seq, ts := uint16(1000), uint32(5000)
	for _, fr := range audiotest.Frames(pcm, enc.FrameSize()) {
		p, err := enc.Encode(nil, fr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, packet{p, seq, ts})
		seq++
		ts += c.TimestampStep()
	}
	return out
}

// judge decodes a stream of destination payloads with a decoder independent of the one under
// test: the Go reference decoder for G.711, the Debian ffmpeg CLI for G.722 and (through an
// Ogg file) for Opus. It returns PCM at the codec's sample rate. For Opus the CLI is told to
// use libopus, the reference decoder of RFC 6716, rather than FFmpeg's native decoder, which
// is not bit-exact and measured up to 13 dB lower SNR on SILK streams (PCMA→opus 1 kHz:
// 20.2 dB native, 33.9 dB libopus).
func judge(t testing.TB, c Codec, payloads [][]byte) []int16 {
	t.Helper()
	var all []byte
	for _, p := range payloads {
		all = append(all, p...)
	}
	switch c {
	case PCMU:
		return audiotest.DecodeULaw(all)
	case PCMA:
		return audiotest.DecodeALaw(all)
	case G722:
		return audiotest.FFmpegDecode(t, "g722", all, 0)
	case Opus:
		ogg, err := audiotest.WriteOggOpus(payloads, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		return audiotest.FFmpegDecodeWith(t, "ogg", "libopus", ogg, 0)
	}
	t.Fatalf("no judge for %v", c)
	return nil
}

// resample converts pcm with our Resampler (tested on its own in resampler_test.go).
func resample(t testing.TB, pcm []int16, from, to int) []int16 {
	t.Helper()
	if from == to {
		return pcm
	}
	r, err := NewResampler(from, to)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out, err := r.Resample(nil, pcm)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// within reports whether got is within 1 % of want.
func within(got, want float64) bool { return got > want*0.99 && got < want*1.01 }

func copies(n int, v []byte) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// lostFrameSNR is the SNR in dB of got against intact over the given frames (frameLen samples
// each): how closely a decoder rebuilt frames that were lost.
func lostFrameSNR(intact, got []int16, frameLen int, frames map[int]bool) float64 {
	var sig, noise float64
	for i := range frames {
		for j := i * frameLen; j < (i+1)*frameLen; j++ {
			x, d := float64(intact[j]), float64(got[j])-float64(intact[j])
			sig += x * x
			noise += d * d
		}
	}
	return 10 * math.Log10(sig/noise)
}
