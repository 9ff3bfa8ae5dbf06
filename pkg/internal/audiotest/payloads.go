package audiotest

import (
	"fmt"
	"testing"
)

// RTP payloads made and judged by encoders and decoders that are not rtpbridge's: the Debian
// ffmpeg CLI (its own FFmpeg build, with libopus for Opus) and the Go G.711 reference decoders.
// Codecs are named by their SDP encoding names: "PCMU", "PCMA", "G722", "opus".

// CodecSampleRate returns the audio rate of an SDP codec name: 8000 for G.711, 16000 for
// G.722, 48000 for Opus.
func CodecSampleRate(codec string) int {
	switch codec {
	case "PCMU", "PCMA":
		return 8000
	case "G722":
		return 16000
	case "opus":
		return 48000
	}
	panic(fmt.Sprintf("audiotest: unknown codec %q", codec))
}

// OpusCLIOptions are the libopus settings EncodePayloads gives the ffmpeg CLI for Opus: what
// a VoIP phone or a browser sends (VoIP application, 32 kbit/s, 20 ms frames).
var OpusCLIOptions = []string{"-application", "voip", "-b:a", "32k", "-frame_duration", "20"}

// EncodePayloads encodes pcm (mono, at CodecSampleRate(codec)) into 20 ms RTP payloads of
// codec with the ffmpeg CLI: raw µ-law/A-law bytes cut into 160-byte payloads, a raw G.722
// stream cut into 160-byte payloads, or Opus packets (libopus, OpusCLIOptions) taken out of
// the Ogg file the CLI writes. An incomplete final G.711/G.722 payload is dropped.
func EncodePayloads(t testing.TB, codec string, pcm []int16) [][]byte {
	t.Helper()
	rate := CodecSampleRate(codec)
	var raw []byte
	switch codec {
	case "PCMU":
		raw = FFmpegEncode(t, pcm, rate, "mulaw", "pcm_mulaw")
	case "PCMA":
		raw = FFmpegEncode(t, pcm, rate, "alaw", "pcm_alaw")
	case "G722":
		raw = FFmpegEncode(t, pcm, rate, "g722", "g722")
	case "opus":
		ogg := FFmpegEncode(t, pcm, rate, "ogg", "libopus", OpusCLIOptions...)
		packets, err := ReadOggPackets(ogg)
		if err != nil {
			t.Fatalf("audiotest: Ogg Opus from the CLI: %v", err)
		}
		if len(packets) < 3 || string(packets[0][:8]) != "OpusHead" {
			t.Fatalf("audiotest: unexpected Ogg Opus stream (%d packets)", len(packets))
		}
		for i, p := range packets[2:] {
			if n, err := OpusPacketSamples(p); err != nil || n != 960 {
				t.Fatalf("audiotest: CLI Opus packet %d holds %d samples (%v), want 960", i, n, err)
			}
		}
		return packets[2:]
	}
	var out [][]byte
	for off := 0; off+160 <= len(raw); off += 160 {
		out = append(out, raw[off:off+160])
	}
	return out
}

// DecodePayloads decodes a stream of RTP payloads of codec with an independent decoder and
// returns mono PCM at CodecSampleRate(codec): the Go reference decoders for G.711, the CLI for
// G.722 and, through an Ogg file, the CLI's libopus decoder for Opus. libopus is RFC 6716's
// reference decoder; FFmpeg's native Opus decoder is not bit-exact and judges SILK streams
// several dB worse than they are.
func DecodePayloads(t testing.TB, codec string, payloads [][]byte) []int16 {
	t.Helper()
	var all []byte
	for _, p := range payloads {
		all = append(all, p...)
	}
	switch codec {
	case "PCMU":
		return DecodeULaw(all)
	case "PCMA":
		return DecodeALaw(all)
	case "G722":
		return FFmpegDecode(t, "g722", all, 0)
	case "opus":
		ogg, err := WriteOggOpus(payloads, 1, 0)
		if err != nil {
			t.Fatalf("audiotest: %v", err)
		}
		return FFmpegDecodeWith(t, "ogg", "libopus", ogg, 0)
	}
	t.Fatalf("audiotest: no decoder for %q", codec)
	return nil
}
