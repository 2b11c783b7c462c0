package namespaces

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/roomcast/roomcast/adapter"
)

// The msgpack parser (socket.io-msgpack-parser): every packet is one binary
// Engine.IO message holding a msgpack map {type, nsp, data, id}; binary
// values are msgpack bin, inline, so there are no attachments and no
// BINARY_EVENT or BINARY_ACK types.

// decodeMsgpackPacket decodes a packet from a msgpack client. The input is
// untrusted: it is checked within the adapters' decode limits
// (adapter.CheckMsgpack) before anything is decoded, and decoded values
// never share memory with b. Numbers become float64 (as JSON numbers do),
// timestamps (a JavaScript Date) the ISO string JSON would carry, and
// undefined nil.
func decodeMsgpackPacket(b []byte) (packet, error) {
	p := packet{id: -1, nsp: "/", typ: -1, decoded: true}
	if err := adapter.CheckMsgpack(b); err != nil {
		msg := strings.TrimPrefix(err.Error(), adapter.ErrUndecodable.Error()+": ")
		return p, fmt.Errorf("%w: %s", errPacket, msg)
	}
	d := msgpack.GetDecoder()
	defer msgpack.PutDecoder(d)
	r := bytes.NewReader(b)
	d.Reset(r) // PutDecoder drops the reference to b
	n, err := mapLen(d)
	if err != nil {
		return p, err
	}
	var data any
	hasData := false
	for range n {
		key, err := mpKey(d)
		if err != nil {
			return p, err
		}
		switch key {
		case "type":
			t, err := mpInt(d, 6)
			if err != nil {
				return p, fmt.Errorf("%w: bad packet type", errPacket)
			}
			p.typ = int(t)
		case "nsp":
			c, err := d.PeekCode()
			if err != nil || !msgpcode.IsString(c) {
				return p, fmt.Errorf("%w: namespace must be a string", errPacket)
			}
			if p.nsp, err = d.DecodeString(); err != nil {
				return p, mpError(err)
			}
			if p.nsp == "" {
				p.nsp = "/"
			}
		case "id":
			c, err := d.PeekCode()
			if err == nil && c == msgpcode.Nil {
				_ = d.DecodeNil()
				p.id = -1
				continue
			}
			id, err := mpInt(d, 1<<53)
			if err != nil {
				return p, fmt.Errorf("%w: bad ack id", errPacket)
			}
			p.id = id
		case "data":
			if data, err = mpValue(d); err != nil {
				return p, err
			}
			hasData = true
		default: // "options" and whatever else a client adds
			if err := d.Skip(); err != nil {
				return p, mpError(err)
			}
		}
	}
	switch p.typ {
	case typeConnect:
		if !hasData || data == nil {
			break
		}
		m, ok := data.(map[string]any)
		if !ok {
			return p, fmt.Errorf("%w: CONNECT payload must be an object", errPacket)
		}
		p.auth = m
	case typeDisconnect:
		if data != nil {
			return p, fmt.Errorf("%w: DISCONNECT carries no payload", errPacket)
		}
	case typeEvent, typeAck:
		a, ok := data.([]any)
		if !ok {
			return p, fmt.Errorf("%w: payload must be an array", errPacket)
		}
		if p.typ == typeAck && p.id < 0 {
			return p, fmt.Errorf("%w: ACK without id", errPacket)
		}
		p.vals = a
	case typeConnectError:
		return p, fmt.Errorf("%w: CONNECT_ERROR is server-to-client only", errPacket)
	default:
		return p, fmt.Errorf("%w: unknown packet type", errPacket)
	}
	return p, nil
}

func mpError(err error) error { return fmt.Errorf("%w: msgpack: %v", errPacket, err) }

func mapLen(d *msgpack.Decoder) (int, error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, mpError(err)
	}
	if !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		return 0, fmt.Errorf("%w: a msgpack packet must be a map", errPacket)
	}
	n, err := d.DecodeMapLen()
	if err != nil {
		return 0, mpError(err)
	}
	return n, nil
}

func mpKey(d *msgpack.Decoder) (string, error) {
	c, err := d.PeekCode()
	if err != nil {
		return "", mpError(err)
	}
	if !msgpcode.IsString(c) {
		return "", fmt.Errorf("%w: map keys must be strings", errPacket)
	}
	s, err := d.DecodeString()
	if err != nil {
		return "", mpError(err)
	}
	return s, nil
}

// mpInt reads an integer in [0, max]: a msgpack int, or a float with an
// integral value (JavaScript has only numbers).
func mpInt(d *msgpack.Decoder, max int64) (int64, error) {
	v, err := mpValue(d)
	if err != nil {
		return 0, err
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f > float64(max) || f != math.Trunc(f) {
		return 0, errPacket
	}
	return int64(f), nil
}

// mpValue decodes one value (CheckMsgpack has bounded its size, nesting
// and count).
func mpValue(d *msgpack.Decoder) (any, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, mpError(err)
	}
	switch {
	case c == msgpcode.Nil:
		return nil, d.DecodeNil()
	case c == msgpcode.True || c == msgpcode.False:
		return d.DecodeBool()
	case msgpcode.IsString(c):
		s, err := d.DecodeString()
		if err != nil {
			return nil, mpError(err)
		}
		return s, nil
	case msgpcode.IsBin(c):
		b, err := d.DecodeBytes()
		if err != nil {
			return nil, mpError(err)
		}
		if b == nil {
			b = []byte{}
		}
		return b, nil
	case c == msgpcode.Uint64:
		u, err := d.DecodeUint64()
		if err != nil {
			return nil, mpError(err)
		}
		return float64(u), nil
	case msgpcode.IsFixedNum(c) || (c >= msgpcode.Float && c <= msgpcode.Int64):
		f, err := d.DecodeFloat64()
		if err != nil {
			return nil, mpError(err)
		}
		return f, nil
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return nil, mpError(err)
		}
		a := make([]any, n) // n ≤ the bytes left (CheckMsgpack)
		for i := range a {
			if a[i], err = mpValue(d); err != nil {
				return nil, err
			}
		}
		return a, nil
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil {
			return nil, mpError(err)
		}
		m := make(map[string]any, min(n, 64))
		for range n {
			k, err := mpKey(d)
			if err != nil {
				return nil, err
			}
			if m[k], err = mpValue(d); err != nil {
				return nil, err
			}
		}
		return m, nil
	case msgpcode.IsExt(c):
		return mpExt(d)
	}
	return nil, fmt.Errorf("%w: msgpack: invalid type byte 0x%02x", errPacket, c)
}

