package codec

import (
	"fmt"
	"testing"

	"github.com/rtpbridge/rtpbridge/pkg/internal/audiotest"
)

// tonePackets returns one second of a 1 kHz tone as 20 ms packets of c.
func tonePackets(t *testing.T, c Codec) []packet {
	return encodeStream(t, c, c.SampleRate(), toneFor(c))
}

// toneFor returns one second of a 1 kHz tone at half full scale, at c's sample rate.
func toneFor(c Codec) []int16 {
	rate := c.SampleRate()
	return audiotest.Tone(rate, rate, 0.5, 1000)
}

// TestTranscodeLossKeepsTimestampsContinuous drops packets (one, then a burst of three),
// reorders one and duplicates one. The transcoder must conceal the gaps, so it emits exactly
// as many 20 ms payloads as for the intact stream: the destination's timestamps, advanced by
// TimestampStep per payload, then track the source's timeline.
func TestTranscodeLossKeepsTimestampsContinuous(t *testing.T) {
	for _, src := range Codecs() {
		for _, dst := range Codecs() {
			if src == dst {
				continue
			}
			t.Run(fmt.Sprintf("%s→%s", src, dst), func(t *testing.T) {
				t.Parallel()
				packets := tonePackets(t, src)
				intact := transcodeAll(t, src, dst, packets)

				var damaged []packet
				for i, p := range packets {
					switch i {
					case 10, 30, 31, 32: // lost
					case 20: // arrives after 21
					case 21:
						damaged = append(damaged, p, packets[20])
					case 40: // duplicated
						damaged = append(damaged, p, p)
					default:
						damaged = append(damaged, p)
					}
				}
				got := transcodeAll(t, src, dst, damaged)
				if len(got) != len(intact) {
					t.Errorf("%d payloads with losses, %d without: timestamps would drift by %d",
						len(got), len(intact), (len(intact)-len(got))*int(dst.TimestampStep()))
				}
			})
		}
	}
}

// TestStreamDecoderConcealment checks the sample counts and content of concealment: silence
// for G.711/G.722, libopus PLC (continuing the tone, fading) for Opus.
func TestStreamDecoderConcealment(t *testing.T) {
	for _, c := range Codecs() {
		t.Run(c.Name(), func(t *testing.T) {
			packets := tonePackets(t, c)
			sd, err := NewStreamDecoder(c, c.SampleRate())
			if err != nil {
				t.Fatal(err)
			}
			defer sd.Close()
			var pcm []int16
			var lostAt int
			for i, p := range packets {
				if i == 25 {
					lostAt = len(pcm)
					continue
				}
				if pcm, err = sd.Decode(pcm, p.payload, p.seq, p.ts); err != nil {
					t.Fatal(err)
				}
			}
			if want := len(packets) * c.FrameSamples(); len(pcm) != want {
				t.Fatalf("%d samples with one packet lost, want %d", len(pcm), want)
			}
			gap := pcm[lostAt : lostAt+c.FrameSamples()]
			var energy float64
			for _, v := range gap {
				energy += float64(v) * float64(v)
			}
			rms := energy / float64(len(gap))
			if c == Opus && rms < 1e5 {
				t.Errorf("Opus concealment is near silent (mean square %.0f): PLC did not run", rms)
			}
			if c != Opus && rms != 0 {
				t.Errorf("%s concealment is not silence (mean square %.0f)", c, rms)
			}
		})
	}
}

