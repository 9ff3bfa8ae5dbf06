package codec

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
)

// Options configures encoders.
type Options struct {
	// OpusComplexity is libopus's encoder complexity, 0 (cheapest) to 10. The configuration key
	// opus_complexity; DefaultOptions sets the libopus default, 9. Zero is a valid complexity,
	// so start from DefaultOptions rather than from Options{}.
	OpusComplexity int
}

// DefaultOptions returns the defaults: Opus complexity 9.
func DefaultOptions() Options { return Options{OpusComplexity: 9} }

// Validate reports an option out of range.
func (o Options) Validate() error {
	if o.OpusComplexity < 0 || o.OpusComplexity > 10 {
		return fmt.Errorf("codec: opus complexity %d out of range 0-10", o.OpusComplexity)
	}
	return nil
}

// opusTuning holds the libopus settings PROTOCOL.md §12 fixes ("VoIP mode, 24 kbit/s").
// Encoders always use protocolOpusTuning; the type exists so that tests can measure what
// those fixed values cost against the alternatives (TestOpusTwoToneTuning).
type opusTuning struct {
	application string // libopus application: "voip" or "audio"
	bitrate     int64  // target bit rate, bit/s
	vbr         string // FFmpeg's vbr option: "on" (unconstrained), "constrained" or "off" (CBR)
}

// protocolOpusTuning uses constrained VBR, libopus's own default (FFmpeg's is unconstrained):
// on speech both average the same 21-22 kbit/s, but on steady tonal input unconstrained VBR
// held 36 kbit/s where constrained VBR holds about 24, the rate PROTOCOL.md states.
func protocolOpusTuning() opusTuning {
	return opusTuning{application: "voip", bitrate: 24000, vbr: "constrained"}
}

// Encoder encodes 20 ms frames of 16-bit mono PCM into RTP payloads of one codec.
//
// Encoders by codec: FFmpeg's pcm_mulaw, pcm_alaw, g722 (64 kbit/s) and libopus (VoIP
// application, 24 kbit/s constrained VBR, 20 ms frames, mono, complexity from Options). An
// Opus encoder starts without in-band FEC and with no expected loss, libopus's defaults and
// its best quality on a clean path; SetLossProtection turns protection on while encoding
// (see FECPolicy). FFmpeg 7.1's wrapper takes those settings only when it opens;
// ffmpeg/build.sh applies ffmpeg/patches/libopusenc-runtime-fec.patch, which makes them
// runtime options, and NewEncoder fails on an FFmpeg without it.
type Encoder struct {
	codec     Codec
	rate      int
	frameSize int
	ctx       *astiav.CodecContext
	frame     *astiav.Frame // the encoder's input frame, frameSize samples
	pkt       *astiav.Packet
	pts       int64
	loss      LossProtection // Opus: what libopus was last told
}

// OpusInputRate reports whether libopus accepts PCM at rate Hz (8, 12, 16, 24 or 48 kHz).
func OpusInputRate(rate int) bool {
	switch rate {
	case 8000, 12000, 16000, 24000, 48000:
		return true
	}
	return false
}

// NewEncoder opens an encoder for c taking PCM at rate Hz. For PCMU, PCMA and G722 rate must
// be c.SampleRate(). For Opus it may be any rate libopus accepts (see OpusInputRate): feed it
// at the source's own audio rate (8 kHz from G.711, 16 kHz from G.722) rather than upsampling,
// since the source holds nothing above its Nyquist frequency and libopus encodes narrow- and
// wideband input far more cheaply. The RTP clock stays 48000 whatever the input rate.
func NewEncoder(c Codec, rate int, o Options) (*Encoder, error) {
	return newEncoder(c, rate, o, protocolOpusTuning())
}

func newEncoder(c Codec, rate int, o Options, tuning opusTuning) (*Encoder, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	name, ok := c.ffmpegName()
	if !ok {
		return nil, fmt.Errorf("codec: no encoder for %v", c)
	}
	if !c.pcmRate(rate) {
		return nil, fmt.Errorf("codec: %s encoder cannot take %d Hz input", c, rate)
	}
	e := &Encoder{codec: c, rate: rate, frameSize: rate * FrameDuration / 1000}
	if err := e.open(name, o, tuning); err != nil {
		e.Close()
		return nil, fmt.Errorf("codec: opening %s encoder %s at %d Hz: %w", c, name, rate, err)
	}
	return e, nil
}

