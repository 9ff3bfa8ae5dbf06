package main

import (
	"math"
	"math/bits"
)

// histogram counts non-negative integer values (microseconds here) in log-linear buckets:
// exact below histExact, above it histSub buckets per power of two (each at most 1/64 ≈ 1.6 %
// wide relative to its value). Memory is fixed (a few KiB) however many values are recorded,
// so a long run with many calls does not grow, and recording allocates nothing. The exact
// minimum, maximum and sum are kept on the side.
type histogram struct {
	counts []uint32
	n      uint64
	sum    float64
	min    int64
	max    int64
}

const (
	histExactBits = 10
	histExact     = 1 << histExactBits // values below are counted exactly
	histSubBits   = 6
	histSub       = 1 << histSubBits // buckets per power of two above histExact
	histMaxBits   = 40               // values ≥ 2^40 (µs: 12 days) share the last bucket
	histBuckets   = histExact + (histMaxBits-histExactBits)*histSub
)

func newHistogram() *histogram {
	return &histogram{counts: make([]uint32, histBuckets), min: math.MaxInt64, max: math.MinInt64}
}

// bucketOf returns the bucket index of v ≥ 0.
func bucketOf(v int64) int {
	if v < histExact {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 1 // 2^e ≤ v < 2^(e+1), e ≥ histExactBits
	if e >= histMaxBits {
		return histBuckets - 1
	}
	sub := int(v>>(e-histSubBits)) & (histSub - 1)
	return histExact + (e-histExactBits)*histSub + sub
}

// bucketRange returns the smallest and largest value that fall into bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < histExact {
		return int64(i), int64(i)
	}
	i -= histExact
	e := i/histSub + histExactBits
	sub := int64(i % histSub)
	width := int64(1) << (e - histSubBits)
	lo = int64(1)<<e + sub*width
	return lo, lo + width - 1
}

// record counts one value (negative values count as 0).
func (h *histogram) record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100): the smallest recorded
// value v such that at least p % of the values are ≤ v. Exact below histExact; above it the
// middle of the value's bucket (the maximum itself for the top rank), clamped to the recorded minimum and maximum. 0 when empty.
func (h *histogram) percentile(p float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.n)))
	rank = max(1, min(rank, h.n))
	if rank == h.n {
		return h.max
	}
	var cum uint64
	for i, c := range h.counts {
		cum += uint64(c)
		if cum >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return max(h.min, min(v, h.max))
		}
	}
	return h.max
}

// mean returns the average value, 0 when empty.
func (h *histogram) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// bitset is a growable set of non-negative integers (packet indices received).
type bitset struct{ words []uint64 }

// set adds i and reports whether it was already present.
func (b *bitset) set(i int64) (dup bool) {
	w := int(i >> 6)
	if w >= len(b.words) {
		n := max(2*len(b.words), w+1, 64)
		nw := make([]uint64, n)
		copy(nw, b.words)
		b.words = nw
	}
	m := uint64(1) << (uint(i) & 63)
	dup = b.words[w]&m != 0
	b.words[w] |= m
	return dup
}

// countRange returns how many of lo ≤ i < hi are present.
func (b *bitset) countRange(lo, hi int64) int64 {
	var n int64
	for i := max(lo, 0); i < hi; {
		w := int(i >> 6)
		if w >= len(b.words) {
			break
		}
		word := b.words[w]
		start := uint(i & 63)
		end := uint(64)
		if next := int64(w+1) << 6; next > hi {
			end = uint(hi - int64(w)<<6)
		}
		mask := ^uint64(0) << start
		if end < 64 {
			mask &= (uint64(1) << end) - 1
		}
		n += int64(bits.OnesCount64(word & mask))
		i = int64(w+1) << 6
	}
	return n
}
