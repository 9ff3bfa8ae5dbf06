package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtpbridge/rtpbridge/pkg/codec"
)

// wavBytes builds a RIFF/WAVE file from chunks given as (id, body) pairs.
func wavBytes(chunks ...any) []byte {
	var body bytes.Buffer
	body.WriteString("WAVE")
	for i := 0; i < len(chunks); i += 2 {
		id, b := chunks[i].(string), chunks[i+1].([]byte)
		body.WriteString(id)
		_ = binary.Write(&body, binary.LittleEndian, uint32(len(b)))
		body.Write(b)
		if len(b)%2 == 1 {
			body.WriteByte(0)
		}
	}
	var out bytes.Buffer
	out.WriteString("RIFF")
	_ = binary.Write(&out, binary.LittleEndian, uint32(body.Len()))
	out.Write(body.Bytes())
	return out.Bytes()
}

func fmtChunk(format uint16, channels, rate, bits int) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b[0:], format)
	binary.LittleEndian.PutUint16(b[2:], uint16(channels))
	binary.LittleEndian.PutUint32(b[4:], uint32(rate))
	binary.LittleEndian.PutUint32(b[8:], uint32(rate*channels*bits/8))
	binary.LittleEndian.PutUint16(b[12:], uint16(channels*bits/8))
	binary.LittleEndian.PutUint16(b[14:], uint16(bits))
	return b
}

func pcmBytes(s ...int16) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

