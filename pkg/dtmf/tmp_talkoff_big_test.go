package dtmf

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestTmpBigTalkOff(t *testing.T) {
	dir := t.TempDir()
	vs := []string{"en-us", "en-us+f3", "en-gb+m3", "en-gb-scotland+f4", "de+f2", "fr+m7", "es+f5", "en-us+Annie", "en-gb-x-rp+f1", "en-us+m1", "it+f3", "pt+m2", "nl+f4", "pl+m5", "en-us+klatt2", "en-us+f5"}
	var pcm []int16
	i := 0
	for float64(len(pcm)) < 40*60*8000 {
		v := vs[i%len(vs)]
		pitch := fmt.Sprint((i * 37) % 100)
		speed := fmt.Sprint(120 + (i*13)%100)
		wav := filepath.Join(dir, fmt.Sprintf("s%d.wav", i))
		if out, err := exec.Command("espeak-ng", "-v", v, "-p", pitch, "-s", speed, "-w", wav, speechText).CombinedOutput(); err != nil {
			t.Fatalf("%s %v %s", v, err, out)
		}
		pcm = append(pcm, sox(t, 8000, []string{wav}, "gain", "-n", fmt.Sprint(-1-(i%4)*6))...)
		i++
	}
	music := talkoffMusic(t, 20)
	for _, src := range []struct {
		name string
		pcm  []int16
	}{{"speech", pcm}, {"music", music}} {
		for _, codec := range []string{"L16", "opus"} {
			p := throughCodec(t, codec, src.pcm)
			d := detectAll(p, 8000)
			f := detectFax(p, 8000)
			t.Logf("%s via %s: %.1f min: %d digits %q, %d fax", src.name, codec, float64(len(p))/8000/60, len(d), digitsOf(d), len(f))
		}
	}
}
