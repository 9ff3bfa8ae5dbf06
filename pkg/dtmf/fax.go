package dtmf

import "math"

// FaxTone is a fax (or modem) tone the Fax detector reports.
type FaxTone uint8

const (
	// CNG is the calling tone a fax machine sends while it calls: 1100 Hz, 0.5 s on, 3 s off
	// (ITU-T T.30).
	CNG FaxTone = iota
	// CED is the answer tone of a called fax machine, also the V.25 modem answer tone:
	// 2100 Hz for 2.6-4 s, possibly with phase reversals every 450 ms (ANSam).
	CED
)

func (t FaxTone) String() string {
	if t == CNG {
		return "CNG"
	}
	return "CED"
}

// Limits of the fax tone detector (PROTOCOL.md §31).
const (
	cngHz = 1100
	cedHz = 2100
	// cngTolerance and cedTolerance are the frequency errors accepted: T.30 allows ±38 Hz
	// for CNG, V.25 ±15 Hz for the answer tone (§31 says ±14).
	cngTolerance = 40
	cedTolerance = 20
	// faxBlocks is how much audio (in 10 ms blocks) the tone must dominate before it is
	// reported: ~160 ms, well within the 300 ms a caller may wait.
	faxBlocks = 16
	// faxGap is how many consecutive blocks without the tone break a count in progress: an
	// ANSam phase reversal spoils one or two blocks, a dropout a few.
	faxGap = 3
	// faxRearm is how many blocks without the tone end it, so that the next one is reported.
	faxRearm = 10
	// faxMinDBm0 is the weakest tone taken (T.30 receivers work down to -43 dBm0).
	faxMinDBm0 = -43
	// faxFraction is the share of a block's energy the tone must hold, its frequency error
	// allowed for: fax tones are pure sines (through every codec they hold 99.9 %, and 99 %
	// with noise 20 dB down); a sustained musical note on 1100 Hz, whose harmonics and
	// accompaniment fade, was measured at up to 87 %.
	faxFraction = 0.93
)

// faxTone is the state of one tone's detection.
type faxTone struct {
	bin   bin
	tol   float64
	prev  complex64
	valid bool // the previous block held the tone (prev is its amplitude)
	count int  // blocks that held the tone since the count began
	gap   int  // consecutive blocks without it
	fired bool // reported; no report again until faxRearm blocks without it
}

// Fax detects the fax calling and answer tones in decoded audio (PROTOCOL.md §31): a Goertzel
// filter per tone over 10 ms blocks; a block holds the tone when it is loud enough, holds most
// of the block's energy, and its phase advance from the previous block puts it within the
// tolerance of its frequency. After faxBlocks such blocks (gaps of under faxGap blocks
// bridged) the tone is reported once; it is reported again only after it stopped for
// faxRearm blocks. Not safe for concurrent use; Process allocates nothing.
type Fax struct {
	rate, n int
	buf     []float32
	fill    int
	coef    [4]float32
	tones   [2]faxTone
	minAmp2 float32
}

// NewFax analyses audio at rate Hz (at least 8000; sessions feed 8000).
func NewFax(rate int) *Fax {
	n := rate * BlockMS / 1000
	f := &Fax{rate: rate, n: n, buf: make([]float32, n)}
	f.tones[CNG] = faxTone{bin: newBin(cngHz, rate, n), tol: cngTolerance}
	f.tones[CED] = faxTone{bin: newBin(cedHz, rate, n), tol: cedTolerance}
	f.coef = [4]float32{f.tones[CNG].bin.coef, f.tones[CED].bin.coef}
	amp := dBm0Peak * math.Pow(10, faxMinDBm0/20.0)
	f.minAmp2 = float32(amp * amp / 4)
	return f
}

// Process takes the next piece of audio (any length) and appends the tones detected in it
// to dst.
func (f *Fax) Process(dst []FaxTone, pcm []int16) []FaxTone {
	for len(pcm) > 0 {
		f.fill, pcm = fillBlock(f.buf[:f.n], f.fill, pcm)
		if f.fill == f.n {
			f.fill = 0
			dst = f.analyse(dst)
		}
	}
	return dst
}

// Reset forgets all state (detection restarted).
func (f *Fax) Reset() {
	f.fill = 0
	for i := range f.tones {
		t := &f.tones[i]
		t.valid, t.count, t.gap, t.fired = false, 0, 0, false
	}
}

func (f *Fax) analyse(dst []FaxTone) []FaxTone {
	x := f.buf[:f.n]
	var energy float32
	for _, v := range x {
		energy += v * v
	}
	s1, s2 := goertzel4(x, &f.coef)
	for i := range f.tones {
		t := &f.tones[i]
		a := t.bin.amplitude(s1[i], s2[i])
		p := abs2(a)
		held := false
		// Before its frequency is known, a tone at the edge of the tolerance shows only the
		// filter's gain there.
		if p >= f.minAmp2 && 2*float32(f.n)*p >= faxFraction*gainAt(t.tol, f.rate, f.n)*energy {
			if t.valid {
				off := t.bin.offset(a, t.prev)
				if math.Abs(off) <= t.tol {
					g := gainAt(off, f.rate, f.n)
					held = 2*float32(f.n)*p/g >= faxFraction*energy
				}
			}
			t.valid, t.prev = true, a
		} else {
			t.valid = false
		}
		if held {
			t.gap = 0
			t.count++
			if !t.fired && t.count >= faxBlocks {
				t.fired = true
				dst = append(dst, FaxTone(i))
			}
			continue
		}
		t.gap++
		if t.gap >= faxGap {
			t.count = 0
		}
		if t.gap >= faxRearm {
			t.fired = false
		}
	}
	return dst
}

// gainAt is the power a bin of n samples at rate passes of a tone offset Hz from its centre.
func gainAt(offset float64, rate, n int) float32 {
	x := math.Pi * offset / float64(rate)
	if x == 0 {
		return 1
	}
	g := math.Sin(x*float64(n)) / (float64(n) * math.Sin(x))
	return float32(g * g)
}
