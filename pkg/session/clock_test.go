package session

import (
	"math/rand/v2"
	"testing"
	"time"
)

// An hour of ticks that each arrive up to 15 ms late yields exactly one frame per 20 ms of wall
// clock: lateness never accumulates into drift.
func TestMediaClockNoDrift(t *testing.T) {
	var c mediaClock
	start := time.Unix(1_700_000_000, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	frames := 0
	var first, last time.Time
	for k := 0; k <= int(time.Hour/frameInterval); k++ {
		late := time.Duration(rng.IntN(15_000)) * time.Microsecond
		last = start.Add(time.Duration(k)*frameInterval + late)
		if k == 0 {
			first = last
		}
		frames += c.due(last)
	}
	// The schedule starts at the first tick: frames are due at first + k × 20 ms.
	if want := int(last.Sub(first)/frameInterval) + 1; frames != want {
		t.Fatalf("%d frames in an hour, want %d", frames, want)
	}
}

// A tick that comes late produces the frames missed, up to five; a longer stall skips the rest
// and the schedule keeps its 20 ms phase.
func TestMediaClockCatchUp(t *testing.T) {
	var c mediaClock
	start := time.Unix(1_700_000_000, 0)
	if n := c.due(start); n != 1 {
		t.Fatalf("first tick: %d frames", n)
	}
	if n := c.due(start.Add(3*frameInterval + time.Millisecond)); n != 3 {
		t.Fatalf("after 60 ms: %d frames, want 3", n)
	}
	if n := c.due(start.Add(20*frameInterval + 5*time.Millisecond)); n != maxCatchUp {
		t.Fatalf("after a 340 ms stall: %d frames, want %d", n, maxCatchUp)
	}
	if want := start.Add(21 * frameInterval); !c.next.Equal(want) {
		t.Fatalf("next frame due at +%v, want +%v", c.next.Sub(start), want.Sub(start))
	}
	if n := c.due(start.Add(21 * frameInterval)); n != 1 {
		t.Fatalf("back on schedule: %d frames, want 1", n)
	}
}
