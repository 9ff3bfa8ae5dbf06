package audiotest

import "math"

// Delay estimates by how many samples got lags behind ref (same rate): the lag in
// [-maxLag, maxLag] that maximises their normalised cross-correlation, refined to a fraction
// of a sample by a parabola through the peak and its neighbours. corr is the normalised
// correlation at the best whole-sample lag (1 for a delayed copy; speech through a codec
// usually 0.9 or more). Only the samples both signals cover at a lag are compared.
func Delay(ref, got []int16, maxLag int) (lag, corr float64) {
	c := make([]float64, 2*maxLag+1)
	best := 0
	for i := range c {
		c[i] = xcorr(ref, got, i-maxLag)
		if c[i] > c[best] {
			best = i
		}
	}
	lag = float64(best - maxLag)
	if best > 0 && best < len(c)-1 {
		a, b, d := c[best-1], c[best], c[best+1]
		if den := a - 2*b + d; den < 0 {
			lag += 0.5 * (a - d) / den
		}
	}
	return lag, c[best]
}

// xcorr is the normalised correlation of ref[i] with got[i+lag] over the overlap.
func xcorr(ref, got []int16, lag int) float64 {
	var sxy, sxx, syy float64
	for i := max(0, -lag); i < len(ref) && i+lag < len(got); i++ {
		x, y := float64(ref[i]), float64(got[i+lag])
		sxy += x * y
		sxx += x * x
		syy += y * y
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}

// SegmentalSNR scores got, a coded copy of the speech ref at the same rate delayed by up to
// maxLag samples, by the segmental signal-to-noise ratio that speech coding literature uses
// as a cheap stand-in for listening tests: got is aligned to ref at the lag of best
// correlation (Delay), both are cut into segments of seg samples (20 ms), and the SNR of each
// segment that holds speech (energy within 40 dB of the loudest segment) is clamped to
// [-10, 35] dB and averaged. It returns the score in dB and the lag in samples.
func SegmentalSNR(ref, got []int16, maxLag, seg int) (snr float64, lag int) {
	l, _ := Delay(ref, got, maxLag)
	lag = int(math.Round(l))
	if lag > 0 {
		got = got[lag:]
	} else {
		ref = ref[-lag:]
	}
	n := min(len(ref), len(got)) / seg
	energy := make([]float64, n)
	loudest := 0.0
	for i := range energy {
		for _, v := range ref[i*seg : (i+1)*seg] {
			energy[i] += float64(v) * float64(v)
		}
		loudest = max(loudest, energy[i])
	}
	var sum float64
	var count int
	for i, e := range energy {
		if e == 0 || e < loudest*1e-4 {
			continue
		}
		var noise float64
		for j := i * seg; j < (i+1)*seg; j++ {
			d := float64(got[j]) - float64(ref[j])
			noise += d * d
		}
		s := 35.0
		if noise > 0 {
			s = min(35, max(-10, 10*math.Log10(e/noise)))
		}
		sum += s
		count++
	}
	if count == 0 {
		return 0, lag
	}
	return sum / float64(count), lag
}
