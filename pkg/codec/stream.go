package codec

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// Loss handling limits of StreamDecoder.
const (
	// MaxConcealment is the longest gap, in milliseconds, that is concealed when a packet
	// arrives after a sequence gap. Opus's PLC has faded to silence well before, and a longer
	// burst of made-up frames sent at once only floods the receiver's jitter buffer.
	MaxConcealment = 100
	// maxDropout and maxMisorder follow RFC 3550 Appendix A.1: a jump forward larger than
	// maxDropout, or backward larger than maxMisorder, is a restarted stream, decoded without
	// concealment; a small step backward is a late or duplicate packet, dropped.
	maxDropout  = 3000
	maxMisorder = 100
)

// frameSink receives PCM frames as a StreamDecoder produces them.
type frameSink interface {
	push(f *astiav.Frame) error
}

// StreamDecoder decodes one source's RTP payloads, in arrival order, to 16-bit mono PCM at a
// chosen rate. It follows the RTP sequence numbers: a gap is concealed before the packet after
// it is decoded, so the PCM stream stays continuous; late and duplicate packets are dropped.
// For Opus the last lost frame of a gap is recovered from the in-band FEC of the packet after
// it when that packet carries any (the sender codes it when the peer asked for it with
// useinbandfec=1), and the rest of the gap is libopus's PLC; other codecs conceal with silence
// (see Decoder.Conceal). This is the per-source half of a mixer.
type StreamDecoder struct {
	dec     *Decoder
	rs      *Resampler // nil when the codec's rate is the output rate
	outRate int
	seq     seqTracker
	pcm     pcmSink
}

