package session

import "testing"

// The queue keeps order across growth and wrap-around, holds at most packetQueueSize packets,
// allocates nothing until a packet has to wait and nothing once its ring has grown.
func TestPacketQueue(t *testing.T) {
	q := newPacketQueue()
	if p, more := q.pop(); q.ring != nil || p != nil || more || q.pending() {
		t.Fatal("a new queue holds a ring or packets")
	}
	var model []int // what the queue should hold, oldest first
	pushed := 0
	push := func() bool {
		ok := q.push(&queuedPacket{n: pushed})
		if ok {
			model = append(model, pushed)
		}
		pushed++
		return ok
	}
	pop := func() {
		p, more := q.pop()
		if len(model) == 0 {
			if p != nil || more {
				t.Fatalf("popped %v (more %v) from an empty queue", p, more)
			}
			return
		}
		if p == nil || p.n != model[0] {
			t.Fatalf("popped %v, want packet %d", p, model[0])
		}
		model = model[1:]
		if more != (len(model) > 0) {
			t.Fatalf("pop says more %v with %d left", more, len(model))
		}
	}
	// Two pushes for every pop: the ring wraps while it grows, up to the bound.
	for len(model) < packetQueueSize {
		if !push() {
			t.Fatalf("push refused with %d queued", len(model))
		}
		if pushed%2 == 0 {
			pop()
		}
	}
	if push() {
		t.Fatalf("push accepted beyond %d queued", packetQueueSize)
	}
	if len(q.ring) != packetQueueSize {
		t.Fatalf("ring of %d at the bound, want %d", len(q.ring), packetQueueSize)
	}
	for len(model) > 0 {
		pop()
	}
	pop()
	select {
	case <-q.ready:
	default:
		t.Fatal("no signal after pushes")
	}
	// Only a push into an empty queue signals; the loop takes every waiting packet per signal.
	q.push(&queuedPacket{})
	q.push(&queuedPacket{})
	select {
	case <-q.ready:
	default:
		t.Fatal("no signal after a push into an empty queue")
	}
	q.push(&queuedPacket{})
	select {
	case <-q.ready:
		t.Fatal("a push into a queue already waiting signalled again")
	default:
	}
	for q.pending() {
		q.pop()
	}
	p := &queuedPacket{}
	if allocs := testing.AllocsPerRun(1000, func() {
		q.push(p)
		q.pop()
	}); allocs != 0 {
		t.Fatalf("push and pop allocate %.1f times once the ring exists", allocs)
	}
}
