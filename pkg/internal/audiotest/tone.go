package audiotest

import "math"

// Tone returns n samples at rate Hz of the sum of sines at freqs, each with peak amplitude amp
// (a fraction of full scale, so 0.25 is about -12 dBFS per component). Samples saturate at the
// int16 range; keep len(freqs)*amp below 1 to avoid clipping.
func Tone(rate, n int, amp float64, freqs ...float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		t := float64(i) / float64(rate)
		var v float64
		for _, f := range freqs {
			v += amp * math.Sin(2*math.Pi*f*t)
		}
		out[i] = clip16(v * 32767)
	}
	return out
}

func clip16(v float64) int16 {
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	default:
		return int16(math.Round(v))
	}
}

// Frames splits pcm into consecutive frames of size samples, dropping an incomplete tail.
func Frames(pcm []int16, size int) [][]int16 {
	var out [][]int16
	for off := 0; off+size <= len(pcm); off += size {
		out = append(out, pcm[off:off+size])
	}
	return out
}
