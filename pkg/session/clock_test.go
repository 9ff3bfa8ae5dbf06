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
	// The schedule starts half a frame before the first tick.
	if want := int(last.Sub(first.Add(-frameInterval/2))/frameInterval) + 1; frames != want {
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
	// Frames are due at start − 10 ms + k × 20 ms: the next one after the stall is +410 ms.
	if want := start.Add(410 * time.Millisecond); !c.next.Equal(want) {
		t.Fatalf("next frame due at +%v, want +%v", c.next.Sub(start), want.Sub(start))
	}
	if n := c.due(start.Add(411 * time.Millisecond)); n != 1 {
		t.Fatalf("back on schedule: %d frames, want 1", n)
	}
}

// Ticks that come late by varying amounts (under half a frame) each produce exactly one frame:
// no hole when a tick is less late than the first one, no burst after it.
func TestMediaClockEvenUnderJitter(t *testing.T) {
	var c mediaClock
	start := time.Unix(1_700_000_000, 0)
	rng := rand.New(rand.NewPCG(3, 4))
	first := 9 * time.Millisecond // a first tick that came late
	if n := c.due(start.Add(first)); n != 1 {
		t.Fatalf("first tick: %d frames", n)
	}
	for k := 1; k < 10000; k++ {
		late := time.Duration(rng.IntN(9_000)) * time.Microsecond
		if n := c.due(start.Add(time.Duration(k)*frameInterval + late)); n != 1 {
			t.Fatalf("tick %d, %v late (the first was %v late): %d frames, want 1", k, late, first, n)
		}
	}
}