// NewStreamDecoder returns a decoder of c's payloads producing PCM at outRate Hz. Opus is
// decoded at outRate itself when libopus decodes to it natively (8, 12, 16, 24 or 48 kHz),
// other rates and codecs are resampled with libswresample.
func NewStreamDecoder(c Codec, outRate int) (*StreamDecoder, error) {
	if outRate <= 0 {
		return nil, fmt.Errorf("codec: stream decoder output rate %d Hz", outRate)
	}
	decRate := c.SampleRate()
	if c == Opus && OpusInputRate(outRate) {
		decRate = outRate
	}
	dec, err := NewDecoderRate(c, decRate)
	if err != nil {
		return nil, err
	}
	s := &StreamDecoder{dec: dec, outRate: outRate}
	s.seq.rate = decRate
	if outRate != decRate {
		if s.rs, err = newStreamResampler(decRate, outRate); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Codec returns the source codec.
func (s *StreamDecoder) Codec() Codec { return s.dec.codec }

// Rate returns the output sample rate in Hz.
func (s *StreamDecoder) Rate() int { return s.outRate }

// Decode takes the next RTP packet of the source (payload, sequence number, timestamp) and
// appends its PCM, preceded by concealment for any packets lost before it, to dst. A corrupt
// payload returns an error; dst then still holds any concealment produced for an earlier gap,
// which belongs in the stream, and the corrupt packet is concealed in turn when the next one
// arrives.
func (s *StreamDecoder) Decode(dst []int16, payload []byte, seq uint16, ts uint32) ([]int16, error) {
	s.pcm.buf = dst
	err := s.run(payload, seq, ts, &s.pcm)
	dst, s.pcm.buf = s.pcm.buf, nil
	return dst, err
}

// run decodes one packet (after concealing a gap before it) and pushes the frames to sink.
func (s *StreamDecoder) run(payload []byte, seq uint16, ts uint32, sink frameSink) error {
	act, conceal := s.seq.next(seq, ts, s.dec.codec)
	switch act {
	case actDrop:
		return nil
	case actConceal:
		if err := s.conceal(conceal, payload, sink); err != nil {
			return err
		}
		s.seq.concealed(seq, ts, s.dec.codec)
	}
	f, err := s.dec.decodeFrame(payload)
	if err != nil {
		return err
	}
	s.seq.decoded(seq, ts, f.NbSamples())
	return s.emit(f, sink)
}

// conceal pushes about samples samples (at the decoder's rate) of concealment for the packets
// lost before next to sink: for Opus, the frame just before next recovered from next's in-band
// FEC when the gap is at least a frame of next long (libopus conceals it instead when next
// carries no FEC), and PLC for the rest, first.
func (s *StreamDecoder) conceal(samples int, next []byte, sink frameSink) error {
	fec := s.dec.fecSamples(next)
	if fec > samples {
		fec = 0
	}
	if err := s.plc(samples-fec, sink); err != nil {
		return err
	}
	if fec == 0 {
		return nil
	}
	f, err := s.dec.fecFrame(next)
	if err != nil {
		// next is corrupt (its own decode will fail too): conceal its share as well.
		return s.plc(fec, sink)
	}
	return s.emit(f, sink)
}

// plc pushes about samples samples (at the decoder's rate) of packet-loss concealment to sink.
func (s *StreamDecoder) plc(samples int, sink frameSink) error {
	for samples > 0 {
		f, err := s.dec.concealFrame(samples)
		if err != nil {
			return err
		}
		samples -= f.NbSamples()
		if err := s.emit(f, sink); err != nil {
			return err
		}
	}
	return nil
}

// emit resamples f if needed and hands it to sink.
func (s *StreamDecoder) emit(f *astiav.Frame, sink frameSink) error {
	if s.rs != nil {
		var err error
		if f, err = s.rs.convert(f); err != nil {
			return err
		}
	}
	if f.NbSamples() == 0 {
		return nil
	}
	return sink.push(f)
}

// Close frees the FFmpeg objects. It is safe to call more than once.
func (s *StreamDecoder) Close() {
	if s.dec != nil {
		s.dec.Close()
	}
	if s.rs != nil {
		s.rs.Close()
	}
}

// pcmSink appends frames to a Go slice.
type pcmSink struct{ buf []int16 }

func (p *pcmSink) push(f *astiav.Frame) error {
	p.buf = append(p.buf, frameSamples(f)...)
	return nil
}

// seqAction is what a StreamDecoder does with an arriving packet.
type seqAction int

const (
	actDecode  seqAction = iota // in order, first packet or restarted stream
	actConceal                  // conceal a gap, then decode
	actDrop                     // late or duplicate
)

// seqTracker follows a source's sequence numbers and timestamps.
type seqTracker struct {
	// rate is the sample rate of the decoded audio the tracker counts in, when it is not the
	// codec's SampleRate (Opus decoded at 8 or 16 kHz); zero means SampleRate.
	rate    int
	started bool
	lastSeq uint16
	lastTS  uint32
	// lastSamples is the duration of the last decoded packet in audio samples, the best
	// guess of a lost packet's duration when timestamps do not tell.
	lastSamples int
}

// next classifies the packet (seq, ts) and, for a gap, returns how many audio samples of c
// to conceal: the timestamp gap when it is plausible, else the number of lost packets times
// the last packet's duration; at most MaxConcealment.
func (t *seqTracker) next(seq uint16, ts uint32, c Codec) (seqAction, int) {
	if !t.started {
		return actDecode, 0
	}
	delta := int(int16(seq - t.lastSeq))
	switch {
	case delta == 1:
		return actDecode, 0
	case delta <= 0 && delta >= -maxMisorder:
		return actDrop, 0
	case delta < 0 || delta > maxDropout:
		return actDecode, 0
	}
	lost := delta - 1
	samples := lost * t.lastSamples
	rate := t.audioRate(c)
	// Timestamps in RTP clock units; G.722's clock runs at half its audio rate.
	ticks := int64(int32(ts-t.lastTS)) - int64(t.lastSamples)*int64(c.ClockRate())/int64(rate)
	if ticks > 0 {
		samples = int(ticks * int64(rate) / int64(c.ClockRate()))
	}
	samples = min(samples, MaxConcealment*rate/1000)
	if samples <= 0 {
		return actDecode, 0
	}
	return actConceal, samples
}

// concealed records that everything before (seq, ts) has been concealed, so that if that
// packet fails to decode, the next one conceals only the failed packet.
func (t *seqTracker) concealed(seq uint16, ts uint32, c Codec) {
	t.lastSeq = seq - 1
	t.lastTS = ts - uint32(int64(t.lastSamples)*int64(c.ClockRate())/int64(t.audioRate(c)))
}

// audioRate returns the sample rate the tracker counts samples in.
func (t *seqTracker) audioRate(c Codec) int {
	if t.rate > 0 {
		return t.rate
	}
	return c.SampleRate()
}

// decoded records a decoded packet of samples audio samples.
func (t *seqTracker) decoded(seq uint16, ts uint32, samples int) {
	t.started = true
	t.lastSeq, t.lastTS, t.lastSamples = seq, ts, samples
}

// StreamEncoder encodes a PCM stream of any rate, handed in pieces of any size, into 20 ms
// payloads of one codec: libswresample converts to the encoder's rate when needed and
// libavutil's audio FIFO re-frames to exact 20 ms frames. This is the per-destination half of
// a mixer. Each payload advances the destination's RTP timestamp by Codec().TimestampStep().
type StreamEncoder struct {
	enc   *Encoder
	rs    *Resampler // nil when the input rate is the encoder's rate
	rate  int
	fifo  *astiav.AudioFifo
	stage *astiav.Frame // PCM handed in from Go
	out   [][]byte      // where push appends payloads
	ended bool          // Flush was called
	// queued mirrors the FIFO's sample count, so the hot path asks FFmpeg nothing to know it.
	queued int
}

// SetLossProtection sets the Opus encoder's in-band FEC and expected loss (see
// Encoder.SetLossProtection); other codecs ignore it.
func (s *StreamEncoder) SetLossProtection(p LossProtection) error { return s.enc.SetLossProtection(p) }

// LossProtection returns the protection the encoder is set to (zero for codecs other than Opus).
func (s *StreamEncoder) LossProtection() LossProtection { return s.enc.LossProtection() }

// errEnded is returned for input after StreamEncoder.Flush.
var errEnded = errors.New("codec: stream encoder used after Flush")

// stageSamples is the most samples Encode copies into FFmpeg at once.
const stageSamples = 1920

// NewStreamEncoder returns an encoder of c taking PCM at inRate Hz. Opus is fed at inRate
// itself when libopus accepts it (so an 8 kHz G.711 source is encoded as narrowband Opus),
// else at 48 kHz; the other codecs at their own rate.
func NewStreamEncoder(c Codec, inRate int, o Options) (*StreamEncoder, error) {
	if inRate <= 0 {
		return nil, fmt.Errorf("codec: stream encoder input rate %d Hz", inRate)
	}
	encRate := c.SampleRate()
	if c == Opus && OpusInputRate(inRate) {
		encRate = inRate
	}
	enc, err := NewEncoder(c, encRate, o)
	if err != nil {
		return nil, err
	}
	s := &StreamEncoder{enc: enc, rate: inRate}
	if err := s.open(); err != nil {
		s.Close()
		return nil, fmt.Errorf("codec: %s stream encoder from %d Hz: %w", c, inRate, err)
	}
	return s, nil
}

func (s *StreamEncoder) open() error {
	var err error
	if s.enc.rate != s.rate {
		if s.rs, err = newStreamResampler(s.rate, s.enc.rate); err != nil {
			return err
		}
	}
	// Room for a 120 ms frame plus a partial one; av_audio_fifo_write grows it if ever needed.
	if s.fifo = astiav.AllocAudioFifo(astiav.SampleFormatS16, 1, 8*s.enc.frameSize); s.fifo == nil {
		return errors.New("allocating audio FIFO failed")
	}
	s.stage, err = newPCMFrame(s.rate, stageSamples)
	return err
}

// Codec returns the destination codec.
func (s *StreamEncoder) Codec() Codec { return s.enc.codec }

// Rate returns the input sample rate in Hz.
func (s *StreamEncoder) Rate() int { return s.rate }

// EncoderRate returns the rate the encoder itself runs at.
func (s *StreamEncoder) EncoderRate() int { return s.enc.rate }

// Encode appends pcm to the stream and appends to dst one payload per complete 20 ms frame
// now available (zero or more), reusing the buffers of dst's spare capacity: pass the previous
// result sliced to [:0] and steady-state calls allocate nothing.
func (s *StreamEncoder) Encode(dst [][]byte, pcm []int16) ([][]byte, error) {
	if s.fifo == nil {
		return dst, errClosed
	}
	if s.rs == nil && s.queued == 0 && len(pcm) == s.enc.frameSize && !s.ended {
		// The common case, a whole frame at the encoder's rate with nothing queued: it goes
		// straight into the encoder's frame, skipping the staging copy and the FIFO's two
		// calls into C.
		return s.encodeDirect(dst, pcm)
	}
	s.out = dst
	for len(pcm) > 0 {
		n := min(len(pcm), stageSamples)
		fillPCMFrame(s.stage, pcm[:n])
		if err := s.push(s.stage); err != nil {
			dst, s.out = s.out, nil
			return dst, err
		}
		pcm = pcm[n:]
	}
	dst, s.out = s.out, nil
	return dst, nil
}

// encodeDirect encodes one whole frame without the FIFO and appends its payload to dst.
func (s *StreamEncoder) encodeDirect(dst [][]byte, pcm []int16) ([][]byte, error) {
	if err := s.enc.writableFrame(); err != nil {
		return dst, err
	}
	fillPCMFrame(s.enc.frame, pcm)
	return s.appendPayload(dst)
}

// appendPayload encodes the encoder's filled frame and appends the payload to dst, reusing
// the buffer of dst's next element when there is one.
func (s *StreamEncoder) appendPayload(dst [][]byte) ([][]byte, error) {
	n := len(dst)
	dst = grow(dst)
	var err error
	if dst[n], err = s.enc.encodeFrame(dst[n][:0]); err != nil {
		return dst[:n], err
	}
	return dst, nil
}

// push resamples f if needed, queues it and encodes every complete frame into s.out.
func (s *StreamEncoder) push(f *astiav.Frame) error {
	if s.fifo == nil {
		return errClosed
	}
	if s.ended {
		return errEnded
	}
	if s.rs != nil {
		var err error
		if f, err = s.rs.convert(f); err != nil {
			return err
		}
	}
	if err := s.queue(f); err != nil {
		return err
	}
	for s.queued >= s.enc.frameSize {
		if err := s.encodeFromFIFO(false); err != nil {
			return err
		}
	}
	return nil
}

// queue appends f's samples to the FIFO.
func (s *StreamEncoder) queue(f *astiav.Frame) error {
	if f.NbSamples() > 0 {
		n, err := s.fifo.Write(f)
		if err != nil {
			return fmt.Errorf("codec: queueing %d samples: %w", f.NbSamples(), err)
		}
		s.queued += n
	}
	return nil
}

// encodeFromFIFO encodes one frame read from the FIFO into s.out; with pad, a short read (the
// stream's tail) is completed with silence.
func (s *StreamEncoder) encodeFromFIFO(pad bool) error {
	if err := s.enc.writableFrame(); err != nil {
		return err
	}
	s.enc.frame.SetNbSamples(s.enc.frameSize)
	if pad {
		clear(frameSamples(s.enc.frame))
	}
	got, err := s.fifo.Read(s.enc.frame)
	if err != nil {
		return fmt.Errorf("codec: reading a frame from the FIFO: %w", err)
	}
	s.queued -= got
	s.out, err = s.appendPayload(s.out)
	return err
}

// Flush ends the stream: what the encoder still holds (the resampler's look-ahead, about
// 2 ms, and a partial frame in the FIFO when packets were not 20 ms long) is encoded as one
// last frame, padded with silence, and appended to dst; nothing is appended when nothing is
// held. Call it when the source is gone for good; the encoder takes no input afterwards.
func (s *StreamEncoder) Flush(dst [][]byte) ([][]byte, error) {
	if s.fifo == nil {
		return dst, errClosed
	}
	if s.ended {
		return dst, nil
	}
	s.ended = true
	s.out = dst
	err := s.flush()
	dst, s.out = s.out, nil
	return dst, err
}

func (s *StreamEncoder) flush() error {
	if s.rs != nil {
		f, err := s.rs.drain()
		if err != nil {
			return err
		}
		if err := s.queue(f); err != nil {
			return err
		}
	}
	for s.queued > 0 {
		if err := s.encodeFromFIFO(true); err != nil {
			return err
		}
	}
	return nil
}

// grow extends out by one element, reusing the element's old buffer when out has capacity.
func grow(out [][]byte) [][]byte {
	if len(out) < cap(out) {
		return out[:len(out)+1]
	}
	// A fresh buffer big enough for any payload the encoders here produce at 20 ms
	// (G.722: 160 bytes, Opus at 24 kbit/s: well under 200), so it is never regrown.
	return append(out, make([]byte, 0, 512))
}

// Close frees the FFmpeg objects. It is safe to call more than once.
func (s *StreamEncoder) Close() {
	if s.enc != nil {
		s.enc.Close()
	}
	if s.rs != nil {
		s.rs.Close()
	}
	if s.fifo != nil {
		s.fifo.Free()
		s.fifo = nil
	}
	freeFrame(&s.stage)
}
