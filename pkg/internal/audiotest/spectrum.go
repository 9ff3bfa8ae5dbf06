package audiotest

import (
	"math"
	"math/cmplx"
	"sort"
)

// DominantFrequency returns the frequency in Hz of the strongest spectral peak of pcm.
func DominantFrequency(pcm []int16, rate int) float64 {
	f := DominantFrequencies(pcm, rate, 1)
	if len(f) == 0 {
		return 0
	}
	return f[0]
}

// DominantFrequencies returns the frequencies in Hz of the k strongest spectral peaks of pcm,
// strongest first. Peaks are located on a Hann-windowed, zero-padded FFT and then refined by a
// golden-section search of the windowed DTFT magnitude, which resolves a steady tone to well
// under 0.1 Hz on a few hundred milliseconds of signal. Peaks closer than four FFT bins to a
// stronger one are treated as its skirt and skipped.
func DominantFrequencies(pcm []int16, rate, k int) []float64 {
	n := len(pcm)
	if n < 16 || k <= 0 {
		return nil
	}
	w := windowed(pcm)
	size := 1
	for size < 4*n {
		size <<= 1
	}
	buf := make([]complex128, size)
	for i, v := range w {
		buf[i] = complex(v, 0)
	}
	fft(buf)
	half := size / 2
	mag := make([]float64, half)
	for i := range mag {
		mag[i] = cmplx.Abs(buf[i])
	}
	type peak struct {
		bin int
		mag float64
	}
	var peaks []peak
	for i := 2; i < half-1; i++ { // skip DC and its window skirt
		if mag[i] > mag[i-1] && mag[i] >= mag[i+1] {
			peaks = append(peaks, peak{i, mag[i]})
		}
	}
	sort.Slice(peaks, func(a, b int) bool { return peaks[a].mag > peaks[b].mag })
	// Zero padding by 4 makes one "true" bin 4 padded bins wide; a Hann main lobe spans 4 true bins.
	minSep := 4 * size / n
	var chosen []int
	for _, p := range peaks {
		far := true
		for _, c := range chosen {
			if abs(p.bin-c) < minSep {
				far = false
				break
			}
		}
		if far {
			chosen = append(chosen, p.bin)
			if len(chosen) == k {
				break
			}
		}
	}
	binHz := float64(rate) / float64(size)
	out := make([]float64, 0, len(chosen))
	for _, b := range chosen {
		out = append(out, refine(w, rate, (float64(b)-1)*binHz, (float64(b)+1)*binHz))
	}
	return out
}

// windowed returns pcm scaled to [-1,1] with its mean removed and a Hann window applied.
func windowed(pcm []int16) []float64 {
	n := len(pcm)
	var mean float64
	for _, v := range pcm {
		mean += float64(v)
	}
	mean /= float64(n)
	w := make([]float64, n)
	for i, v := range pcm {
		h := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1))
		w[i] = (float64(v) - mean) / 32768 * h
	}
	return w
}

// refine maximises the DTFT magnitude of w between lo and hi Hz by golden-section search.
func refine(w []float64, rate int, lo, hi float64) float64 {
	const g = 0.6180339887498949
	a, b := lo, hi
	c := b - g*(b-a)
	d := a + g*(b-a)
	fc, fd := dtftMag(w, rate, c), dtftMag(w, rate, d)
	for b-a > 1e-4 {
		if fc > fd {
			b, d, fd = d, c, fc
			c = b - g*(b-a)
			fc = dtftMag(w, rate, c)
		} else {
			a, c, fc = c, d, fd
			d = a + g*(b-a)
			fd = dtftMag(w, rate, d)
		}
	}
	return (a + b) / 2
}

// dtftMag is the magnitude of the DTFT of w at freq Hz, computed with a Goertzel recurrence.
func dtftMag(w []float64, rate int, freq float64) float64 {
	omega := 2 * math.Pi * freq / float64(rate)
	coeff := 2 * math.Cos(omega)
	var s1, s2 float64
	for _, x := range w {
		s0 := x + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	if p < 0 {
		p = 0
	}
	return math.Sqrt(p)
}

// fft is an in-place iterative radix-2 FFT; len(x) must be a power of two.
func fft(x []complex128) {
	n := len(x)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		step := cmplx.Exp(complex(0, -2*math.Pi/float64(size)))
		for start := 0; start < n; start += size {
			w := complex(1, 0)
			for k := 0; k < size/2; k++ {
				u := x[start+k]
				v := x[start+k+size/2] * w
				x[start+k] = u + v
				x[start+k+size/2] = u - v
				w *= step
			}
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
