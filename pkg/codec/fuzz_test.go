package codec

import "testing"

// FuzzDecode feeds arbitrary bytes to every decoder, to concealment and to a transcoder out
// of each codec: errors are fine, panics and crashes are not.
func FuzzDecode(f *testing.F) {
	for _, c := range Codecs() {
		for _, p := range tonePacketsF(f, c)[:3] {
			f.Add(p.payload, uint16(3))
		}
	}
	f.Add([]byte{0x03}, uint16(1))
	f.Add([]byte{0xff, 0xff, 0xff}, uint16(2))
	f.Add([]byte{0x0b, 0x83, 0x01, 0x02}, uint16(40))

	var decs []*Decoder
	var trs []*Transcoder
	for _, c := range Codecs() {
		d, err := NewDecoder(c)
		if err != nil {
			f.Fatal(err)
		}
		decs = append(decs, d)
		dst := PCMU
		if c == PCMU {
			dst = Opus
		}
		tr, err := NewTranscoder(c, dst, DefaultOptions())
		if err != nil {
			f.Fatal(err)
		}
		trs = append(trs, tr)
	}
	f.Cleanup(func() {
		for _, d := range decs {
			d.Close()
		}
		for _, tr := range trs {
			tr.Close()
		}
	})
	var seq uint16
	var pcm []int16
	var frames [][]byte
	f.Fuzz(func(t *testing.T, payload []byte, step uint16) {
		for _, d := range decs {
			pcm, _ = d.Decode(pcm[:0], payload)
			if step%5 == 0 {
				pcm, _ = d.Conceal(pcm[:0], int(step%2000))
			}
		}
		seq += step%8 + 1 // gaps of up to seven packets
		for _, tr := range trs {
			frames, _ = tr.Transcode(frames[:0], payload, seq, uint32(seq)*160)
		}
	})
}

func tonePacketsF(f *testing.F, c Codec) []packet {
	return encodeStream(f, c, c.SampleRate(), toneFor(c))
}
