package audiotest

import (
	"errors"
	"math"
)

// Fit is the least-squares fit of a received signal to known tones.
type Fit struct {
	// Amplitudes holds the fitted peak amplitude of each tone, as a fraction of full scale.
	Amplitudes []float64
	// SignalPower and NoisePower are mean squares (full scale = 1) of the fitted tones and of the
	// residual: everything the tones do not explain, including distortion and codec noise.
	SignalPower, NoisePower float64
}

// SNR returns the signal-to-noise ratio in dB.
func (f Fit) SNR() float64 {
	if f.NoisePower <= 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(f.SignalPower/f.NoisePower)
}

// FitTones fits pcm (sampled at rate Hz) with a DC term plus a sine and a cosine at each of
// freqs by linear least squares. Fitting the sine/cosine pair per tone absorbs any amplitude
// change and any delay (a codec's look-ahead, a resampler's filter delay), so the residual is
// the noise and distortion the path added. Pass the steady-state part of a signal: codec
// start-up transients count as noise.
func FitTones(pcm []int16, rate int, freqs ...float64) (Fit, error) {
	m := 1 + 2*len(freqs)
	if len(freqs) == 0 {
		return Fit{}, errors.New("audiotest: no tone frequencies to fit")
	}
	if len(pcm) < 4*m {
		return Fit{}, errors.New("audiotest: too few samples to fit")
	}
	basis := func(i, j int) float64 {
		if j == 0 {
			return 1
		}
		f := freqs[(j-1)/2]
		ph := 2 * math.Pi * f * float64(i) / float64(rate)
		if j%2 == 1 {
			return math.Sin(ph)
		}
		return math.Cos(ph)
	}
	// Normal equations A·x = b.
	a := make([][]float64, m)
	for r := range a {
		a[r] = make([]float64, m+1)
	}
	row := make([]float64, m)
	for i, s := range pcm {
		y := float64(s) / 32768
		for j := range row {
			row[j] = basis(i, j)
		}
		for r := 0; r < m; r++ {
			for c := 0; c < m; c++ {
				a[r][c] += row[r] * row[c]
			}
			a[r][m] += row[r] * y
		}
	}
	x, err := solve(a)
	if err != nil {
		return Fit{}, err
	}
	var sig, noise float64
	for i, s := range pcm {
		y := float64(s) / 32768
		var fit, tones float64
		for j := 0; j < m; j++ {
			v := x[j] * basis(i, j)
			fit += v
			if j > 0 {
				tones += v
			}
		}
		sig += tones * tones
		noise += (y - fit) * (y - fit)
	}
	n := float64(len(pcm))
	amps := make([]float64, len(freqs))
	for k := range freqs {
		amps[k] = math.Hypot(x[1+2*k], x[2+2*k])
	}
	return Fit{Amplitudes: amps, SignalPower: sig / n, NoisePower: noise / n}, nil
}

// SNR fits pcm to the tones at freqs (see FitTones) and returns the signal-to-noise ratio in dB.
func SNR(pcm []int16, rate int, freqs ...float64) (float64, error) {
	f, err := FitTones(pcm, rate, freqs...)
	if err != nil {
		return 0, err
	}
	return f.SNR(), nil
}

// solve solves the augmented system a (m rows, m+1 columns) by Gaussian elimination with
// partial pivoting.
func solve(a [][]float64) ([]float64, error) {
	m := len(a)
	for col := 0; col < m; col++ {
		p := col
		for r := col + 1; r < m; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[p][col]) {
				p = r
			}
		}
		if math.Abs(a[p][col]) < 1e-12 {
			return nil, errors.New("audiotest: singular fit (tones too close or too short a signal)")
		}
		a[col], a[p] = a[p], a[col]
		for r := col + 1; r < m; r++ {
			k := a[r][col] / a[col][col]
			for c := col; c <= m; c++ {
				a[r][c] -= k * a[col][c]
			}
		}
	}
	x := make([]float64, m)
	for r := m - 1; r >= 0; r-- {
		v := a[r][m]
		for c := r + 1; c < m; c++ {
			v -= a[r][c] * x[c]
		}
		x[r] = v / a[r][r]
	}
	return x, nil
}
