package codec

import "fmt"

// Transcoder converts one source's RTP payloads of one codec into 20 ms payloads of another:
// decode → resample (only when needed) → re-frame → encode, all in FFmpeg. The sample rate in
// the middle is the lower of the two codecs' own rates, so nothing is computed that the
// narrower side would throw away: Opus destinations are encoded from the source's rate
// directly (8 kHz from G.711, 16 kHz from G.722), Opus sources are decoded by libopus straight
// to the destination's rate (8 kHz for G.711, 16 kHz for G.722), and G.711 ↔ G.722 is
// resampled once.
//
// Output payloads carry no timestamps: each one advances the destination's RTP timestamp by
// Destination().TimestampStep() (160, or 960 for Opus). Because gaps in the source's sequence
// numbers are concealed before the next packet is decoded, the output covers the source's
// timeline without holes (up to MaxConcealment per gap) and those timestamps stay continuous.
// A timestamp jump without a sequence gap (Opus DTX, G.711 silence suppression) is the
// source's choice and is not filled: the output simply resumes with the next packet.
type Transcoder struct {
	src *StreamDecoder
	dst *StreamEncoder
}

// NewTranscoder returns a transcoder from src to dst payloads. Close frees it.
func NewTranscoder(src, dst Codec, o Options) (*Transcoder, error) {
	if !src.Valid() || !dst.Valid() {
		return nil, fmt.Errorf("codec: no transcoder from %v to %v", src, dst)
	}
	mid := src.SampleRate()
	if src == Opus && dst != Opus {
		mid = dst.SampleRate()
	}
	d, err := NewStreamDecoder(src, mid)
	if err != nil {
		return nil, err
	}
	e, err := NewStreamEncoder(dst, mid, o)
	if err != nil {
		d.Close()
		return nil, err
	}
	return &Transcoder{src: d, dst: e}, nil
}

// Source returns the source codec.
func (t *Transcoder) Source() Codec { return t.src.Codec() }

// Destination returns the destination codec.
func (t *Transcoder) Destination() Codec { return t.dst.Codec() }

// Transcode takes the source's next RTP packet (payload, sequence number, timestamp) and
// appends to dst every 20 ms destination payload now complete: zero or more, since packet
// and frame sizes differ and a gap adds concealment. Buffers in dst's spare capacity are
// reused: pass the previous result sliced to [:0] and steady-state calls allocate nothing.
// The payloads stay valid until dst is reused.
//
// A corrupt payload returns an error (count it and drop the packet); the payloads appended
// before the error (concealment of an earlier gap) are valid and should be sent, and the
// transcoder keeps working with the next packet.
func (t *Transcoder) Transcode(dst [][]byte, payload []byte, seq uint16, ts uint32) ([][]byte, error) {
	t.dst.out = dst
	err := t.src.run(payload, seq, ts, t.dst)
	dst, t.dst.out = t.dst.out, nil
	return dst, err
}

// SetLossProtection sets an Opus destination's in-band FEC and expected loss from the next
// payload on (see FECPolicy); other destinations ignore it.
func (t *Transcoder) SetLossProtection(p LossProtection) error { return t.dst.SetLossProtection(p) }

// LossProtection returns the protection the destination encoder is set to (zero for codecs
// other than Opus).
func (t *Transcoder) LossProtection() LossProtection { return t.dst.LossProtection() }

// Flush ends the stream when the source is gone for good (removed): what the pipeline still
// holds is appended to dst as one last payload, padded with silence (see StreamEncoder.Flush).
// With 20 ms source packets that is only the 8 ↔ 16 kHz resampler's 2 ms look-ahead: every
// packet's own frame has already gone out with it. Nothing is appended when nothing is held.
// The transcoder takes no more packets afterwards; Close it.
func (t *Transcoder) Flush(dst [][]byte) ([][]byte, error) { return t.dst.Flush(dst) }

// Close frees the FFmpeg objects. It is safe to call more than once.
func (t *Transcoder) Close() {
	t.src.Close()
	t.dst.Close()
}
