package codec

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
)

// Decoder decodes one codec's RTP payloads to 16-bit mono PCM at the codec's SampleRate, or
// for Opus at any rate libopus decodes to natively (see NewDecoderRate).
//
// Decoders by codec: FFmpeg's pcm_mulaw, pcm_alaw and g722 (adpcm_g722), and for Opus FFmpeg's
// libopus wrapper rather than its native opus decoder, because only libopus conceals losses
// (the native decoder has no packet-loss concealment at all) and recovers them from in-band
// FEC. FFmpeg 7.1's wrapper can do neither FEC nor any rate but 48 kHz; ffmpeg/build.sh applies
// ffmpeg/patches/libopusdec-output-rate-fec.patch, which adds the output_sample_rate and
// decode_fec options this type uses, and NewDecoder fails on an FFmpeg without them.
type Decoder struct {
	codec Codec
	rate  int // output sample rate
	ctx   *astiav.CodecContext
	pkt   *astiav.Packet // owns a MaxPayloadSize buffer reused for every payload
	frame *astiav.Frame  // the decoder's output, valid until the next call
	// silence is the concealment frame of G.711 and G.722, all zeros.
	silence *astiav.Frame
	// plc holds the one-byte packet that makes libopus conceal a lost frame.
	plc [1]byte
	// lastTOC is the TOC byte of the last Opus packet decoded, from which concealment
	// packets take their mode and bandwidth.
	lastTOC byte
}

// NewDecoder opens a decoder for c, producing PCM at c.SampleRate(). Close frees it.
func NewDecoder(c Codec) (*Decoder, error) { return NewDecoderRate(c, c.SampleRate()) }

// NewDecoderRate opens a decoder for c producing PCM at rate Hz. For PCMU, PCMA and G722 rate
// must be c.SampleRate(). For Opus it may be any rate libopus decodes to natively (see
// OpusInputRate): decoding for an 8 kHz destination at 8 kHz skips the work of the higher
// rates and a resampler. Close frees it.
func NewDecoderRate(c Codec, rate int) (*Decoder, error) {
	name, ok := c.ffmpegName()
	if !ok {
		return nil, fmt.Errorf("codec: no decoder for %v", c)
	}
	if !c.pcmRate(rate) {
		return nil, fmt.Errorf("codec: %s decoder cannot produce %d Hz", c, rate)
	}
	d := &Decoder{codec: c, rate: rate, lastTOC: opusTOCCELTFB20}
	if err := d.open(name); err != nil {
		d.Close()
		return nil, fmt.Errorf("codec: opening %s decoder %s at %d Hz: %w", c, name, rate, err)
	}
	return d, nil
}

func (d *Decoder) open(name string) error {
	dec := astiav.FindDecoderByName(name)
	if dec == nil {
		return errors.New("decoder not built into this FFmpeg")
	}
	if d.ctx = astiav.AllocCodecContext(dec); d.ctx == nil {
		return errors.New("allocating codec context failed")
	}
	// The G.711 decoders need the rate and layout; libopus decodes to mono (downmixing a
	// stereo stream) when asked for one channel, to s16, at its output_sample_rate option.
	d.ctx.SetSampleRate(d.rate)
	d.ctx.SetChannelLayout(astiav.ChannelLayoutMono)
	var opts *astiav.Dictionary
	if d.codec == Opus {
		opts = astiav.NewDictionary()
		defer opts.Free()
		if err := opts.Set("output_sample_rate", strconv.Itoa(d.rate), 0); err != nil {
			return err
		}
	}
	if err := d.ctx.Open(dec, opts); err != nil {
		return err
	}
	if opts != nil {
		if left := opts.Get("", nil, astiav.NewDictionaryFlags(astiav.DictionaryFlagIgnoreSuffix)); left != nil {
			return fmt.Errorf("option %s not recognised: this FFmpeg lacks ffmpeg/patches/libopusdec-output-rate-fec.patch (rebuild it with ffmpeg/build.sh)", left.Key())
		}
		// The FEC switch must exist too; it is set only around recoveries (see fecFrame).
		if err := setDecodeFEC(d.ctx, false); err != nil {
			return fmt.Errorf("%w: this FFmpeg lacks ffmpeg/patches/libopusdec-output-rate-fec.patch (rebuild it with ffmpeg/build.sh)", err)
		}
	}
	if d.ctx.SampleRate() != d.rate || d.ctx.SampleFormat() != astiav.SampleFormatS16 {
		return fmt.Errorf("decoder outputs %d Hz %s, want %d Hz s16", d.ctx.SampleRate(), d.ctx.SampleFormat(), d.rate)
	}
	var err error
	if d.pkt, err = newPayloadPacket(MaxPayloadSize); err != nil {
		return err
	}
	if d.frame = astiav.AllocFrame(); d.frame == nil {
		return errors.New("allocating frame failed")
	}
	if d.codec != Opus {
		if d.silence, err = newPCMFrame(d.codec.SampleRate(), d.codec.FrameSamples()); err != nil {
			return err
		}
		clear(frameSamples(d.silence))
	}
	return nil
}

