package adapter

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// Limits on what the adapters decode from the backplane (and from saved
// sessions), which they do not trust: a message past one of them is
// refused with ErrUndecodable before anything is allocated for it.
const (
	// maxDecodeBytes bounds a message: 16 MiB. A broadcast carries one
	// client message (server.DefaultMaxPayload: 1 MB) plus the envelope.
	maxDecodeBytes = 16 << 20
	// maxDecodeDepth bounds the nesting of arrays and maps: 10,000, the
	// limit of encoding/json, so what a node accepted from a client as
	// JSON also decodes on the other nodes.
	maxDecodeDepth = 10_000
	// maxDecodeElements bounds the values (array elements, map keys and
	// values) of one message: 1,048,576, twice what a 1 MB JSON payload can
	// hold, so decoding cannot blow a small message up into gigabytes of
	// interface values. Measured: the worst case, 1 MB of one-entry maps,
	// allocates ~120 MB while it decodes; 1 MB of small ints 16 MB.
	maxDecodeElements = 1 << 20
)

// ErrUndecodable wraps every refusal of a backplane message.
var ErrUndecodable = errors.New("undecodable backplane message")

// decodeMsgpack decodes into v; maps become map[string]any. b must hold
// exactly one msgpack value within the decode limits (checkMsgpack).
func decodeMsgpack(b []byte, v any) error {
	if err := checkMsgpack(b); err != nil {
		return err
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeMap() })
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	return nil
}

// decodeJSON decodes one JSON value into v, within the decode limits.
func decodeJSON(b []byte, v any) error {
	if err := checkJSON(b); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	return nil
}

// checkMsgpack walks the msgpack value in b without decoding it: every
// declared length must fit in the bytes that remain, nesting stays within
// maxDecodeDepth, the values within maxDecodeElements, and the value must
// end exactly at the end of b (as notepack.io requires). It allocates
// nothing, so a 5-byte message claiming 4 billion elements costs 5 bytes
// of reading.
func checkMsgpack(b []byte) error {
	if len(b) > maxDecodeBytes {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrUndecodable, len(b), maxDecodeBytes)
	}
	w := mpWalker{b: b}
	if err := w.value(0); err != nil {
		return fmt.Errorf("%w: msgpack %v at byte %d", ErrUndecodable, err, w.off)
	}
	if w.off != len(b) {
		return fmt.Errorf("%w: msgpack %d trailing bytes", ErrUndecodable, len(b)-w.off)
	}
	return nil
}

type mpWalker struct {
	b        []byte
	off      int
	elements int
}

var (
	errTruncated   = errors.New("truncated")
	errTooDeep     = fmt.Errorf("nested deeper than %d", maxDecodeDepth)
	errTooMany     = fmt.Errorf("more than %d values", maxDecodeElements)
	errBadTypeByte = errors.New("invalid type byte 0xc1")
)

// skip moves past n bytes that must be there.
func (w *mpWalker) skip(n uint64) error {
	if n > uint64(len(w.b)-w.off) {
		return errTruncated
	}
	w.off += int(n)
	return nil
}

// uint reads a big-endian length of size bytes.
func (w *mpWalker) uint(size int) (uint64, error) {
	if size > len(w.b)-w.off {
		return 0, errTruncated
	}
	var n uint64
	for _, c := range w.b[w.off : w.off+size] {
		n = n<<8 | uint64(c)
	}
	w.off += size
	return n, nil
}

// value walks one value at nesting depth.
func (w *mpWalker) value(depth int) error {
	if w.elements++; w.elements > maxDecodeElements {
		return errTooMany
	}
	if w.off >= len(w.b) {
		return errTruncated
	}
	c := w.b[w.off]
	w.off++
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return nil // fixints, nil, booleans
	case c <= 0x8f:
		return w.items(depth, 2*uint64(c&0x0f))
	case c <= 0x9f:
		return w.items(depth, uint64(c&0x0f))
	case c <= 0xbf:
		return w.skip(uint64(c & 0x1f)) // fixstr
	}
	switch c {
	case 0xc1:
		return errBadTypeByte
	case 0xc4, 0xd9: // bin8, str8
		return w.sized(1, 0)
	case 0xc5, 0xda:
		return w.sized(2, 0)
	case 0xc6, 0xdb:
		return w.sized(4, 0)
	case 0xc7: // ext8, ext16, ext32: length, type byte, data
		return w.sized(1, 1)
	case 0xc8:
		return w.sized(2, 1)
	case 0xc9:
		return w.sized(4, 1)
	case 0xca, 0xce, 0xd2:
		return w.skip(4)
	case 0xcb, 0xcf, 0xd3:
		return w.skip(8)
	case 0xcc, 0xd0:
		return w.skip(1)
	case 0xcd, 0xd1:
		return w.skip(2)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 and the type
		return w.skip(1 + 1<<(c-0xd4))
	case 0xdc, 0xdd: // array16, array32
		n, err := w.uint(2 + 2*int(c-0xdc))
		if err != nil {
			return err
		}
		return w.items(depth, n)
	default: // 0xde, 0xdf: map16, map32
		n, err := w.uint(2 + 2*int(c-0xde))
		if err != nil {
			return err
		}
		return w.items(depth, 2*n)
	}
}

// sized skips a value whose length is in its next size bytes, followed by
// extra bytes (the type of an ext) and the data.
func (w *mpWalker) sized(size int, extra uint64) error {
	n, err := w.uint(size)
	if err != nil {
		return err
	}
	return w.skip(extra + n)
}

// items walks the n values of an array or a map (keys and values) at depth.
func (w *mpWalker) items(depth int, n uint64) error {
	// Every value takes at least one byte: a count beyond the bytes left
	// is a lie, refused before walking anything.
	if n > uint64(len(w.b)-w.off) {
		return errTruncated
	}
	if n > 0 && depth+1 > maxDecodeDepth {
		return errTooDeep
	}
	for ; n > 0; n-- {
		if err := w.value(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// checkJSON bounds the size, nesting and number of values of a JSON text
// in one pass over its bytes (encoding/json then checks the syntax).
func checkJSON(b []byte) error {
	if len(b) > maxDecodeBytes {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrUndecodable, len(b), maxDecodeBytes)
	}
	depth, values := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > maxDecodeDepth {
				return fmt.Errorf("%w: json %v", ErrUndecodable, errTooDeep)
			}
			values++
		case c == ']' || c == '}':
			depth--
		case c == ',' || c == ':':
			values++
		}
		if values > maxDecodeElements {
			return fmt.Errorf("%w: json %v", ErrUndecodable, errTooMany)
		}
	}
	return nil
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
