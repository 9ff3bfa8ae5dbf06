// Package codec is rtpbridge's only door to FFmpeg: small Go types over go-astiav that speak
// RTP payloads on one side and 16-bit mono PCM on the other.
//
//   - Codec describes PCMU, PCMA, G722 and opus as PROTOCOL.md §12 lists them.
//   - Decoder turns one payload into PCM at the codec's own audio rate (Opus: at any rate
//     libopus decodes to natively) and conceals losses.
//   - Encoder turns exactly one 20 ms PCM frame into one payload.
//   - Resampler converts PCM between rates with libswresample.
//   - StreamDecoder and StreamEncoder are the halves a mixer needs: RTP payloads (with
//     sequence numbers, so gaps are concealed) to PCM at any rate, and PCM of any rate and
//     frame size to 20 ms payloads.
//   - Transcoder joins the two halves for one (source codec, destination codec) route.
//   - FECPolicy turns a destination's RTCP loss reports into the LossProtection (in-band FEC,
//     expected loss) of the Opus encoder feeding it.
//
// Every decode, resample, re-frame and encode runs in libavcodec, libswresample or
// libavutil's audio FIFO; the Go side only copies samples and bytes. Each type allocates its
// FFmpeg objects once, reuses them for every packet and frees them in Close, and its steady
// state allocates nothing on the Go heap. None of the types is safe for concurrent use: a
// session loop owns them.
package codec

import (
	"strconv"
	"strings"
)

// Codec is an RTP audio codec rtpbridge can decode and encode. The zero value is not a codec.
type Codec uint8

// The codecs of PROTOCOL.md §12 (PCMA per §0 D11).
const (
	PCMU Codec = iota + 1 // G.711 µ-law
	PCMA                  // G.711 A-law
	G722                  // G.722 at 64 kbit/s
	Opus                  // Opus, mono, VoIP application, 24 kbit/s
)

// FrameDuration is the packet duration, in milliseconds, of everything rtpbridge encodes.
const FrameDuration = 20

// MaxPayloadSize is the largest RTP payload a Decoder accepts, in bytes. It is larger than any
// payload a UDP datagram on an Ethernet path carries and than Opus's 120 ms maximum at any
// bit rate; a larger one is rejected as corrupt.
const MaxPayloadSize = 8192

// Codecs returns every supported codec in the default offer order (PROTOCOL.md §0 D11).
func Codecs() []Codec { return []Codec{PCMU, PCMA, G722, Opus} }

// Lookup returns the codec whose SDP encoding name is name, case-insensitively
// ("pcmu", "G722", "OPUS" ...).
func Lookup(name string) (Codec, bool) {
	for _, c := range Codecs() {
		if strings.EqualFold(name, c.Name()) {
			return c, true
		}
	}
	return 0, false
}

// Valid reports whether c is one of the supported codecs.
func (c Codec) Valid() bool { return c >= PCMU && c <= Opus }

// Name returns the SDP encoding name: "PCMU", "PCMA", "G722" or "opus".
func (c Codec) Name() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	case G722:
		return "G722"
	case Opus:
		return "opus"
	}
	return ""
}

// String returns the SDP name, or "codec(N)" for an invalid value.
func (c Codec) String() string {
	if !c.Valid() {
		return "codec(" + strconv.Itoa(int(c)) + ")"
	}
	return c.Name()
}

// PayloadType returns the default RTP payload type: 0, 8, 9, or 111 for Opus (dynamic).
func (c Codec) PayloadType() uint8 {
	switch c {
	case PCMA:
		return 8
	case G722:
		return 9
	case Opus:
		return 111
	}
	return 0
}

// ClockRate returns the RTP timestamp clock rate in Hz. G.722's is 8000 although it samples
// at 16000 (RFC 3551 §4.5.2).
func (c Codec) ClockRate() int {
	if c == Opus {
		return 48000
	}
	if c.Valid() {
		return 8000
	}
	return 0
}

// SampleRate returns the audio sample rate in Hz: what the decoder outputs and, except for
// Opus (see NewEncoder), what the encoder takes.
func (c Codec) SampleRate() int {
	switch c {
	case PCMU, PCMA:
		return 8000
	case G722:
		return 16000
	case Opus:
		return 48000
	}
	return 0
}

// FrameSamples returns the number of audio samples in 20 ms at SampleRate: 160, 320 or 960.
func (c Codec) FrameSamples() int { return c.SampleRate() * FrameDuration / 1000 }

// TimestampStep returns the RTP timestamp advance per 20 ms frame: 160, or 960 for Opus.
func (c Codec) TimestampStep() uint32 { return uint32(c.ClockRate() * FrameDuration / 1000) }

// ffmpegName is the libavcodec coder rtpbridge uses for c, in both directions: the G.711 and
// G.722 coders, and libopus (the native Opus decoder lacks PLC and FEC).
func (c Codec) ffmpegName() (string, bool) {
	switch c {
	case PCMU:
		return "pcm_mulaw", true
	case PCMA:
		return "pcm_alaw", true
	case G722:
		return "g722", true
	case Opus:
		return "libopus", true
	}
	return "", false
}

// pcmRate reports whether c's coder works on PCM at rate: the codec's own audio rate, or for
// Opus any rate libopus handles natively.
func (c Codec) pcmRate(rate int) bool {
	if c == Opus {
		return OpusInputRate(rate)
	}
	return rate == c.SampleRate()
}
