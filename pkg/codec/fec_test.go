package codec

import (
	"fmt"
	"math"
	"testing"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// TestOpusFECRecoversLostFrames drops single packets and pairs of packets from Opus speech
// streams and checks what StreamDecoder puts in their place against the intact decode: with a
// stream that carries in-band FEC (made by the Debian ffmpeg CLI's libopus with 10 % expected
// loss, as a peer would send it, and by our own encoder with the protection FECPolicy sets
// after a 10 % loss report), the last lost frame of each gap is
// recovered from the next packet's FEC, far closer to the original than libopus's PLC alone
// (single losses: measured 8-11 dB against PLC's 2-2.5 dB);
// with a stream without FEC (the CLI's, and our encoder's on a path that reports no loss) it
// falls back to PLC. The sample count stays that of the intact
// stream, at every output rate libopus decodes to natively.
func TestOpusFECRecoversLostFrames(t *testing.T) {
	speech := audiotest.Speech(t)
	cli := func(extra ...string) [][]byte {
		args := append([]string{"-application", "voip", "-b:a", "24k", "-frame_duration", "20"}, extra...)
		p, err := audiotest.ReadOggPackets(audiotest.FFmpegEncode(t, speech, 16000, "ogg", "libopus", args...))
		if err != nil {
			t.Fatal(err)
		}
		return p[2:]
	}
	streams := []struct {
		name string
		fec  bool
		pk   [][]byte
	}{
		{"CLI with FEC", true, cli("-fec", "1", "-packet_loss", "10")},
		{"ours after a 10 % loss report", true, encodeOpusProtected(t, speech, LossProtection{FEC: true, ExpectedLoss: 11})},
		{"ours on a clean path", false, payloads(encodeStream(t, Opus, 16000, speech))},
		{"CLI without FEC", false, cli("-fec", "0")},
	}
	for _, s := range streams {
		for _, rate := range []int{8000, 16000, 48000} {
			t.Run(fmt.Sprintf("%s/%d", s.name, rate), func(t *testing.T) {
				fs := rate / 50
				// Every 7th packet lost, every 4th of those with the packet before it (a pair):
				// FEC can recover only the second of a pair, PLC fills the first.
				lost, single, second := map[int]bool{}, map[int]bool{}, map[int]bool{}
				for i, n := 20, 0; i < len(s.pk)-1; i, n = i+7, n+1 {
					lost[i] = true
					if n%4 == 3 {
						lost[i-1], second[i] = true, true
					} else {
						single[i] = true
					}
				}
				intact := decodeOpus(t, s.pk, rate, nil)
				withFEC := decodeOpus(t, s.pk, rate, lost)
				plcOnly := concealOpus(t, s.pk, rate, lost)
				if len(withFEC) != len(intact) || len(plcOnly) != len(intact) {
					t.Fatalf("%d samples with losses (PLC only: %d), %d intact", len(withFEC), len(plcOnly), len(intact))
				}
				snr := func(got []int16, frames map[int]bool) float64 { return lostFrameSNR(intact, got, fs, frames) }
				fec, plc := snr(withFEC, single), snr(plcOnly, single)
				fec2, plc2 := snr(withFEC, second), snr(plcOnly, second)
				t.Logf("lost frame against the intact decode: %d single losses %.1f dB with FEC, %.1f dB with PLC only; "+
					"%d second frames of a pair %.1f dB with FEC, %.1f dB with PLC only", len(single), fec, plc, len(second), fec2, plc2)
				if s.fec && fec < plc+4 {
					t.Errorf("single losses: FEC recovery %.1f dB, PLC %.1f dB: want FEC ≥ 4 dB better", fec, plc)
				}
				// After a PLC'd frame the decoder's state has drifted, so FEC recovers the second
				// frame of a pair less well (measured 1-4 dB better than PLC); it must not be worse.
				if s.fec && fec2 < plc2 {
					t.Errorf("pairs: FEC recovery of the second frame %.1f dB, PLC %.1f dB: want FEC no worse", fec2, plc2)
				}
				if !s.fec && (math.Abs(fec-plc) > 0.5 || math.Abs(fec2-plc2) > 0.5) {
					t.Errorf("no FEC in the stream, yet %.1f/%.1f dB against PLC's %.1f/%.1f dB", fec, fec2, plc, plc2)
				}
			})
		}
	}
}

// encodeOpusProtected encodes 16 kHz pcm with our Opus encoder set to protection p.
func encodeOpusProtected(t *testing.T, pcm []int16, p LossProtection) [][]byte {
	t.Helper()
	e, err := NewEncoder(Opus, 16000, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.SetLossProtection(p); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, fr := range audiotest.Frames(pcm, e.FrameSize()) {
		pkt, err := e.Encode(nil, fr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pkt)
	}
	return out
}

// decodeOpus decodes packets (20 ms each) with a StreamDecoder at rate, skipping those lost.
func decodeOpus(t *testing.T, packets [][]byte, rate int, lost map[int]bool) []int16 {
	t.Helper()
	sd, err := NewStreamDecoder(Opus, rate)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	if sd.rs != nil {
		t.Fatalf("Opus at %d Hz goes through a resampler", rate)
	}
	var out []int16
	for i, p := range packets {
		if lost[i] {
			continue
		}
		if out, err = sd.Decode(out, p, uint16(i), uint32(i*960)); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// concealOpus decodes packets with a Decoder at rate, concealing each lost one with PLC.
func concealOpus(t *testing.T, packets [][]byte, rate int, lost map[int]bool) []int16 {
	t.Helper()
	d, err := NewDecoderRate(Opus, rate)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var out []int16
	for i, p := range packets {
		if lost[i] {
			out, err = d.Conceal(out, rate/50)
		} else {
			out, err = d.Decode(out, p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestDecoderRates: libopus decodes natively at 8, 12, 16, 24 and 48 kHz, 20 ms per packet at
// each, with the tone where it belongs; other rates, and other rates for the fixed-rate codecs,
// are refused.
func TestDecoderRates(t *testing.T) {
	packets := tonePackets(t, Opus)
	for _, rate := range []int{8000, 12000, 16000, 24000, 48000} {
		d, err := NewDecoderRate(Opus, rate)
		if err != nil {
			t.Fatal(err)
		}
		if d.Rate() != rate {
			t.Errorf("Rate() %d, want %d", d.Rate(), rate)
		}
		var pcm []int16
		for _, p := range packets {
			if pcm, err = d.Decode(pcm, p.payload); err != nil {
				t.Fatal(err)
			}
		}
		d.Close()
		if len(pcm) != len(packets)*rate/50 {
			t.Errorf("%d Hz: %d samples for %d packets", rate, len(pcm), len(packets))
		}
		if f := audiotest.DominantFrequency(pcm[rate/5:], rate); !within(f, 1000) {
			t.Errorf("%d Hz: tone at %.1f Hz", rate, f)
		}
	}
	for _, bad := range []struct {
		c    Codec
		rate int
	}{{Opus, 44100}, {Opus, 32000}, {PCMU, 16000}, {G722, 8000}} {
		if d, err := NewDecoderRate(bad.c, bad.rate); err == nil {
			d.Close()
			t.Errorf("%s decoder at %d Hz opened", bad.c, bad.rate)
		}
	}
}
