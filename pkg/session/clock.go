package session

import "time"

// frameInterval is one tick of a session's media clock.
const frameInterval = 20 * time.Millisecond

// maxCatchUp is how many frames one late tick may produce: after a stall, generated audio
// catches up on a short one and skips a long one rather than bursting.
const maxCatchUp = 5

// mediaClock paces the legs that produce audio on their own (files, tones, bridges, paced
// WebSocket input): one per session, however many such legs it has. Its frames are scheduled
// on an absolute timeline (start + k × 20 ms), so timer jitter never accumulates into drift.
type mediaClock struct {
	next time.Time // when the next frame is due; zero before the first tick
}

// due returns how many frames are due at now (at most maxCatchUp) and moves the schedule on.
// When more than maxCatchUp were due, the rest are skipped and the schedule keeps its phase.
func (c *mediaClock) due(now time.Time) int {
	if c.next.IsZero() {
		// Ticks come late by a varying amount: schedule half a frame before the first one, so
		// a later tick that is less late than the first still finds its frame due, rather
		// than none now and two on the next tick (a 20 ms hole, then a burst).
		c.next = now.Add(-frameInterval / 2)
	}
	n := 0
	for n < maxCatchUp && !c.next.After(now) {
		c.next = c.next.Add(frameInterval)
		n++
	}
	if !c.next.After(now) {
		skip := now.Sub(c.next)/frameInterval + 1
		c.next = c.next.Add(skip * frameInterval)
	}
	return n
}

// reset forgets the schedule; the next tick starts a new one.
func (c *mediaClock) reset() { c.next = time.Time{} }
