package namespaces

import (
	"sync"
	"time"
)

// Ack receives the answer to an emit with ack: the arguments the client
// passed to its ack callback, or an error (ErrAckTimeout,
// ErrSocketDisconnected, or the context's error).
type Ack func(args []any, err error)

// ackRegistry holds the pending acks of one socket and fails them on
// timeout or when the socket ends. Safe for concurrent use.
type ackRegistry struct {
	mu      sync.Mutex
	pending map[int64]*pendingAck
	closed  bool
}

type pendingAck struct {
	fn    Ack
	timer *time.Timer
}

// Add registers fn under id (ids are unique per namespace). With
// timeout > 0 fn fails with ErrAckTimeout after that long. If the registry
// is closed, fn fails at once with ErrSocketDisconnected and Add returns
// false.
func (a *ackRegistry) Add(id int64, fn Ack, timeout time.Duration) bool {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		fn(nil, ErrSocketDisconnected)
		return false
	}
	p := &pendingAck{fn: fn}
	if a.pending == nil {
		a.pending = make(map[int64]*pendingAck)
	}
	a.pending[id] = p
	if timeout > 0 {
		p.timer = time.AfterFunc(timeout, func() {
			if a.take(id) != nil {
				fn(nil, ErrAckTimeout)
			}
		})
	}
	a.mu.Unlock()
	return true
}

func (a *ackRegistry) take(id int64) *pendingAck {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pending[id]
	if p != nil {
		delete(a.pending, id)
		if p.timer != nil {
			p.timer.Stop()
		}
	}
	return p
}

// Resolve delivers args to the ack with this id. A late or unknown ack is
// ignored and reported as false.
func (a *ackRegistry) Resolve(id int64, args []any) bool {
	p := a.take(id)
	if p == nil {
		return false
	}
	p.fn(args, nil)
	return true
}

// Cancel forgets the ack with this id without calling it.
func (a *ackRegistry) Cancel(id int64) { a.take(id) }

// Len is the number of pending acks.
func (a *ackRegistry) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

// Close fails every pending ack with ErrSocketDisconnected, and every ack
// added later.
func (a *ackRegistry) Close() {
	a.mu.Lock()
	a.closed = true
	pending := a.pending
	a.pending = nil
	a.mu.Unlock()
	for _, p := range pending {
		if p.timer != nil {
			p.timer.Stop()
		}
		p.fn(nil, ErrSocketDisconnected)
	}
}
