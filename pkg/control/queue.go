package control

import "sync"

// eventQueue is a bounded FIFO of encoded events. Unlike a buffered channel it holds no memory
// while empty: an idle connection costs nothing for its queues, whatever
// event_channel_size says, and a busy one grows its ring up to that bound.
type eventQueue struct {
	mu    sync.Mutex
	max   int
	ring  [][]byte
	head  int // index of the oldest element
	count int
}

func newEventQueue(max int) *eventQueue { return &eventQueue{max: max} }

// push appends msg; false when the queue holds max events already.
func (q *eventQueue) push(msg []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.count >= q.max {
		return false
	}
	if q.count == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.count)%len(q.ring)] = msg
	q.count++
	return true
}

// grow doubles the ring (from 4, up to max), keeping the order.
func (q *eventQueue) grow() {
	n := min(max(4, 2*len(q.ring)), q.max)
	ring := make([][]byte, n)
	for i := 0; i < q.count; i++ {
		ring[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.ring, q.head = ring, 0
}

// pop removes the oldest event; false when empty. An emptied queue lets its ring go.
func (q *eventQueue) pop() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.count == 0 {
		return nil, false
	}
	msg := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.count--
	if q.count == 0 {
		q.ring, q.head = nil, 0
	}
	return msg, true
}
