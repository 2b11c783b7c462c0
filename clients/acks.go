package clients

import (
	"errors"
	"sync"
	"time"
)

// ErrAckTimeout fails an ack that did not arrive in time.
var ErrAckTimeout = errors.New("operation has timed out")

// ErrDisconnected fails an ack whose socket went away first.
var ErrDisconnected = errors.New("socket has been disconnected")

// AckFunc receives the arguments of an ack, or an error.
type AckFunc func(args []any, err error)

// Acks registers pending acks of one socket and fails them on timeout or
// close. Safe for concurrent use.
type Acks struct {
	mu      sync.Mutex
	pending map[int64]*pendingAck
	closed  bool
}

type pendingAck struct {
	fn    AckFunc
	timer *time.Timer
}

// Add registers fn under id (ids are unique per namespace). With
// timeout > 0 fn fails with ErrAckTimeout after that long. If the registry
// is closed, fn fails at once with ErrDisconnected and Add returns false.
func (a *Acks) Add(id int64, fn AckFunc, timeout time.Duration) bool {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		fn(nil, ErrDisconnected)
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

func (a *Acks) take(id int64) *pendingAck {
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
func (a *Acks) Resolve(id int64, args []any) bool {
	p := a.take(id)
	if p == nil {
		return false
	}
	p.fn(args, nil)
	return true
}

// Cancel forgets the ack with this id without calling it.
func (a *Acks) Cancel(id int64) { a.take(id) }

// Len is the number of pending acks.
func (a *Acks) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

// Close fails every pending ack with ErrDisconnected.
func (a *Acks) Close() {
	a.mu.Lock()
	a.closed = true
	pending := a.pending
	a.pending = nil
	a.mu.Unlock()
	for _, p := range pending {
		if p.timer != nil {
			p.timer.Stop()
		}
		p.fn(nil, ErrDisconnected)
	}
}
