package codec

import "testing"

func TestCodecTable(t *testing.T) {
	cases := []struct {
		c                      Codec
		name                   string
		pt                     uint8
		clock, rate, frame, ts int
	}{
		{PCMU, "PCMU", 0, 8000, 8000, 160, 160},
		{PCMA, "PCMA", 8, 8000, 8000, 160, 160},
		{G722, "G722", 9, 8000, 16000, 320, 160},
		{Opus, "opus", 111, 48000, 48000, 960, 960},
	}
	for _, c := range cases {
		if c.c.Name() != c.name || c.c.String() != c.name || c.c.PayloadType() != c.pt ||
			c.c.ClockRate() != c.clock || c.c.SampleRate() != c.rate ||
			c.c.FrameSamples() != c.frame || int(c.c.TimestampStep()) != c.ts || !c.c.Valid() {
			t.Errorf("%s: got name %q pt %d clock %d rate %d frame %d step %d",
				c.name, c.c.Name(), c.c.PayloadType(), c.c.ClockRate(), c.c.SampleRate(), c.c.FrameSamples(), c.c.TimestampStep())
		}
	}
	if len(Codecs()) != 4 || Codecs()[0] != PCMU || Codecs()[3] != Opus {
		t.Errorf("Codecs() = %v, want the default offer order PCMU, PCMA, G722, opus", Codecs())
	}
	var zero Codec
	if zero.Valid() || zero.Name() != "" || zero.String() != "codec(0)" || zero.ClockRate() != 0 {
		t.Errorf("zero Codec: valid %v name %q string %q", zero.Valid(), zero.Name(), zero.String())
	}
}

func TestLookup(t *testing.T) {
	for name, want := range map[string]Codec{
		"PCMU": PCMU, "pcmu": PCMU, "PCMA": PCMA, "pcma": PCMA, "G722": G722, "g722": G722,
		"opus": Opus, "OPUS": Opus, "Opus": Opus,
	} {
		if got, ok := Lookup(name); !ok || got != want {
			t.Errorf("Lookup(%q) = %v, %v; want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{"", "telephone-event", "G729", "L16", "opus/48000"} {
		if got, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) = %v, want not found", name, got)
		}
	}
}

func TestConstructorsRejectBadArguments(t *testing.T) {
	if _, err := NewDecoder(0); err == nil {
		t.Error("NewDecoder(0): want an error")
	}
	if _, err := NewEncoder(Codec(9), 8000, DefaultOptions()); err == nil {
		t.Error("NewEncoder(invalid): want an error")
	}
	if _, err := NewEncoder(PCMU, 16000, DefaultOptions()); err == nil {
		t.Error("PCMU encoder at 16 kHz: want an error")
	}
	if _, err := NewEncoder(G722, 8000, DefaultOptions()); err == nil {
		t.Error("G722 encoder at 8 kHz: want an error")
	}
	if _, err := NewEncoder(Opus, 44100, DefaultOptions()); err == nil {
		t.Error("Opus encoder at 44.1 kHz: want an error")
	}
	for _, cx := range []int{-1, 11} {
		if _, err := NewEncoder(Opus, 48000, Options{OpusComplexity: cx}); err == nil {
			t.Errorf("Opus complexity %d: want an error", cx)
		}
	}
	if _, err := NewResampler(0, 8000); err == nil {
		t.Error("NewResampler(0, 8000): want an error")
	}
	if _, err := NewTranscoder(PCMU, 0, DefaultOptions()); err == nil {
		t.Error("NewTranscoder to an invalid codec: want an error")
	}
	if _, err := NewStreamEncoder(PCMU, 0, DefaultOptions()); err == nil {
		t.Error("NewStreamEncoder at 0 Hz: want an error")
	}
	enc, err := NewEncoder(PCMU, 8000, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if _, err := enc.Encode(nil, make([]int16, 159)); err == nil {
		t.Error("encoding a 159-sample frame: want an error")
	}
}

func TestOpusEncoderFrameSizes(t *testing.T) {
	for _, rate := range []int{8000, 12000, 16000, 24000, 48000} {
		enc, err := NewEncoder(Opus, rate, DefaultOptions())
		if err != nil {
			t.Fatalf("%d Hz: %v", rate, err)
		}
		if enc.FrameSize() != rate/50 || enc.Rate() != rate || enc.Codec() != Opus {
			t.Errorf("%d Hz: frame size %d", rate, enc.FrameSize())
		}
		p, err := enc.Encode(nil, make([]int16, rate/50))
		if err != nil || len(p) == 0 {
			t.Errorf("%d Hz: encoding silence: %d bytes, %v", rate, len(p), err)
		}
		enc.Close()
		enc.Close() // twice is fine
	}
}

func TestOpusConcealTOC(t *testing.T) {
	cases := []struct {
		last       byte
		long, want byte
	}{
		{1 << 3, 1<<3 | 0, 0 << 3},        // SILK NB 20 ms → 20 / 10 ms SILK NB
		{11 << 3, 9 << 3, 8 << 3},         // SILK WB 60 ms → SILK WB 20 / 10
		{15<<3 | 4, 15<<3 | 4, 14<<3 | 4}, // Hybrid FB stereo
		{28 << 3, 31 << 3, 30 << 3},       // CELT FB 2.5 ms → CELT FB 20 / 10
		{17 << 3, 19 << 3, 18 << 3},       // CELT NB 5 ms
	}
	for _, c := range cases {
		if got := opusConcealTOC(c.last, true); got != c.long {
			t.Errorf("TOC %#02x long: got %#02x, want %#02x", c.last, got, c.long)
		}
		if got := opusConcealTOC(c.last, false); got != c.want {
			t.Errorf("TOC %#02x short: got %#02x, want %#02x", c.last, got, c.want)
		}
	}
}

func TestUseAfterCloseFails(t *testing.T) {
	d, _ := NewDecoder(PCMU)
	d.Close()
	if _, err := d.Decode(nil, []byte{1}); err == nil {
		t.Error("Decode after Close: want an error")
	}
	if _, err := d.Conceal(nil, 160); err == nil {
		t.Error("Conceal after Close: want an error")
	}
	e, _ := NewEncoder(PCMU, 8000, DefaultOptions())
	e.Close()
	if _, err := e.Encode(nil, make([]int16, 160)); err == nil {
		t.Error("Encode after Close: want an error")
	}
	r, _ := NewResampler(8000, 16000)
	r.Close()
	if _, err := r.Resample(nil, make([]int16, 160)); err == nil {
		t.Error("Resample after Close: want an error")
	}
	tr, _ := NewTranscoder(PCMU, G722, DefaultOptions())
	tr.Close()
	if _, err := tr.Transcode(nil, []byte{1, 2}, 1, 1); err == nil {
		t.Error("Transcode after Close: want an error")
	}
	se, _ := NewStreamEncoder(G722, 8000, DefaultOptions())
	se.Close()
	if _, err := se.Encode(nil, make([]int16, 160)); err == nil {
		t.Error("StreamEncoder.Encode after Close: want an error")
	}
}
