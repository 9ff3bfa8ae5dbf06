package codec

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// Resampler converts 16-bit mono PCM from one sample rate to another with libswresample
// (its default windowed-sinc filter). It keeps the filter state between calls, so a stream
// fed in pieces of any size comes out as one continuous signal.
//
// The filter is centred on each output sample, so it needs a few input samples past it: at
// the lower of the two rates, 16 for upsampling and about 16.5 for downsampling (2 ms at
// 8 kHz). libswresample starts the output aligned with the input and holds those last samples
// back until more input arrives, so each call returns a little less than its input is worth
// and the rest comes with the next call. Resample does exactly that. The stream halves
// (StreamDecoder, StreamEncoder) instead use a resampler made by newStreamResampler, whose
// first output is preceded by as many zeros as the filter holds back: the stream is then
// delayed by that look-ahead (about 2 ms), and in return every call returns exactly what its
// input is worth (160 samples at 8 kHz → 320 at 16 kHz), so a 20 ms packet completes its
// 20 ms frame at once instead of one packet later.
type Resampler struct {
	inRate, outRate int
	swr             *astiav.SoftwareResampleContext
	in              *astiav.Frame // staging frame for PCM handed in from Go
	inCap           int
	out             *astiav.Frame
	outCap          int
	// padStart makes the first non-empty output start with the filter's look-ahead in
	// zeros (see newStreamResampler); padded is set once that has happened, and inTotal
	// counts the input until then.
	padStart, padded bool
	inTotal          int64
}

// resamplerChunk is the most samples Resample hands libswresample at once; 120 ms at 48 kHz,
// the longest frame any decoder here produces.
const resamplerChunk = 5760

// NewResampler returns a resampler from inRate to outRate Hz. Close frees it.
func NewResampler(inRate, outRate int) (*Resampler, error) {
	if inRate <= 0 || outRate <= 0 {
		return nil, fmt.Errorf("codec: resampler rates %d → %d Hz: rates must be positive", inRate, outRate)
	}
	r := &Resampler{inRate: inRate, outRate: outRate}
	if err := r.open(); err != nil {
		r.Close()
		return nil, fmt.Errorf("codec: resampler %d → %d Hz: %w", inRate, outRate, err)
	}
	return r, nil
}

// NewStreamResampler returns a resampler whose output starts with the filter's look-ahead in
// zeros, so that every call returns exactly what its input is worth (see Resampler): a 20 ms
// piece in is a 20 ms piece out, delayed by about 2 ms. Drain gives the held-back end.
func NewStreamResampler(inRate, outRate int) (*Resampler, error) {
	return newStreamResampler(inRate, outRate)
}

// newStreamResampler is NewStreamResampler.
func newStreamResampler(inRate, outRate int) (*Resampler, error) {
	r, err := NewResampler(inRate, outRate)
	if err != nil {
		return nil, err
	}
	r.padStart = true
	return r, nil
}

func (r *Resampler) open() error {
	if r.swr = astiav.AllocSoftwareResampleContext(); r.swr == nil {
		return errors.New("allocating libswresample context failed")
	}
	var err error
	r.inCap = resamplerChunk
	if r.in, err = newPCMFrame(r.inRate, r.inCap); err != nil {
		return err
	}
	r.outCap = r.outSamples(r.inCap)
	r.out, err = newPCMFrame(r.outRate, r.outCap)
	return err
}

// outSamples bounds the output for n input samples: the rate ratio plus the filter's delay.
func (r *Resampler) outSamples(n int) int {
	return n*r.outRate/r.inRate + 256
}

// InRate returns the input sample rate in Hz.
func (r *Resampler) InRate() int { return r.inRate }

// OutRate returns the output sample rate in Hz.
func (r *Resampler) OutRate() int { return r.outRate }

// Resample converts src and appends the result to dst. Because of the filter delay the
// output of one call is not exactly len(src)*OutRate/InRate samples, but over a stream the
// counts agree.
func (r *Resampler) Resample(dst, src []int16) ([]int16, error) {
	if r.swr == nil {
		return dst, errClosed
	}
	for len(src) > 0 {
		n := min(len(src), r.inCap)
		fillPCMFrame(r.in, src[:n])
		f, err := r.convert(r.in)
		if err != nil {
			return dst, err
		}
		dst = append(dst, frameSamples(f)...)
		src = src[n:]
	}
	return dst, nil
}

// convert resamples one frame into r.out, which stays valid until the next call.
func (r *Resampler) convert(in *astiav.Frame) (*astiav.Frame, error) {
	if r.swr == nil {
		return nil, errClosed
	}
	need := r.outSamples(in.NbSamples())
	var err error
	if r.outCap, err = growPCMFrame(r.out, r.outRate, r.outCap, need); err != nil {
		return nil, err
	}
	// With a buffer already allocated, swr_convert_frame takes nb_samples as the room it
	// may fill and sets it to what it wrote.
	r.out.SetNbSamples(r.outCap)
	if err := r.swr.ConvertFrame(in, r.out); err != nil {
		return nil, fmt.Errorf("codec: resampling %d → %d Hz: %w", r.inRate, r.outRate, err)
	}
	if r.padStart && !r.padded {
		r.pad(in.NbSamples())
	}
	return r.out, nil
}

// drain puts out the samples the filter still holds back, the end of the stream, into r.out,
// which stays valid until the next call. The resampler is not meant to take input afterwards.
func (r *Resampler) drain() (*astiav.Frame, error) {
	if r.swr == nil {
		return nil, errClosed
	}
	var err error
	if r.outCap, err = growPCMFrame(r.out, r.outRate, r.outCap, r.outSamples(0)); err != nil {
		return nil, err
	}
	r.out.SetNbSamples(r.outCap)
	if err := r.swr.ConvertFrame(nil, r.out); err != nil {
		return nil, fmt.Errorf("codec: draining the %d → %d Hz resampler: %w", r.inRate, r.outRate, err)
	}
	return r.out, nil
}

// Drain appends to dst the samples the filter still holds back: the end of the stream, when
// its source is gone for good. The resampler takes no input afterwards.
func (r *Resampler) Drain(dst []int16) ([]int16, error) {
	f, err := r.drain()
	if err != nil {
		return dst, err
	}
	return append(dst, frameSamples(f)...), nil
}

// pad counts the samples of the stream's first calls and, with the first output, shifts it
// right by what the filter holds back, filling the front with zeros: after that, the output
// so far is exactly what the input so far is worth.
func (r *Resampler) pad(in int) {
	r.inTotal += int64(in)
	got := r.out.NbSamples()
	if got == 0 {
		return // libswresample waits for a filter's length of input first
	}
	r.padded = true
	n := int(r.inTotal*int64(r.outRate)/int64(r.inRate)) - got
	if n <= 0 || got+n > r.outCap {
		// Nothing held back; or more than the 256 samples of headroom outSamples leaves,
		// which the filters used here never hold back (at most 16 input samples' worth).
		return
	}
	r.out.SetNbSamples(got + n)
	s := frameSamples(r.out)
	copy(s[n:], s[:got])
	clear(s[:n])
}

// Close frees the resampler's FFmpeg objects. It is safe to call more than once.
func (r *Resampler) Close() {
	if r.swr != nil {
		r.swr.Free()
		r.swr = nil
	}
	freeFrame(&r.in)
	freeFrame(&r.out)
}
