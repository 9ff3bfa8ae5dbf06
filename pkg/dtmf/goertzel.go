package dtmf

import (
	"math"
	"math/cmplx"
)

// goertzel4 runs four Goertzel filters over x at once (one pass, the filters' states in
// registers) and returns each filter's last two states. coef[k] is 2·cos(ω_k).
func goertzel4(x []float32, coef *[4]float32) (s1, s2 [4]float32) {
	c0, c1, c2, c3 := coef[0], coef[1], coef[2], coef[3]
	var a0, a1, a2, a3 float32 // s[n-1]
	var b0, b1, b2, b3 float32 // s[n-2]
	for _, v := range x {
		a0, b0 = v+c0*a0-b0, a0
		a1, b1 = v+c1*a1-b1, a1
		a2, b2 = v+c2*a2-b2, a2
		a3, b3 = v+c3*a3-b3, a3
	}
	return [4]float32{a0, a1, a2, a3}, [4]float32{b0, b1, b2, b3}
}

// bin is one frequency a detector measures over blocks of N samples.
type bin struct {
	freq     float64
	coef     float32   // 2·cos ω, the Goertzel coefficient
	tail     complex64 // e^{-jω}: the final step from the filter states to the DFT
	norm     complex64 // e^{-jω(N-1)}/N: makes the DFT the complex amplitude of a tone at ω
	adv      complex64 // e^{-jωN}: removes the advance of a tone at ω over one block
	hzPerRad float64   // frequency offset in Hz per radian of unexpected advance
}

func newBin(freq float64, rate, n int) bin {
	w := 2 * math.Pi * freq / float64(rate)
	return bin{
		freq:     freq,
		coef:     float32(2 * math.Cos(w)),
		tail:     complex64(cmplx.Exp(complex(0, -w))),
		norm:     complex64(cmplx.Exp(complex(0, -w*float64(n-1))) / complex(float64(n), 0)),
		adv:      complex64(cmplx.Exp(complex(0, -w*float64(n)))),
		hzPerRad: float64(rate) / (2 * math.Pi * float64(n)),
	}
}

// amplitude turns the filter's last two states into the complex amplitude α at the bin's
// frequency: a tone A·cos(ωn+φ) over the block gives α = A/2·e^{jφ}. Other frequencies leak
// in (see leak).
func (b *bin) amplitude(s1, s2 float32) complex64 {
	return (complex(s1, 0) - complex(s2, 0)*b.tail) * b.norm
}

// leak is how much of a tone at frequency b2 (complex amplitude α) shows in the amplitude
// measured at b1 over a block of n samples: D(ω2−ω1)/N, with D the DFT of the rectangular
// window. The eight DTMF frequencies are only 1.5 to 10 filter widths apart at 10 ms, so a
// strong tone adds up to ±2 dB to the other of its pair unless it is taken out.
func leak(b1, b2 float64, rate, n int) complex64 {
	d := 2 * math.Pi * (b2 - b1) / float64(rate)
	mag := math.Sin(d*float64(n)/2) / math.Sin(d/2) / float64(n)
	return complex64(cmplx.Rect(mag, d*float64(n-1)/2))
}

// offset is the tone's distance from b's frequency in Hz, from its complex amplitudes in two
// consecutive blocks: the phase advances by 2π·f·N/rate from one block to the next, and by
// ω·N for a tone exactly at b's frequency. Unambiguous within ±rate/(2N) (±50 Hz at 10 ms).
func (b *bin) offset(a, prev complex64) float64 {
	z := a * conj(prev) * b.adv
	return math.Atan2(float64(imag(z)), float64(real(z))) * b.hzPerRad
}

func conj(z complex64) complex64 { return complex(real(z), -imag(z)) }

func abs2(z complex64) float32 { return real(z)*real(z) + imag(z)*imag(z) }

// fillBlock copies as much of pcm as fits after the first fill samples of block, as float32,
// and returns the new fill and what is left of pcm: the detectors analyse whole blocks of a
// stream handed to them in pieces of any length. The block is complete when fill is len(block).
func fillBlock(block []float32, fill int, pcm []int16) (int, []int16) {
	k := min(len(pcm), len(block)-fill)
	for i, v := range pcm[:k] {
		block[fill+i] = float32(v)
	}
	return fill + k, pcm[k:]
}
