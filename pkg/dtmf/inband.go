package dtmf

import "math"

// DTMF frequencies (ITU-T Q.23): digits are one low-group (row) and one high-group (column)
// tone.
var (
	rowFreqs = [4]float64{697, 770, 852, 941}
	colFreqs = [4]float64{1209, 1336, 1477, 1633}
	// keypad is the digit of each (row, column).
	keypad = [16]byte{'1', '2', '3', 'A', '4', '5', '6', 'B', '7', '8', '9', 'C', '*', '0', '#', 'D'}
)

// Limits of the in-band detector (PROTOCOL.md §31, after ITU-T Q.24). Each is set between
// what Q.24 says must be accepted and what must be rejected, with room for codec distortion.
const (
	// BlockMS is the analysis block: short enough that a 40 ms tone always covers three whole
	// blocks, long enough to tell the tones apart.
	BlockMS = 10
	// minBlocks is how many consecutive blocks must carry the same digit at the right
	// frequencies before it is taken, strictBlocks of them (nearly) whole: 40 ms tones always
	// have them, also when a codec smears their edges; tones under 23 ms never do (the least
	// they take is half a block, a whole one and nine tenths of one, see the fractions).
	minBlocks    = 3
	strictBlocks = 2
	// endBlocks is how many blocks without the digit end it: an interruption of up to 10 ms
	// does not split a digit, a pause of 40 ms does.
	endBlocks = 3
	// maxOffset is the largest frequency error accepted, as a fraction: Q.24 accepts ±1.5 %
	// and rejects ±3.5 %.
	maxOffset = 0.025
	// acceptOffset is the error Q.24 says must be accepted.
	acceptOffset = 0.015
	// minLevelDBm0 is the weakest tone accepted (Q.24's must-accept range ends at -25 dBm0).
	minLevelDBm0 = -30
	// maxNormalTwistDB and maxReverseTwistDB: how much stronger the low tone may be than the
	// high one (normal twist, Q.24: accept 8 dB) and the reverse (accept 4 dB); the extra
	// decibel covers the filters' loss on an off-frequency tone.
	maxNormalTwistDB  = 9
	maxReverseTwistDB = 5
	// minFraction is the share of a block's energy the two tones must hold for the block to
	// carry the digit. A block only partly covered by a tone holds that part's share.
	minFraction = 0.5
	// strictFraction is the share the tones must hold, their frequency errors allowed for, in
	// strictBlocks blocks of a digit before it is taken: a block less than 90 % covered by the
	// tone fails, which is how short tones are refused. Speech and music spread their energy
	// over many frequencies; a voice whose harmonics fall on a DTMF pair still leaves 15-30 %
	// elsewhere.
	strictFraction = 0.9
)

// dBm0Peak is the peak amplitude of a 0 dBm0 sine in 16-bit linear PCM: G.711's largest
// sine is +3.17 dBm0 (ITU-T G.711), at full scale.
const dBm0Peak = 32767 / 1.44

// Inband finds DTMF digits in decoded audio (PROTOCOL.md §31): Goertzel filters at the eight
// DTMF frequencies over 10 ms blocks; a block carries a digit when one tone of each group is
// loud enough, the two are within the twist limits and hold most of the block's energy; the
// tones' exact frequencies come from their phase advance between blocks, which tells ±1.5 %
// from ±3.5 % where the filters' width cannot. A digit is taken after minBlocks such blocks
// in a row, strictBlocks of them held nearly whole by the two tones, and reported once, when
// it ends, with its duration.
//
// Not safe for concurrent use; Process allocates nothing.
type Inband struct {
	rate, n     int
	buf         []float32
	fill        int
	rowCoef     [4]float32
	colCoef     [4]float32
	bins        [8]bin          // rows then columns
	leaks       [4][4]complex64 // leaks[r][c]: of column tone c in row bin r (conjugate: the reverse)
	minAmp2     float32         // |α|² of the weakest tone accepted
	minRatio    float32         // minFraction / (2N), for the energy test
	strictRatio float32         // strictFraction / (2N)

	block int64 // blocks analysed so far

	prevDigit int // the digit the previous block carried, -1 for none
	prevRow   complex64
	prevCol   complex64
	prevPow   [3]float32 // the previous block's row and column powers and cross term
	prevE     float32    // and its energy

	run        int   // consecutive blocks of prevDigit, each pair's frequencies checked
	runStart   int64 // the first block of that run
	runStrict  int   // how many of them passed the strict test
	lastStrict bool  // the run's last block is counted in runStrict

	on       bool
	cur      int   // the digit being heard
	curStart int64 // its first and last blocks
	curLast  int64
	misses   int
}

// NewInband analyses audio at rate Hz (8000 is what sessions feed it).
func NewInband(rate int) *Inband {
	n := rate * BlockMS / 1000
	d := &Inband{rate: rate, n: n, buf: make([]float32, n), prevDigit: -1}
	for i := range 4 {
		d.bins[i] = newBin(rowFreqs[i], rate, n)
		d.bins[4+i] = newBin(colFreqs[i], rate, n)
		d.rowCoef[i] = d.bins[i].coef
		d.colCoef[i] = d.bins[4+i].coef
	}
	for r := range 4 {
		for c := range 4 {
			d.leaks[r][c] = leak(rowFreqs[r], colFreqs[c], rate, n)
		}
	}
	amp := dBm0Peak * math.Pow(10, minLevelDBm0/20.0)
	d.minAmp2 = float32(amp * amp / 4)
	d.minRatio = minFraction / float32(2*n)
	d.strictRatio = strictFraction / float32(2*n)
	return d
}

