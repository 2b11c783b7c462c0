package adapter

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// tracker matches the answers of other nodes to this node's pending
// cross-node requests: requests that wait for one answer per live node
// (fetch sockets, server-side emit with ack) and broadcasts with ack, whose
// recipients' counts and acks stream back until the broadcast's timeout.
// Every backplane's adapter has one.
type tracker struct {
	mu       sync.Mutex
	requests map[string]*request
	acks     map[string]*ackRequest
}

// askKind is what a request asks of the other nodes.
type askKind int

const (
	askAny   askKind = iota // in answer: whatever the request asked
	askFetch                // their sockets (fetch sockets)
	askEmit                 // a handler's answer (server-side emit with ack)
)

// request is a cross-node request waiting for answers.
type request struct {
	kind      askKind
	numSub    int
	msgCount  int
	sockets   []SocketInfo
	responses []any
	done      chan struct{}
	finished  bool
}

type ackRequest struct {
	onCount func(int)
	onAck   func([]any)
}

func newTracker() tracker {
	return tracker{requests: make(map[string]*request), acks: make(map[string]*ackRequest)}
}

// expectAcks registers the broadcast with ack id until timeout.
func (t *tracker) expectAcks(id string, onCount func(int), onAck func([]any), timeout time.Duration) {
	t.mu.Lock()
	t.acks[id] = &ackRequest{onCount: onCount, onAck: onAck}
	t.mu.Unlock()
	time.AfterFunc(timeout, func() {
		t.mu.Lock()
		delete(t.acks, id)
		t.mu.Unlock()
	})
}

// ownsAcks tells whether id is one of this node's broadcasts with ack.
func (t *tracker) ownsAcks(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.acks[id] != nil
}

// onCount hands a node's recipient count to the broadcast id; false when
// id is not a pending broadcast with ack.
func (t *tracker) onCount(id string, n int) bool {
	t.mu.Lock()
	ar := t.acks[id]
	t.mu.Unlock()
	if ar == nil {
		return false
	}
	go ar.onCount(n)
	return true
}

// onAck hands a recipient's answer to the broadcast id; false when id is
// not a pending broadcast with ack.
func (t *tracker) onAck(id string, v any) bool {
	t.mu.Lock()
	ar := t.acks[id]
	t.mu.Unlock()
	if ar == nil {
		return false
	}
	if ar.onAck != nil {
		go ar.onAck([]any{v})
	}
	return true
}

// answer records one node's answer to request id: for a fetch, sockets
// (the decoded list); for a server-side emit, response. kind is the kind
// of answer the message is, or askAny when the message does not tell.
// Unknown or finished requests, and answers of another kind, are ignored.
func (t *tracker) answer(id string, kind askKind, sockets, response any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	req := t.requests[id]
	if req == nil || req.finished || (kind != askAny && kind != req.kind) {
		return
	}
	switch req.kind {
	case askFetch:
		list, ok := sockets.([]any)
		if !ok {
			return
		}
		for _, s := range list {
			req.sockets = append(req.sockets, socketInfo(s))
		}
	case askEmit:
		req.responses = append(req.responses, response)
	}
	req.msgCount++
	if req.msgCount >= req.numSub {
		req.finished = true
		close(req.done)
	}
}

// ask registers request id, sends it and waits for one answer per other
// node (others), for at most timeout or until ctx ends. It returns what
// arrived: the sockets and the responses, with ErrRequestTimeout when some
// node did not answer in time, or send's error.
func (t *tracker) ask(ctx context.Context, id string, kind askKind, others int, timeout time.Duration, send func() error) ([]SocketInfo, []any, error) {
	req := &request{kind: kind, numSub: others, done: make(chan struct{})}
	t.mu.Lock()
	t.requests[id] = req
	t.mu.Unlock()
	var err error
	if err = send(); err == nil {
		timer := time.NewTimer(timeout)
		select {
		case <-req.done:
		case <-timer.C:
			t.mu.Lock()
			got := req.msgCount
			t.mu.Unlock()
			err = fmt.Errorf("%w: %d of %d answered", ErrRequestTimeout, got, others)
		case <-ctx.Done():
			err = ctx.Err()
		}
		timer.Stop()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.requests, id)
	return req.sockets, req.responses, err
}