func (e *Encoder) open(name string, o Options, tuning opusTuning) error {
	enc := astiav.FindEncoderByName(name)
	if enc == nil {
		return errors.New("encoder not built into this FFmpeg")
	}
	if e.ctx = astiav.AllocCodecContext(enc); e.ctx == nil {
		return errors.New("allocating codec context failed")
	}
	e.ctx.SetSampleFormat(astiav.SampleFormatS16)
	e.ctx.SetSampleRate(e.rate)
	e.ctx.SetChannelLayout(astiav.ChannelLayoutMono)
	e.ctx.SetTimeBase(astiav.NewRational(1, e.rate))
	opts := astiav.NewDictionary()
	defer opts.Free()
	set := func(k, v string) error {
		if err := opts.Set(k, v, 0); err != nil {
			return fmt.Errorf("setting option %s=%s: %w", k, v, err)
		}
		return nil
	}
	switch e.codec {
	case Opus:
		e.ctx.SetBitRate(tuning.bitrate)
		for _, kv := range [][2]string{
			{"application", tuning.application},
			{"vbr", tuning.vbr},
			{"frame_duration", strconv.Itoa(FrameDuration)},
			{"fec", "0"},
			{"packet_loss", "0"},
			{"compression_level", strconv.Itoa(o.OpusComplexity)},
		} {
			if err := set(kv[0], kv[1]); err != nil {
				return err
			}
		}
	case G722:
		// 320 samples = 20 ms at 16 kHz, also FFmpeg's default; stated so a changed default
		// cannot silently change the packet size.
		if err := set("frame_size", strconv.Itoa(e.frameSize)); err != nil {
			return err
		}
	}
	if err := e.ctx.Open(enc, opts); err != nil {
		return err
	}
	// avcodec_open2 leaves the options it did not recognise in the dictionary.
	if left := opts.Get("", nil, astiav.NewDictionaryFlags(astiav.DictionaryFlagIgnoreSuffix)); left != nil {
		return fmt.Errorf("option %s not recognised", left.Key())
	}
	if fs := e.ctx.FrameSize(); fs != 0 && fs != e.frameSize {
		return fmt.Errorf("encoder wants %d-sample frames, want %d", fs, e.frameSize)
	}
	if e.codec == Opus && !opusLossRuntime(e.ctx) {
		return errors.New("fec and packet_loss cannot change while encoding: this FFmpeg lacks ffmpeg/patches/libopusenc-runtime-fec.patch (rebuild it with ffmpeg/build.sh)")
	}
	var err error
	if e.frame, err = newPCMFrame(e.rate, e.frameSize); err != nil {
		return err
	}
	if e.pkt = astiav.AllocPacket(); e.pkt == nil {
		return errors.New("allocating packet failed")
	}
	return checkPacketLayout(e.pkt)
}

// Codec returns the codec e encodes.
func (e *Encoder) Codec() Codec { return e.codec }

// Rate returns the input sample rate in Hz.
func (e *Encoder) Rate() int { return e.rate }

// FrameSize returns the number of input samples per frame: 20 ms at Rate.
func (e *Encoder) FrameSize() int { return e.frameSize }

// SetLossProtection sets an Opus encoder's in-band FEC and expected loss from the next frame
// on, without disturbing the stream; other codecs have nothing to set. Setting what is already
// set costs a comparison.
func (e *Encoder) SetLossProtection(p LossProtection) error {
	if e.codec != Opus {
		return nil
	}
	if e.ctx == nil {
		return errClosed
	}
	p.ExpectedLoss = min(max(p.ExpectedLoss, 0), 100)
	if p == e.loss {
		return nil
	}
	if err := setOpusLoss(e.ctx, p.FEC, p.ExpectedLoss); err != nil {
		return err
	}
	e.loss = p
	return nil
}

// LossProtection returns the protection an Opus encoder is set to (zero: none).
func (e *Encoder) LossProtection() LossProtection { return e.loss }

// Encode encodes pcm, exactly FrameSize samples, and appends the payload to dst.
func (e *Encoder) Encode(dst []byte, pcm []int16) ([]byte, error) {
	if len(pcm) != e.frameSize {
		return dst, fmt.Errorf("codec: %s encoder: %d samples, want a %d-sample frame", e.codec, len(pcm), e.frameSize)
	}
	if err := e.writableFrame(); err != nil {
		return dst, err
	}
	fillPCMFrame(e.frame, pcm)
	return e.encodeFrame(dst)
}

// writableFrame makes e.frame safe to overwrite: encoders here drop their reference to the
// input before returning the packet, so this only reallocates if one ever kept it.
func (e *Encoder) writableFrame() error {
	if e.ctx == nil {
		return errClosed
	}
	if e.frame.IsWritable() {
		return nil
	}
	if err := e.frame.MakeWritable(); err != nil {
		return fmt.Errorf("codec: %s encoder: making frame writable: %w", e.codec, err)
	}
	return nil
}

// encodeFrame encodes e.frame (filled with FrameSize samples) and appends the payload to dst.
// As with decoding, these encoders turn every frame into exactly one packet during
// avcodec_send_frame, so one receive is enough.
func (e *Encoder) encodeFrame(dst []byte) ([]byte, error) {
	e.frame.SetNbSamples(e.frameSize)
	e.frame.SetPts(e.pts)
	e.pts += int64(e.frameSize)
	if err := e.ctx.SendFrame(e.frame); err != nil {
		return dst, fmt.Errorf("codec: %s encoder: %w", e.codec, err)
	}
	if err := e.ctx.ReceivePacket(e.pkt); err != nil {
		return dst, fmt.Errorf("codec: %s encoder: no packet: %w", e.codec, err)
	}
	dst = append(dst, packetBytes(e.pkt)...)
	e.pkt.Unref()
	return dst, nil
}

// Close frees the encoder's FFmpeg objects. It is safe to call more than once.
func (e *Encoder) Close() {
	freeFrame(&e.frame)
	freePacket(&e.pkt)
	freeCodecContext(&e.ctx)
}
