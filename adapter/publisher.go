package adapter

import (
	"fmt"
	"sync"
)

// publishQueue bounds the items waiting for a publisher; past it publishes
// are dropped (and counted) rather than blocking emitters.
const publishQueue = 1 << 16

// publishBatch bounds the items a publisher hands to flush at once.
const publishBatch = 256

// publisher is the ordered publisher of every backplane: items leave a
// node in the order they were queued, from one goroutine, without
// blocking the emitting goroutines. flush gets what is waiting, in order,
// up to publishBatch items (a Redis pipeline sends them in one round trip;
// the cluster backplanes run each item, a closure, in turn).
type publisher[T any] struct {
	q     chan T
	flush func(batch []T)
	fail  func(op string, err error)
	done  chan struct{}

	mu     sync.RWMutex
	closed bool
}

func newPublisher[T any](size int, flush func([]T), fail func(string, error)) *publisher[T] {
	p := &publisher[T]{q: make(chan T, size), flush: flush, fail: fail, done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *publisher[T]) loop() {
	defer close(p.done)
	batch := make([]T, 0, publishBatch)
	for item := range p.q {
		batch = append(batch[:0], item)
	more:
		for len(batch) < cap(batch) {
			select {
			case item, ok := <-p.q:
				if !ok {
					break more
				}
				batch = append(batch, item)
			default:
				break more
			}
		}
		p.flush(batch)
		clear(batch) // let the items be collected
	}
}

// queue hands item to the publisher without blocking; when the queue is
// full the item is dropped, counted and ErrPublishQueueFull returned.
// Items queued after stop are dropped with ErrClosed.
func (p *publisher[T]) queue(item T) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	select {
	case p.q <- item:
		return nil
	default:
		p.fail("publish", errPublishDropped)
		return ErrPublishQueueFull
	}
}

var errPublishDropped = fmt.Errorf("%w, message dropped", ErrPublishQueueFull)

// backlog is the number of items waiting.
func (p *publisher[T]) backlog() int { return len(p.q) }

// stop ends the publisher once the queued items are flushed (a flush
// that must not wait should watch its own context).
func (p *publisher[T]) stop() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.q)
	}
	p.mu.Unlock()
	<-p.done
}

// jobs is a publisher of closures run in order: the cluster backplanes'.
type jobs = publisher[func()]

func newJobs(fail func(string, error)) *jobs {
	return newPublisher(publishQueue, func(batch []func()) {
		for _, job := range batch {
			job()
		}
	}, fail)
}
