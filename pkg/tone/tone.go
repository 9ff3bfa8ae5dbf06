// Package tone implements tone endpoints (PROTOCOL.md §19): call-progress tones and sines
// generated as a sendonly PCM leg.
package tone

import (
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/rtpbridge/rtpbridge/pkg/endpoint"
	"github.com/rtpbridge/rtpbridge/pkg/mediaio"
	"github.com/rtpbridge/rtpbridge/pkg/protocol"
)

// Rate is the synthesis rate (§19: 8 kHz).
const Rate = 8000

// amplitude is the peak of one component; a dual tone's sum is halved (§19).
const amplitude = 8000

// Spec describes one tone of §19: its frequencies and cadence (on then off, in samples; off
// 0 means continuous).
type Spec struct {
	Freqs   []float64
	On, Off int
}

// Lookup returns the tone called name with freq for "sine" (the caller validates its range).
func Lookup(name string, freq float64) (Spec, error) {
	const s = Rate
	switch name {
	case "ringback":
		return Spec{Freqs: []float64{440, 480}, On: 2 * s, Off: 4 * s}, nil
	case "ringing":
		return Spec{Freqs: []float64{440, 480}}, nil
	case "busy":
		return Spec{Freqs: []float64{480, 620}, On: s / 2, Off: s / 2}, nil
	case "beep":
		return Spec{Freqs: []float64{1000}}, nil
	case "sine":
		return Spec{Freqs: []float64{freq}}, nil
	}
	return Spec{}, fmt.Errorf("unknown tone %q, expected one of ringback, ringing, busy, beep, sine", name)
}

// Tone is a tone endpoint: it starts playing and, with a duration, finishes once that much
// has been generated (endpoint.tone.finished; no state_changed, §8).
type Tone struct {
	id   uuid.UUID
	spec Spec
	// left is how many samples remain to generate; negative: until removed.
	left  int64
	n     int64 // samples generated so far: the oscillators' time and the cadence position
	state endpoint.State
	sink  endpoint.Sink
	// step is each component's phase advance per sample.
	step []float64
	gain float64
}

var _ endpoint.Leg = (*Tone)(nil)
var _ endpoint.PCMMedia = (*Tone)(nil)

// New returns a tone endpoint playing spec for duration (negative: until removed).
func New(id uuid.UUID, spec Spec, duration time.Duration) *Tone {
	t := &Tone{id: id, spec: spec, left: -1, state: endpoint.StatePlaying, gain: amplitude}
	if duration >= 0 {
		t.left = int64(duration) * Rate / int64(time.Second)
	}
	if len(spec.Freqs) > 1 {
		t.gain = amplitude / 2
	}
	for _, f := range spec.Freqs {
		t.step = append(t.step, 2*math.Pi*f/Rate)
	}
	return t
}

// ID implements endpoint.Leg.
func (t *Tone) ID() uuid.UUID { return t.id }

// Type implements endpoint.Leg.
func (t *Tone) Type() string { return "tone" }

// Direction implements endpoint.Leg: tones only send.
func (t *Tone) Direction() endpoint.Direction { return endpoint.SendOnly }

// State implements endpoint.Leg.
func (t *Tone) State() endpoint.State { return t.state }

// SetState implements endpoint.Leg.
func (t *Tone) SetState(st endpoint.State) (endpoint.State, bool) {
	old := t.state
	t.state = st
	return old, old != st
}

// Start implements endpoint.Leg.
func (t *Tone) Start(_ *mediaio.Worker, sink endpoint.Sink) error {
	t.sink = sink
	return nil
}

// Close implements endpoint.Leg.
func (t *Tone) Close() {}

// Tick implements endpoint.Leg.
func (t *Tone) Tick(time.Time) {}

// RTP implements endpoint.Leg: a tone speaks PCM.
func (t *Tone) RTP() endpoint.RTPMedia { return nil }

// PCM implements endpoint.Leg.
func (t *Tone) PCM() endpoint.PCMMedia { return t }

// Rate implements endpoint.PCMMedia.
func (t *Tone) Rate() int { return Rate }

// WriteFrame implements endpoint.PCMMedia; a tone is never sent audio.
func (t *Tone) WriteFrame([]int16, time.Time) {}

// ReadFrame implements endpoint.PCMMedia: the next 20 ms of the tone, silence in the off
// phases of its cadence, the last frame of a duration padded with silence.
func (t *Tone) ReadFrame(frame []int16, now time.Time) bool {
	if t.state != endpoint.StatePlaying {
		return false
	}
	if t.left == 0 {
		t.finish()
		return false
	}
	n := len(frame)
	if t.left > 0 && int64(n) > t.left {
		n = int(t.left)
	}
	t.Generate(frame[:n])
	clear(frame[n:])
	if t.left > 0 {
		if t.left -= int64(n); t.left == 0 {
			t.finish()
		}
	}
	return true
}

// Generate writes the tone's next len(pcm) samples.
//
// Each component runs the two-term recurrence sin(w(k+1)) = 2cos(w)·sin(wk) − sin(w(k−1)),
// seeded exactly (from the sample count, so the phase never drifts) at the start of every
// call: two sines per component per frame instead of one per sample.
func (t *Tone) Generate(pcm []int16) {
	period := int64(t.spec.On + t.spec.Off)
	var acc [160]float64
	for len(pcm) > 0 {
		n := min(len(pcm), len(acc))
		clear(acc[:n])
		for _, w := range t.step {
			c2 := 2 * math.Cos(w)
			prev := math.Sin(math.Mod(w*float64(t.n-1), 2*math.Pi))
			cur := math.Sin(math.Mod(w*float64(t.n), 2*math.Pi))
			for i := range n {
				acc[i] += cur
				prev, cur = cur, c2*cur-prev
			}
		}
		for i := range n {
			k := t.n + int64(i)
			if period > 0 && k%period >= int64(t.spec.On) {
				pcm[i] = 0
				continue
			}
			pcm[i] = int16(math.Round(acc[i] * t.gain))
		}
		t.n += int64(n)
		pcm = pcm[n:]
	}
}

func (t *Tone) finish() {
	t.state = endpoint.StateFinished
	t.sink.Emit(protocol.EventToneFinished, map[string]string{"endpoint_id": t.id.String()})
}