// Codec returns the codec d decodes.
func (d *Decoder) Codec() Codec { return d.codec }

// Rate returns the output sample rate in Hz.
func (d *Decoder) Rate() int { return d.rate }

// Decode decodes one RTP payload and appends its samples (at Rate()) to dst.
// A payload that is empty, larger than MaxPayloadSize or that FFmpeg rejects returns an error
// and leaves dst as it was; the decoder stays usable.
func (d *Decoder) Decode(dst []int16, payload []byte) ([]int16, error) {
	f, err := d.decodeFrame(payload)
	if err != nil {
		return dst, err
	}
	return append(dst, frameSamples(f)...), nil
}

// Conceal appends about samples samples (at Rate()) of loss concealment to dst: for Opus,
// libopus's packet-loss concealment, in steps of 10 ms (so samples is rounded up to a
// multiple of 10 ms); for G.711 and G.722, silence. Silence rather than repeating the last
// frame because a repeated frame joins its neighbours with phase jumps that click, and
// anything smarter (G.711 Appendix I) would be codec maths written in Go. (StreamDecoder,
// which sees the packet after a gap, also recovers the last lost Opus frame from that
// packet's in-band FEC when it carries any.)
func (d *Decoder) Conceal(dst []int16, samples int) ([]int16, error) {
	for samples > 0 {
		f, err := d.concealFrame(samples)
		if err != nil {
			return dst, err
		}
		got := frameSamples(f)
		dst = append(dst, got...)
		samples -= len(got)
	}
	return dst, nil
}

// decodeFrame decodes payload into d.frame.
func (d *Decoder) decodeFrame(payload []byte) (*astiav.Frame, error) {
	if d.ctx == nil {
		return nil, errClosed
	}
	if len(payload) == 0 {
		return nil, fmt.Errorf("codec: %s: empty payload", d.codec)
	}
	if len(payload) > MaxPayloadSize {
		return nil, fmt.Errorf("codec: %s: %d-byte payload exceeds %d bytes", d.codec, len(payload), MaxPayloadSize)
	}
	f, err := d.run(payload)
	if err != nil {
		return nil, err
	}
	if d.codec == Opus {
		d.lastTOC = payload[0]
	}
	return f, nil
}

// concealFrame produces up to about samples samples of concealment in d.frame. G.711 and
// G.722 get silence in a frame of our own; Opus gets libopus PLC triggered the way RFC 6716
// §3.2.1 defines: a packet whose only frame has length zero is a lost frame.
func (d *Decoder) concealFrame(samples int) (*astiav.Frame, error) {
	if d.ctx == nil {
		return nil, errClosed
	}
	if d.codec != Opus {
		d.silence.SetNbSamples(min(samples, d.codec.FrameSamples()))
		return d.silence, nil
	}
	d.plc[0] = opusConcealTOC(d.lastTOC, samples >= d.rate/50)
	return d.run(d.plc[:])
}