// Process takes the next piece of audio (any length) and appends the digits that ended in it
// to dst.
func (d *Inband) Process(dst []Report, pcm []int16) []Report {
	for len(pcm) > 0 {
		d.fill, pcm = fillBlock(d.buf[:d.n], d.fill, pcm)
		if d.fill == d.n {
			d.fill = 0
			dst = d.analyse(dst)
		}
	}
	return dst
}

// Flush ends a digit still being heard (the audio stopped) and appends it to dst.
func (d *Inband) Flush(dst []Report) []Report {
	if d.on {
		dst = d.emit(dst)
	}
	d.fill, d.prevDigit, d.run = 0, -1, 0
	return dst
}

// analyse handles one full block.
func (d *Inband) analyse(dst []Report) []Report {
	x := d.buf[:d.n]
	var energy float32
	for _, v := range x {
		energy += v * v
	}
	s1r, s2r := goertzel4(x, &d.rowCoef)
	s1c, s2c := goertzel4(x, &d.colCoef)
	var amp [8]complex64
	var pow [8]float32
	for i := range 4 {
		amp[i] = d.bins[i].amplitude(s1r[i], s2r[i])
		amp[4+i] = d.bins[4+i].amplitude(s1c[i], s2c[i])
	}
	for i := range 8 {
		pow[i] = abs2(amp[i])
	}
	r, c := 0, 0
	for i := 1; i < 4; i++ {
		if pow[i] > pow[r] {
			r = i
		}
		if pow[4+i] > pow[4+c] {
			c = i
		}
	}
	// Take each tone's leak out of the other: solve u_r = α_r + k·α_c, u_c = α_c + k̄·α_r.
	k := d.leaks[r][c]
	det := 1 - abs2(k)
	ar := (amp[r] - k*amp[4+c]) / complex(det, 0)
	ac := (amp[4+c] - conj(k)*amp[r]) / complex(det, 0)
	pr, pc := abs2(ar), abs2(ac)
	// The two tones' energy over the block: 2N(|α_r|²+|α_c|²) and their cross term, which
	// does not vanish over 10 ms (the tones are 2.7 to 9.4 cycles apart per block).
	cross := 2 * real(ar*conj(ac)*conj(k))

	digit := -1
	if pr >= d.minAmp2 && pc >= d.minAmp2 &&
		pr <= pc*normalTwist && pc <= pr*reverseTwist &&
		pr+pc+cross >= d.minRatio*energy {
		digit = r*4 + c
	}
	linked, strictCur, strictPrev := false, false, false
	if digit >= 0 && digit == d.prevDigit {
		offR := d.bins[r].offset(ar, d.prevRow)
		offC := d.bins[4+c].offset(ac, d.prevCol)
		if math.Abs(offR) <= maxOffset*d.bins[r].freq && math.Abs(offC) <= maxOffset*d.bins[4+c].freq {
			linked = true
			// Now that the frequencies are known, the tones' true power is known too: a
			// filter passes a tone off its centre by δ with the gain |D(2πδ/rate)/N|². With
			// it, the two tones must hold nearly all of a block (speech whose harmonics
			// fall on a pair holds 70-85 %). Only errors Q.24 says must be accepted (1.5 %)
			// are made up for.
			gr := d.gain(min(math.Abs(offR), acceptOffset*d.bins[r].freq))
			gc := d.gain(min(math.Abs(offC), acceptOffset*d.bins[4+c].freq))
			gx := float32(math.Sqrt(float64(gr * gc)))
			strictCur = pr/gr+pc/gc+cross/gx >= d.strictRatio*energy
			strictPrev = d.prevPow[0]/gr+d.prevPow[1]/gc+d.prevPow[2]/gx >= d.strictRatio*d.prevE
		}
	}
	d.prevDigit, d.prevRow, d.prevCol = digit, ar, ac
	d.prevPow, d.prevE = [3]float32{pr, pc, cross}, energy

	switch {
	case digit < 0:
		d.run = 0
	case !linked:
		d.run, d.runStart, d.runStrict, d.lastStrict = 1, d.block, 0, false
	default:
		d.run++
		if strictPrev && !d.lastStrict {
			d.runStrict++
		}
		if d.lastStrict = strictCur; strictCur {
			d.runStrict++
		}
	}
	if d.on {
		// The digit's frequencies were checked when it was taken: a block that carries it
		// keeps it going even after a dropout, when there is no previous block to compare.
		if digit == d.cur {
			d.misses, d.curLast = 0, d.block
		} else if d.misses++; d.misses >= endBlocks {
			dst = d.emit(dst)
		}
	}
	if !d.on && d.run >= minBlocks && d.runStrict >= strictBlocks {
		d.on, d.cur, d.curStart, d.curLast, d.misses = true, digit, d.runStart, d.block, 0
	}
	d.block++
	return dst
}

// gain is the power a bin passes of a tone offset Hz away from its centre.
func (d *Inband) gain(offset float64) float32 { return gainAt(offset, d.rate, d.n) }

// emit ends the current digit and appends it.
func (d *Inband) emit(dst []Report) []Report {
	d.on = false
	return append(dst, Report{
		ID:    eventOf(d.cur),
		Digit: keypad[d.cur],
		Ticks: uint32(d.curLast-d.curStart+1) * uint32(d.n),
		Ended: true,
	})
}

// eventOf is the RFC 4733 event code of keypad index i.
func eventOf(i int) uint8 {
	id, _ := EventID(keypad[i])
	return id
}

// Twist limits as power ratios: 10^(dB/10).
const (
	normalTwist  = 7.943282347242816  // maxNormalTwistDB
	reverseTwist = 3.1622776601683795 // maxReverseTwistDB
)
