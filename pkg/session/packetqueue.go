package session

import "sync"

// packetQueue is a session's inbound packet queue (PROTOCOL.md §28: at most packetQueueSize
// packets wait). Its ring is allocated when a packet first has to wait and grows as needed, so a
// session whose packets never wait holds none of it; a channel of that capacity would be 2 KiB
// for every session. Once allocated the ring is kept: a transcoding session queues every packet,
// and must not allocate for them.
type packetQueue struct {
	mu    sync.Mutex
	ring  []*queuedPacket // its length is a power of two, at most packetQueueSize
	head  int
	count int
	ready chan struct{} // holds a signal while packets are queued; the session loop waits on it
}

// minPacketRing is the ring's first size.
const minPacketRing = 8

func newPacketQueue() packetQueue { return packetQueue{ready: make(chan struct{}, 1)} }

// push queues p; false when packetQueueSize packets wait already. Only a push into an empty
// queue signals the loop: while packets wait, a signal is outstanding or the loop is taking
// them (handleQueued takes until pop says none are left, or signals again), so a transcoding
// session, which queues every packet, pays no channel operation per packet.
func (q *packetQueue) push(p *queuedPacket) bool {
	q.mu.Lock()
	if q.count == packetQueueSize {
		q.mu.Unlock()
		return false
	}
	if q.count == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.count)&(len(q.ring)-1)] = p
	q.count++
	wake := q.count == 1
	q.mu.Unlock()
	if wake {
		q.signal()
	}
	return true
}

// pop takes the oldest packet, nil when none waits, and reports whether more wait.
func (q *packetQueue) pop() (p *queuedPacket, more bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.count == 0 {
		return nil, false
	}
	p = q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) & (len(q.ring) - 1)
	q.count--
	return p, q.count > 0
}

// pending reports whether packets wait.
func (q *packetQueue) pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count > 0
}

// signal wakes the loop (at most one signal is outstanding).
func (q *packetQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// grow doubles the ring (q.mu held), keeping the packets in order.
func (q *packetQueue) grow() {
	n := max(minPacketRing, 2*len(q.ring))
	ring := make([]*queuedPacket, n)
	for i := range q.count {
		ring[i] = q.ring[(q.head+i)&(len(q.ring)-1)]
	}
	q.ring, q.head = ring, 0
}