// mpExt decodes the extensions notepack.io writes: a timestamp (type -1,
// a Date) becomes its ISO string, as Date.toJSON; undefined (type 0, one
// byte) nil. Others are refused.
func mpExt(d *msgpack.Decoder) (any, error) {
	id, n, err := d.DecodeExtHeader()
	if err != nil {
		return nil, mpError(err)
	}
	if (id != -1 || (n != 4 && n != 8 && n != 12)) && (id != 0 || n != 1) {
		return nil, fmt.Errorf("%w: msgpack extension %d of %d bytes", errPacket, id, n)
	}
	var buf [12]byte
	if err := d.ReadFull(buf[:n]); err != nil {
		return nil, mpError(err)
	}
	var t time.Time
	switch n {
	case 1:
		return nil, nil
	case 4:
		t = time.Unix(int64(binary.BigEndian.Uint32(buf[:4])), 0)
	case 8:
		v := binary.BigEndian.Uint64(buf[:8])
		t = time.Unix(int64(v&(1<<34-1)), int64(v>>34))
	case 12:
		t = time.Unix(int64(binary.BigEndian.Uint64(buf[4:12])), int64(binary.BigEndian.Uint32(buf[:4])))
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z"), nil
}

type mpEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var mpEncoders = sync.Pool{New: func() any {
	e := new(mpEncoder)
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}

// encodeMsgpackPacket renders a packet for a msgpack client. data is the
// payload (nil: none); values encode as they would to JSON, except that
// []byte is msgpack bin.
func encodeMsgpackPacket(typ int, nsp string, id int64, data any) ([]byte, error) {
	e := mpEncoders.Get().(*mpEncoder)
	defer mpEncoders.Put(e)
	e.buf.Reset()
	n := 2
	if data != nil {
		n++
	}
	if id >= 0 {
		n++
	}
	enc := e.enc
	_ = enc.EncodeMapLen(n)
	_ = enc.EncodeString("type")
	_ = enc.EncodeInt(int64(typ))
	if data != nil {
		_ = enc.EncodeString("data")
		if err := mpEncode(enc, data); err != nil {
			return nil, err
		}
	}
	_ = enc.EncodeString("nsp")
	_ = enc.EncodeString(nsp)
	if id >= 0 {
		_ = enc.EncodeString("id")
		_ = enc.EncodeInt(id)
	}
	return bytes.Clone(e.buf.Bytes()), nil
}

// mpEncode writes v as msgpack. Numbers with an integral value are ints
// (JavaScript reads either as a number); types other than the plain ones
// go through encoding/json first, so they look as they would to a JSON
// client.
func mpEncode(enc *msgpack.Encoder, v any) error {
	switch t := v.(type) {
	case nil:
		return enc.EncodeNil()
	case bool:
		return enc.EncodeBool(t)
	case string:
		return enc.EncodeString(t)
	case []byte:
		return enc.EncodeBytes(t)
	case float64:
		return mpFloat(enc, t)
	case float32:
		return mpFloat(enc, float64(t))
	case int:
		return enc.EncodeInt(int64(t))
	case int8:
		return enc.EncodeInt(int64(t))
	case int16:
		return enc.EncodeInt(int64(t))
	case int32:
		return enc.EncodeInt(int64(t))
	case int64:
		return enc.EncodeInt(t)
	case uint:
		return enc.EncodeUint(uint64(t))
	case uint8:
		return enc.EncodeUint(uint64(t))
	case uint16:
		return enc.EncodeUint(uint64(t))
	case uint32:
		return enc.EncodeUint(uint64(t))
	case uint64:
		return enc.EncodeUint(t)
	case json.Number:
		if i, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return enc.EncodeInt(i)
		}
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return errorsJoinEncode(err)
		}
		return enc.EncodeFloat64(f) // beyond float64: ±Inf, as JavaScript reads it
	case json.RawMessage:
		return mpJSON(enc, t)
	case []any:
		if err := enc.EncodeArrayLen(len(t)); err != nil {
			return err
		}
		for _, e := range t {
			if err := mpEncode(enc, e); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if err := enc.EncodeMapLen(len(t)); err != nil {
			return err
		}
		for k, e := range t {
			if err := enc.EncodeString(k); err != nil {
				return err
			}
			if err := mpEncode(enc, e); err != nil {
				return err
			}
		}
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return errorsJoinEncode(err)
	}
	return mpJSON(enc, b)
}

func mpFloat(enc *msgpack.Encoder, f float64) error {
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return enc.EncodeInt(int64(f))
	}
	return enc.EncodeFloat64(f)
}

// mpJSON writes JSON text as msgpack, numbers kept exact where they fit.
func mpJSON(enc *msgpack.Encoder, raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return errorsJoinEncode(err)
	}
	return mpEncode(enc, v)
}