// fecSamples returns how many samples (at Rate()) decoding next's in-band FEC recovers: the
// duration of one of its frames, since libopus recovers exactly the frame lost just before a
// packet. It is 0 for codecs other than Opus and for CELT-only packets, which cannot carry
// FEC (Opus codes LBRR, its in-band FEC, only in the SILK layer).
func (d *Decoder) fecSamples(next []byte) int {
	if d.codec != Opus || len(next) == 0 {
		return 0
	}
	config := next[0] >> 3
	var ms int // frame duration
	switch {
	case config < 12: // SILK NB/MB/WB: 10, 20, 40, 60 ms
		ms = [4]int{10, 20, 40, 60}[config%4]
	case config < 16: // Hybrid SWB/FB: 10, 20 ms
		ms = 10 << (config % 2)
	default:
		return 0
	}
	return ms * d.rate / 1000
}

// fecFrame decodes the in-band FEC of next, the packet after a loss, into d.frame: the lost
// frame just before next as far as next's LBRR data describes it, or libopus's concealment
// when next carries none. Decode next itself afterwards as usual.
func (d *Decoder) fecFrame(next []byte) (*astiav.Frame, error) {
	if d.ctx == nil {
		return nil, errClosed
	}
	if len(next) == 0 || len(next) > MaxPayloadSize {
		return nil, fmt.Errorf("codec: %s: no FEC in a %d-byte payload", d.codec, len(next))
	}
	if err := setDecodeFEC(d.ctx, true); err != nil {
		return nil, err
	}
	f, err := d.run(next)
	if err2 := setDecodeFEC(d.ctx, false); err == nil && err2 != nil {
		d.frame.Unref()
		return nil, err2
	}
	return f, err
}

// run sends one payload to the decoder and receives its frame. The decoders used here turn
// every packet into exactly one frame, and FFmpeg decodes during avcodec_send_packet, so one
// receive is enough; calling receive again only to get EAGAIN would allocate (go-astiav boxes
// every error code in an interface).
func (d *Decoder) run(payload []byte) (*astiav.Frame, error) {
	d.frame.Unref()
	if err := setPacketPayload(d.pkt, payload, MaxPayloadSize); err != nil {
		return nil, err
	}
	err := d.ctx.SendPacket(d.pkt)
	if errors.Is(err, astiav.ErrEagain) {
		// A frame is still waiting (a decoder that split a packet): drop it and retry.
		if err = d.ctx.ReceiveFrame(d.frame); err == nil {
			d.frame.Unref()
			err = d.ctx.SendPacket(d.pkt)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("codec: %s: decoding %d-byte payload: %w", d.codec, len(payload), err)
	}
	if err := d.ctx.ReceiveFrame(d.frame); err != nil {
		return nil, fmt.Errorf("codec: %s: decoding %d-byte payload: no audio: %w", d.codec, len(payload), err)
	}
	if err := checkPCMFrame(d.frame, d.rate); err != nil {
		d.frame.Unref()
		return nil, err
	}
	return d.frame, nil
}

// Close frees the decoder's FFmpeg objects. It is safe to call more than once.
func (d *Decoder) Close() {
	freeFrame(&d.frame)
	freeFrame(&d.silence)
	freePacket(&d.pkt)
	freeCodecContext(&d.ctx)
}

// opusTOCCELTFB20 is the TOC of a mono CELT fullband 20 ms frame (config 31, code 0), used to
// conceal before any packet has been seen (libopus then outputs silence).
const opusTOCCELTFB20 = 31 << 3

// opusConcealTOC returns a one-byte Opus packet (TOC only, code 0, so one zero-length frame)
// in the mode and bandwidth of the last packet's TOC, with a 20 ms frame when long is set and
// 10 ms otherwise. libopus conceals exactly the TOC's frame duration. Keeping mode and
// bandwidth matters: libopus conceals in the mode of the previous packet anyway, but the TOC
// also becomes the decoder's idea of the current stream configuration.
func opusConcealTOC(last byte, long bool) byte {
	config := last >> 3
	stereo := last & 0x04
	var c byte
	switch {
	case config < 12: // SILK NB/MB/WB: 10, 20, 40, 60 ms per bandwidth
		c = config / 4 * 4 // 10 ms
		if long {
			c++
		}
	case config < 16: // Hybrid SWB/FB: 10, 20 ms
		c = 12 + (config-12)/2*2
		if long {
			c++
		}
	default: // CELT NB/WB/SWB/FB: 2.5, 5, 10, 20 ms
		c = 16 + (config-16)/4*4 + 2
		if long {
			c++
		}
	}
	return c<<3 | stereo
}