func TestSeqTracker(t *testing.T) {
	var tr seqTracker
	if act, _ := tr.next(100, 0, PCMU); act != actDecode {
		t.Fatalf("first packet: %v", act)
	}
	tr.decoded(100, 0, 160)
	cases := []struct {
		seq     uint16
		ts      uint32
		act     seqAction
		conceal int
	}{
		{101, 160, actDecode, 0},
		{103, 480, actConceal, 160},      // one lost (timestamps agree)
		{103, 0, actConceal, 160},        // one lost, timestamp useless: count × last size
		{100, 0, actDrop, 0},             // late
		{101 - 100, 0, actDrop, 0},       // 100 back: still late
		{101 - 101, 0, actDecode, 0},     // 101 back: a restarted stream
		{110, 160 * 10, actConceal, 800}, // eight lost, capped at 100 ms = 800 samples
		{101 + 3001, 0, actDecode, 0},    // beyond maxDropout: restarted stream
		{65535, 0, actDecode, 0},
	}
	for _, c := range cases {
		act, n := tr.next(c.seq, c.ts, PCMU)
		if act != c.act || n != c.conceal {
			t.Errorf("after seq 101: seq %d ts %d → %v %d, want %v %d", c.seq, c.ts, act, n, c.act, c.conceal)
		}
		tr.lastSeq, tr.lastTS = 101, 160
	}
	// Sequence numbers wrap.
	tr.decoded(65535, 1000, 160)
	if act, n := tr.next(1, 1320, PCMU); act != actConceal || n != 160 {
		t.Errorf("65535 → 1: %v %d, want conceal 160", act, n)
	}
	// G.722: timestamps tick at 8 kHz, samples at 16 kHz.
	tr.decoded(10, 0, 320)
	if act, n := tr.next(12, 320, G722); act != actConceal || n != 320 {
		t.Errorf("G.722 one lost: %v %d, want conceal 320", act, n)
	}
}

// TestCorruptPayloads feeds payloads FFmpeg must reject: each returns an error, and the
// decoder and the transcoder keep working afterwards.
func TestCorruptPayloads(t *testing.T) {
	bad := map[string][]byte{
		"empty":     {},
		"oversized": make([]byte, MaxPayloadSize+1),
	}
	for _, c := range Codecs() {
		d, err := NewDecoder(c)
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range bad {
			if _, err := d.Decode(nil, p); err == nil {
				t.Errorf("%s: %s payload decoded without error", c, name)
			}
		}
		d.Close()
	}
	// Opus packets that break RFC 6716's framing rules.
	opusBad := [][]byte{
		{0x03},             // code 3 without a frame count
		{0x03, 0x00},       // code 3 with zero frames
		{0x03, 0x3f, 0x00}, // 63 frames of 20 ms: beyond 120 ms
		{0x01, 0xff},       // code 1 (two equal frames) with an odd length
		{0x02, 0xfd},       // code 2 whose first frame length exceeds the packet
	}
	d, err := NewDecoder(Opus)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, p := range opusBad {
		if _, err := d.Decode(nil, p); err == nil {
			t.Errorf("Opus payload %x decoded without error", p)
		}
	}

	packets := tonePackets(t, Opus)
	intact := transcodeAll(t, Opus, PCMU, packets)
	tr, err := NewTranscoder(Opus, PCMU, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var all, frames [][]byte
	errs := 0
	for i, p := range packets {
		payload := p.payload
		if i%10 == 5 {
			payload = opusBad[i/10%len(opusBad)]
		}
		frames, err = tr.Transcode(frames[:0], payload, p.seq, p.ts)
		if err != nil {
			errs++
		}
		all = append(all, frames...)
	}
	if errs != 5 {
		t.Errorf("%d errors for 5 corrupt packets", errs)
	}
	// Corrupt packets count as lost: concealed, so the output keeps its length.
	if len(all) != len(intact) {
		t.Errorf("%d payloads with corrupt packets, %d without", len(all), len(intact))
	}
	got := audiotest.DecodeULaw(concat(all))
	if f := audiotest.DominantFrequency(got[800:], 8000); !within(f, 1000) {
		t.Errorf("after corrupt packets the tone is at %.1f Hz", f)
	}
}

func concat(b [][]byte) []byte {
	var out []byte
	for _, v := range b {
		out = append(out, v...)
	}
	return out
}
