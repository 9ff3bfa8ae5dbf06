package codec

import (
	"runtime"
	"testing"

	"github.com/rtpbridge/rtpbridge/pkg/internal/procstat"
)

// rssBytes returns the process's resident set size, which counts the C heap FFmpeg and libopus
// allocate from (the Go heap statistics do not).
func rssBytes(t *testing.T) int64 {
	t.Helper()
	n, err := procstat.RSS()
	if err != nil {
		t.Fatalf("reading RSS from /proc: %v", err)
	}
	return n
}

func heapBytes() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestCreateCloseDoesNotLeak creates, uses and closes 200 transcoders (every pair in turn)
// plus stream halves, and checks that neither the Go heap nor the process's resident memory
// grows by more than a fraction of what the same number of pipelines costs when they are
// not closed, measured first: so the test would fail if Close freed nothing.
func TestCreateCloseDoesNotLeak(t *testing.T) {
	var pairs [][2]Codec
	for _, s := range Codecs() {
		for _, d := range Codecs() {
			pairs = append(pairs, [2]Codec{s, d})
		}
	}
	packets := map[Codec][]packet{}
	for _, c := range Codecs() {
		packets[c] = tonePackets(t, c)[:5]
	}
	cycle := func(i int) *Transcoder {
		p := pairs[i%len(pairs)]
		tr, err := NewTranscoder(p[0], p[1], DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		var frames [][]byte
		for _, pk := range packets[p[0]] {
			if frames, err = tr.Transcode(frames[:0], pk.payload, pk.seq, pk.ts); err != nil {
				t.Fatal(err)
			}
		}
		return tr
	}

	// What 48 live pipelines (three of each pair) cost.
	before := rssBytes(t)
	var live []*Transcoder
	for i := range 3 * len(pairs) {
		live = append(live, cycle(i))
	}
	perPipeline := (rssBytes(t) - before) / int64(len(live))
	for _, tr := range live {
		tr.Close()
		tr.Close() // a second Close is harmless
	}
	t.Logf("an open pipeline holds about %d KiB outside the Go heap", perPipeline/1024)

	for i := range 32 { // warm up the allocators
		cycle(i).Close()
	}
	heap0, rss0 := heapBytes(), rssBytes(t)
	const n = 200
	for i := range n {
		cycle(i).Close()
		sd, err := NewStreamDecoder(pairs[i%len(pairs)][0], 48000)
		if err != nil {
			t.Fatal(err)
		}
		sd.Close()
		se, err := NewStreamEncoder(pairs[i%len(pairs)][1], 48000, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		se.Close()
	}
	heapGrowth := int64(heapBytes()) - int64(heap0)
	rssGrowth := rssBytes(t) - rss0
	t.Logf("after %d create/use/close cycles: Go heap %+d KiB, RSS %+d KiB (leaking them would cost about %d KiB)",
		n, heapGrowth/1024, rssGrowth/1024, n*perPipeline/1024)
	if heapGrowth > 256<<10 {
		t.Errorf("Go heap grew %d KiB over %d cycles", heapGrowth/1024, n)
	}
	if limit := max(n*perPipeline/8, 2<<20); rssGrowth > limit {
		t.Errorf("RSS grew %d KiB over %d cycles (limit %d KiB)", rssGrowth/1024, n, limit/1024)
	}
}
