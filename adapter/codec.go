package adapter

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/zap"
)

// encodeMsgpack encodes v as Node's notepack.io does: maps with string
// keys, arrays, binary as bin.
func encodeMsgpack(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag("msgpack")
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeMsgpack decodes into v; maps become map[string]any.
func decodeMsgpack(b []byte, v any) error {
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeMap() })
	return dec.Decode(v)
}

// toInt reads any integer or float as an int64.
func toInt(v any) (int64, bool) {
	switch t := v.(type) {
	case int:
		return int64(t), true
	case int8:
		return int64(t), true
	case int16:
		return int64(t), true
	case int32:
		return int64(t), true
	case int64:
		return t, true
	case uint8:
		return int64(t), true
	case uint16:
		return int64(t), true
	case uint32:
		return int64(t), true
	case uint64:
		return int64(t), true
	case float32:
		return int64(t), true
	case float64:
		return int64(t), true
	}
	return 0, false
}

// plain turns values into what both JSON and msgpack encode the same way
// the Node peers expect: json.RawMessage is decoded, maps with
// interface keys become string-keyed.
func plain(data []any) []any {
	out := make([]any, len(data))
	for i, v := range data {
		out[i] = plain1(v)
	}
	return out
}

func plain1(v any) any {
	switch t := v.(type) {
	case json.RawMessage:
		var x any
		if json.Unmarshal(t, &x) != nil {
			return nil
		}
		return x
	case []any:
		return plain(t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = plain1(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			if s, ok := k.(string); ok {
				out[s] = plain1(e)
			}
		}
		return out
	}
	return v
}

// randomID is n random bytes in hex (Node's uid2 makes similar ids).
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// rateLog logs at most one line per second, counting the lines it skipped.
type rateLog struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

func (l *rateLog) log(log *zap.Logger, msg string, fields ...zap.Field) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < time.Second {
		l.skipped++
		l.mu.Unlock()
		return
	}
	skipped := l.skipped
	l.last, l.skipped = now, 0
	l.mu.Unlock()
	log.Warn(msg, append(fields, zap.Int("suppressed", skipped))...)
}

// worker runs jobs one at a time, in the order they were queued, so
// publishes leave a node in emit order without blocking emitters.
type worker struct {
	jobs   chan func()
	fail   func(op string, err error)
	done   chan struct{}
	mu     sync.RWMutex
	closed bool
}

func newWorker(size int, fail func(string, error)) *worker {
	w := &worker{jobs: make(chan func(), size), fail: fail, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for job := range w.jobs {
			job()
		}
	}()
	return w
}

// run queues job; when the queue is full the job is dropped and counted.
// Jobs queued after stop are dropped.
func (w *worker) run(job func()) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return
	}
	select {
	case w.jobs <- job:
	default:
		w.fail("publish", errors.New("publish queue full, message dropped"))
	}
}

// stop ends the worker once the queued jobs are done.
func (w *worker) stop() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.jobs)
	}
	w.mu.Unlock()
	<-w.done
}

// HasBinary reports whether v holds a []byte anywhere in its maps and
// slices: Socket.IO sends those as binary attachments, and the Redis
// adapters as msgpack.
func HasBinary(v any) bool { return hasBinary(v, 0) }

func hasBinary(v any, depth int) bool {
	if depth > 32 {
		return false
	}
	switch t := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range t {
			if hasBinary(e, depth+1) {
				return true
			}
		}
	case map[string]any:
		for _, e := range t {
			if hasBinary(e, depth+1) {
				return true
			}
		}
	}
	return false
}
