package namespaces

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/roomcast/roomcast/adapter"
)

// Emitter emits to one socket with options, as Socket.Timeout and
// Socket.Volatile return it. Each option returns a new Emitter; an Emitter
// may be reused. Handlers, data and rooms stay on the Socket.
type Emitter struct {
	s        *Socket
	timeout  time.Duration
	volatile bool
}

// Timeout bounds the wait for the ack of EmitWithAck and EmitWithAckFunc
// (instead of Config.AckTimeout).
func (e Emitter) Timeout(d time.Duration) *Emitter { e.timeout = d; return &e }

// Volatile lets a busy connection drop the emit (never counted as slow).
func (e Emitter) Volatile() *Emitter { e.volatile = true; return &e }

// Socket is the socket the Emitter emits to.
func (e *Emitter) Socket() *Socket { return e.s }

// Emit sends event with args to the socket. It never blocks. Errors:
// ErrEventName, ErrEncode, ErrSocketDisconnected.
func (e *Emitter) Emit(ctx context.Context, event string, args ...any) error {
	s := e.s
	data, err := eventData(event, args)
	if err != nil {
		return err
	}
	if err := checkEncodable(data); err != nil {
		return err
	}
	if s.isClosed() {
		return ErrSocketDisconnected
	}
	// Through the adapter, as a broadcast to the socket's own room, so the
	// packet is kept for recovery like any other.
	s.nsp.adapter.Broadcast(&adapter.Message{Type: typeEvent, Data: data, AckID: -1, Volatile: e.volatile},
		adapter.Options{Rooms: []string{s.id}, Local: true, Volatile: e.volatile})
	return nil
}

// EmitWithAck sends event and waits for the client's ack, the timeout
// (Timeout, else Config.AckTimeout) or the end of ctx. It never waits past
// the socket's disconnect (ErrSocketDisconnected). Errors also:
// ErrAckTimeout, ctx.Err(), ErrEventName, ErrEncode.
func (e *Emitter) EmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	type answer struct {
		args []any
		err  error
	}
	ch := make(chan answer, 1)
	if err := e.EmitWithAckFunc(ctx, func(a []any, err error) { ch <- answer{a, err} }, event, args...); err != nil {
		return nil, err
	}
	a := <-ch // the ack, the timeout, ctx and the disconnect all answer
	return a.args, a.err
}

// EmitWithAckFunc sends event and returns at once; ack is called once, on
// another goroutine or inline, with the client's answer or an error
// (ErrAckTimeout, ErrSocketDisconnected, ctx.Err()). The returned error
// (ErrEventName, ErrEncode) means nothing was sent and ack is not called.
func (e *Emitter) EmitWithAckFunc(ctx context.Context, ack Ack, event string, args ...any) error {
	s := e.s
	data, err := eventData(event, args)
	if err != nil {
		return err
	}
	timeout := e.timeout
	if timeout <= 0 {
		timeout = s.nsp.srv.cfg.AckTimeout
	}
	id := s.nsp.ackIDs.Add(1) - 1
	pkt, err := s.nsp.valuePacket(typeEvent, id, data, e.volatile, "")
	if err != nil {
		return err
	}
	var once sync.Once
	stop := func() bool { return false }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() {
			s.acks.Cancel(id)
			once.Do(func() { ack(nil, ctx.Err()) })
		})
	}
	if !s.acks.Add(id, func(a []any, err error) {
		stop()
		once.Do(func() { ack(a, err) })
	}, timeout) {
		return nil // ack got ErrSocketDisconnected
	}
	s.deliver(pkt, "")
	return nil
}

func errorsJoinEncode(err error) error { return fmt.Errorf("%w: %w", ErrEncode, err) }

// checkEncodable tells, before an emit goes to the adapter (which encodes
// later, once for every recipient), whether encoding/json can marshal the
// values. Plain values are checked by a walk; other types are marshalled
// once here.
func checkEncodable(v any) error {
	switch t := v.(type) {
	case nil, string, bool, []byte, json.RawMessage, json.Number,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return errorsJoinEncode(&json.UnsupportedValueError{Str: strconv.FormatFloat(t, 'g', -1, 64)})
		}
		return nil
	case float32:
		return checkEncodable(float64(t))
	case []any:
		for _, e := range t {
			if err := checkEncodable(e); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		for _, e := range t {
			if err := checkEncodable(e); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := json.Marshal(v); err != nil {
		return errorsJoinEncode(err)
	}
	return nil
}
