package codec

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// Resampler converts 16-bit mono PCM from one sample rate to another with libswresample
// (its default windowed-sinc filter). It keeps the filter state between calls, so a stream
// fed in pieces of any size comes out as one continuous signal, delayed by the filter's few
// samples.
type Resampler struct {
	inRate, outRate int
	swr             *astiav.SoftwareResampleContext
	in              *astiav.Frame // staging frame for PCM handed in from Go
	inCap           int
	out             *astiav.Frame
	outCap          int
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
	return r.out, nil
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