func TestParseWAV(t *testing.T) {
	t.Run("mono", func(t *testing.T) {
		w, err := parseWAV(wavBytes("fmt ", fmtChunk(1, 1, 16000, 16), "data", pcmBytes(1, -2, 32767, -32768)))
		if err != nil {
			t.Fatal(err)
		}
		if w.Rate != 16000 || w.Channels != 1 || !slices.Equal(w.Samples, []int16{1, -2, 32767, -32768}) {
			t.Fatalf("got %+v", w)
		}
	})
	t.Run("odd chunk padded, stereo averaged", func(t *testing.T) {
		w, err := parseWAV(wavBytes("LIST", []byte("odd"), "fmt ", fmtChunk(1, 2, 8000, 16), "data", pcmBytes(100, 300, -4, -6, 7)))
		if err != nil {
			t.Fatal(err)
		}
		// The trailing half frame (7) is dropped.
		if w.Rate != 8000 || w.Channels != 2 || !slices.Equal(w.Samples, []int16{200, -5}) {
			t.Fatalf("got %+v", w)
		}
	})
	t.Run("extensible PCM", func(t *testing.T) {
		f := fmtChunk(wavFormatExtensible, 1, 48000, 16)
		ext := make([]byte, 24)
		binary.LittleEndian.PutUint16(ext[0:], 22)
		binary.LittleEndian.PutUint16(ext[8:], wavFormatPCM) // sub-format GUID starts with the tag
		w, err := parseWAV(wavBytes("fmt ", append(f, ext...), "data", pcmBytes(5)))
		if err != nil || w.Rate != 48000 || !slices.Equal(w.Samples, []int16{5}) {
			t.Fatalf("got %+v, %v", w, err)
		}
	})
	t.Run("streamed data size", func(t *testing.T) {
		b := wavBytes("fmt ", fmtChunk(1, 1, 16000, 16), "data", pcmBytes(1, 2, 3))
		binary.LittleEndian.PutUint32(b[len(b)-6-4:], 0xFFFFFFFF)
		w, err := parseWAV(b)
		if err != nil || !slices.Equal(w.Samples, []int16{1, 2, 3}) {
			t.Fatalf("got %+v, %v", w, err)
		}
	})
	for name, b := range map[string][]byte{
		"not riff":      []byte("RIFX\x00\x00\x00\x00WAVE"),
		"empty":         nil,
		"no fmt":        wavBytes("data", pcmBytes(1)),
		"no data":       wavBytes("fmt ", fmtChunk(1, 1, 16000, 16)),
		"float":         wavBytes("fmt ", fmtChunk(3, 1, 16000, 32), "data", pcmBytes(1, 2)),
		"8 bit":         wavBytes("fmt ", fmtChunk(1, 1, 16000, 8), "data", pcmBytes(1)),
		"short fmt":     wavBytes("fmt ", []byte{1, 0, 1, 0}, "data", pcmBytes(1)),
		"no samples":    wavBytes("fmt ", fmtChunk(1, 1, 16000, 16), "data", []byte(nil)),
		"zero channels": wavBytes("fmt ", fmtChunk(1, 0, 16000, 16), "data", pcmBytes(1)),
		"truncated fmt": wavBytes("fmt ", fmtChunk(1, 1, 16000, 16))[:30],
	} {
		if _, err := parseWAV(b); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

// TestSpeechSample reads the committed sample and encodes it for every codec.
func TestSpeechSample(t *testing.T) {
	for _, c := range codec.Codecs() {
		p, w, err := encodeFile("../../media/speech-16k.wav", c)
		if err != nil {
			t.Fatal(err)
		}
		if w.Rate != 16000 || w.Channels != 1 {
			t.Fatalf("sample is %d Hz × %d channels", w.Rate, w.Channels)
		}
		frames := len(w.Samples) / 320
		if len(p) < frames-3 || len(p) > frames+1 {
			t.Errorf("%s: %d payloads for %d frames of audio", c, len(p), frames)
		}
		if c != codec.Opus && len(p[0]) != 160 {
			t.Errorf("%s: payload of %d bytes", c, len(p[0]))
		}
	}
}

// nearestRank is the textbook percentile the histogram must reproduce.
func nearestRank(sorted []int64, p float64) int64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestHistogramPercentiles(t *testing.T) {
	h := newHistogram()
	if h.percentile(50) != 0 || h.mean() != 0 {
		t.Fatal("empty histogram not zero")
	}
	// Small values are exact.
	for _, v := range []int64{5, 1, 3, 2, 4} {
		h.record(v)
	}
	for p, want := range map[float64]int64{1: 1, 20: 1, 20.1: 2, 50: 3, 80: 4, 99: 5, 100: 5} {
		if got := h.percentile(p); got != want {
			t.Errorf("p%v = %d, want %d", p, got, want)
		}
	}
	if h.mean() != 3 || h.min != 1 || h.max != 5 {
		t.Errorf("mean %v min %d max %d", h.mean(), h.min, h.max)
	}

	// Random latencies over six orders of magnitude: within 1/64 of the exact answer.
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 20; trial++ {
		h := newHistogram()
		vals := make([]int64, 1+rng.IntN(5000))
		for i := range vals {
			vals[i] = int64(math.Exp(rng.Float64() * 14)) // 1 µs … 1.2 s
			h.record(vals[i])
		}
		slices.Sort(vals)
		for _, p := range []float64{50, 90, 95, 99, 99.9, 100} {
			want, got := nearestRank(vals, p), h.percentile(p)
			if tol := float64(want) / 64; math.Abs(float64(got-want)) > tol {
				t.Fatalf("n=%d p%v = %d, want %d ± %.1f", len(vals), p, got, want, tol)
			}
		}
		if h.percentile(100) != vals[len(vals)-1] {
			t.Fatalf("p100 %d, max %d", h.percentile(100), vals[len(vals)-1])
		}
	}

	// Merging is the same as recording everything in one.
	a, b, all := newHistogram(), newHistogram(), newHistogram()
	for i := int64(0); i < 3000; i++ {
		v := i * i % 100000
		all.record(v)
		if i%3 == 0 {
			a.record(v)
		} else {
			b.record(v)
		}
	}
	a.merge(b)
	a.merge(newHistogram())
	for _, p := range []float64{10, 50, 99} {
		if a.percentile(p) != all.percentile(p) {
			t.Errorf("merged p%v %d, want %d", p, a.percentile(p), all.percentile(p))
		}
	}
	if a.n != all.n || a.min != all.min || a.max != all.max {
		t.Errorf("merged n/min/max %d/%d/%d, want %d/%d/%d", a.n, a.min, a.max, all.n, all.min, all.max)
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every value falls in the bucket whose range contains it, and buckets tile the line.
	prevHi := int64(-1)
	for i := 0; i < histBuckets; i++ {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d [%d, %d] after %d", i, lo, hi, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d, %d]: bucketOf %d, %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= histExact && float64(hi-lo+1)/float64(lo) > 1.0/64+1e-9 {
			t.Fatalf("bucket %d [%d, %d] wider than 1/64", i, lo, hi)
		}
		prevHi = hi
		if i == histBuckets-2 {
			break // the last bucket is open-ended
		}
	}
	if bucketOf(math.MaxInt64) != histBuckets-1 || bucketOf(-5) != 0 {
		t.Fatal("out-of-range values")
	}
}

func TestBitset(t *testing.T) {
	var b bitset
	in := map[int64]bool{}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		v := rng.Int64N(5000)
		if dup := b.set(v); dup != in[v] {
			t.Fatalf("set(%d) dup=%v, want %v", v, dup, in[v])
		}
		in[v] = true
	}
	for trial := 0; trial < 200; trial++ {
		lo := rng.Int64N(6000) - 100
		hi := lo + rng.Int64N(3000)
		var want int64
		for v := range in {
			if v >= lo && v < hi {
				want++
			}
		}
		if got := b.countRange(lo, hi); got != want {
			t.Fatalf("countRange(%d, %d) = %d, want %d", lo, hi, got, want)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// Field 2 may hold spaces and parentheses; fields 14, 15 and 24 follow the last ')'.
	line := "3280 (rtp (bridge) x) S 1 3280 3280 0 -1 4194560 1234 0 0 0 " +
		"1517 243 0 0 20 0 12 0 98765 1500000000 3690 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	got, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if got.UTime != 1517 || got.STime != 243 || got.RSSPages != 3690 {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range []string{"", "1 rtpbridge S 1", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u 2 0 0 20 0 1 0 5 6 7"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	// This process's own stat parses, and its CPU time moves forward.
	p := procProbe(os.Getpid())
	a, err := p.read()
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	if b, _ := p.read(); b < a {
		t.Fatalf("CPU time went back: %v → %v", a, b)
	}
	if rss, err := p.rss(); err != nil || rss <= 0 {
		t.Fatalf("rss %d, %v", rss, err)
	}
}

func TestParseMachineStat(t *testing.T) {
	s := "cpu  100 5 50 1000 20 1 2 3 7 0\ncpu0 50 2 25 500 10 0 1 1 0 0\nintr 1\n"
	got, err := parseMachineStat(s)
	if err != nil {
		t.Fatal(err)
	}
	// guest (7) is inside user already: not added.
	if got.Total != 100+5+50+1000+20+1+2+3 || got.Idle != 1020 {
		t.Fatalf("got %+v", got)
	}
	if _, err := parseMachineStat("cpu0 1 2 3 4\n"); err == nil {
		t.Error("per-CPU line accepted as the aggregate")
	}
}

func TestOfferAndAnswer(t *testing.T) {
	o := offerSDP(40002, codec.Opus)
	for _, want := range []string{"m=audio 40002 RTP/AVP 111\r\n", "a=rtpmap:111 opus/48000/2\r\n", "a=rtcp-mux\r\n", "a=ptime:20\r\n"} {
		if !strings.Contains(o, want) {
			t.Errorf("offer lacks %q:\n%s", want, o)
		}
	}
	if !strings.Contains(offerSDP(1, codec.G722), "a=rtpmap:9 G722/8000\r\n") {
		t.Error("G722 offer")
	}
	answer := "v=0\r\no=rtpbridge 1 1 IN IP4 127.0.0.1\r\ns=rtpbridge\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 30010 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
	addr, pt, err := parseAnswer(answer)
	if err != nil || addr != netip.MustParseAddrPort("127.0.0.1:30010") || pt != 8 {
		t.Fatalf("got %v %d %v", addr, pt, err)
	}
	if _, _, err := parseAnswer(strings.Replace(answer, "30010", "0", 1)); err == nil {
		t.Error("port 0 accepted")
	}
}
