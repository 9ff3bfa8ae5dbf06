package audiotest

import (
	"bytes"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"testing"
)

// SoxCLI is the Debian sox program: test signals (DTMF, fax tones, noise, music) from an
// independent generator.
const SoxCLI = "/usr/bin/sox"

// RequireSox skips the test when sox is not installed (make test-tools installs it).
func RequireSox(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(SoxCLI); err != nil {
		t.Skipf("audiotest: %s is not installed (apt-get install sox)", SoxCLI)
	}
}

// Sox runs sox with input arguments in (e.g. "-n" for synth, or a file with its format
// options) and effects, writing 16-bit mono PCM at rate, and returns the samples. -R makes
// its noise repeatable.
func Sox(t testing.TB, rate int, in []string, effects ...string) []int16 {
	t.Helper()
	RequireSox(t)
	args := append([]string{"-q", "-R"}, in...)
	args = append(args, "-r", strconv.Itoa(rate), "-e", "signed", "-b", "16", "-c", "1", "-t", "raw", "-")
	args = append(args, effects...)
	cmd := exec.Command(SoxCLI, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("audiotest: sox %v: %v\n%s", args, err, errb.String())
	}
	return PCMFromBytes(out.Bytes())
}

// DBm0Volume is the sox volume factor, relative to a full-scale sine, of a sine at level
// dBm0: G.711's full-scale sine is +3.17 dBm0.
func DBm0Volume(level float64) float64 { return math.Pow(10, (level-3.17)/20) }

// SoxDualTone is two sines from sox, at their own levels (dBm0), ms long, at rate: a DTMF
// digit when the frequencies are a row's and a column's.
func SoxDualTone(t testing.TB, rate int, low, high, lowDBm0, highDBm0 float64, ms int) []int16 {
	t.Helper()
	return Sox(t, rate, []string{"-n"}, "synth", fmt.Sprintf("%.4f", float64(ms)/1000),
		"sine", strconv.FormatFloat(low, 'f', 3, 64), "sine", strconv.FormatFloat(high, 'f', 3, 64),
		"remix", fmt.Sprintf("1v%.6f,2v%.6f", DBm0Volume(lowDBm0), DBm0Volume(highDBm0)))
}

// DTMFFreqs are the row and column frequencies of a keypad digit (ITU-T Q.23); ok is false
// for anything else.
func DTMFFreqs(c byte) (low, high float64, ok bool) {
	const keypad = "123A456B789C*0#D"
	i := bytes.IndexByte([]byte(keypad), c)
	if i < 0 {
		return 0, 0, false
	}
	return [4]float64{697, 770, 852, 941}[i/4], [4]float64{1209, 1336, 1477, 1633}[i%4], true
}
