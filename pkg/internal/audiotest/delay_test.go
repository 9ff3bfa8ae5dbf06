package audiotest

import (
	"math"
	"testing"
)

// TestDelay finds a delayed, attenuated copy of a signal at its lag (also negative and
// fractional), and SegmentalSNR aligns it and scores a copy with known noise.
func TestDelay(t *testing.T) {
	ref := Tone(16000, 16000, 0.3, 300, 1170, 2500)
	for _, lag := range []int{0, 7, 45, -12} {
		got := make([]int16, len(ref))
		for i := range got {
			if j := i - lag; j >= 0 && j < len(ref) {
				got[i] = ref[j] / 2
			}
		}
		l, corr := Delay(ref, got, 100)
		if math.Abs(l-float64(lag)) > 0.05 || corr < 0.99 {
			t.Errorf("lag %d: found %.2f (correlation %.3f)", lag, l, corr)
		}
	}
	// Half a sample: the interpolated peak lies between the two.
	a, b := Tone(16000, 16000, 0.3, 200), make([]int16, 16000)
	for i := 1; i < len(b); i++ {
		b[i] = int16((int(a[i]) + int(a[i-1])) / 2)
	}
	if l, _ := Delay(a, b, 20); math.Abs(l-0.5) > 0.1 {
		t.Errorf("half-sample delay found at %.2f", l)
	}
	noisy := make([]int16, len(ref)+30)
	for i, v := range ref {
		noisy[i+30] = v + int16(float64(v)*0.1) // 20 dB below the signal in every segment
	}
	if snr, lag := SegmentalSNR(ref, noisy, 100, 320); lag != 30 || math.Abs(snr-20) > 0.5 {
		t.Errorf("segmental SNR %.2f dB at lag %d, want 20 dB at 30", snr, lag)
	}
}

// TestOpusHasLBRR reads the LBRR flag of SILK packets made by the Debian ffmpeg CLI's libopus:
// with in-band FEC at 10 % expected loss most packets of speech carry it, without FEC none.
func TestOpusHasLBRR(t *testing.T) {
	speech := Speech(t)
	count := func(extra ...string) (int, int) {
		args := append([]string{"-application", "voip", "-b:a", "24k", "-frame_duration", "20"}, extra...)
		p, err := ReadOggPackets(FFmpegEncode(t, speech, 16000, "ogg", "libopus", args...))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, pkt := range p[2:] {
			if OpusHasLBRR(pkt) {
				n++
			}
		}
		return n, len(p) - 2
	}
	if n, all := count("-fec", "1", "-packet_loss", "10"); n < all/2 {
		t.Errorf("with FEC: %d of %d packets flagged", n, all)
	}
	if n, all := count("-fec", "0"); n != 0 {
		t.Errorf("without FEC: %d of %d packets flagged", n, all)
	}
	for _, p := range [][]byte{nil, {0x08}, {0xf8, 0xff}, {0x0b, 0x02}, {0x0b, 0xc2, 0xff}} {
		OpusHasLBRR(p) // short, CELT and truncated code 3 packets: no panic
	}
}
