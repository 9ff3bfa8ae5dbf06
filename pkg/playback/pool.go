package playback

import "sync"

// pool is the bounded set of worker goroutines that do every file's disk reads and decoding,
// so none of it runs on a session loop. A job is a function that runs to completion; each
// file or shared stream has at most one job queued or running at a time (its busy flag), so
// the queue never holds more jobs than there are playing sources and submit never blocks.
type pool struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []func() // queue[head:] are waiting; the array is reused once drained
	head   int
	closed bool
	wg     sync.WaitGroup
}

func newPool(workers int) *pool {
	p := &pool{}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

// submit queues fn and reports whether it will run (false once the pool is closed).
func (p *pool) submit(fn func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.queue = append(p.queue, fn)
	p.cond.Signal()
	return true
}

func (p *pool) work() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for p.head == len(p.queue) && !p.closed {
			p.cond.Wait()
		}
		if p.head == len(p.queue) {
			p.mu.Unlock()
			return
		}
		fn := p.queue[p.head]
		p.queue[p.head] = nil
		if p.head++; p.head == len(p.queue) {
			p.queue, p.head = p.queue[:0], 0
		}
		p.mu.Unlock()
		fn()
	}
}

// close lets the workers finish what is queued and waits for them to exit.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}
