package namespaces

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/roomcast/roomcast/adapter"
)

// Socket.IO packet types (protocol 5).
const (
	typeConnect      = 0
	typeDisconnect   = 1
	typeEvent        = 2
	typeAck          = 3
	typeConnectError = 4
	typeBinaryEvent  = 5
	typeBinaryAck    = 6
)

// maxAttachments bounds the attachment count a client may announce in one
// packet. Their total size is bounded apart (Config.MaxPacketSize); this
// bounds the per-attachment overhead of many tiny ones.
const maxAttachments = 100

// errPacket is the cause of every decoding failure.
var errPacket = errors.New("invalid socket.io packet")

// packet is a decoded socket.io packet. data is the raw JSON payload; its
// binary placeholders refer to attachments.
type packet struct {
	typ         int
	nsp         string
	id          int64 // -1: none
	attachments int
	data        []byte
	bins        [][]byte
	size        int // bytes held: data and bins, while attachments arrive

	// From the msgpack parser: the payload already decoded.
	decoded bool
	vals    []any          // EVENT, ACK
	auth    map[string]any // CONNECT
}

// decodePacket parses the text part of a socket.io packet (the Engine.IO
// message payload, without the "4").
func decodePacket(s []byte) (packet, error) {
	p := packet{id: -1, nsp: "/"}
	if len(s) == 0 || s[0] < '0' || s[0] > '6' {
		return p, fmt.Errorf("%w: unknown packet type", errPacket)
	}
	p.typ = int(s[0] - '0')
	i := 1
	if p.typ == typeBinaryEvent || p.typ == typeBinaryAck {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j >= len(s) || s[j] != '-' || j-i > 4 {
			return p, fmt.Errorf("%w: bad attachment count", errPacket)
		}
		n, _ := strconv.Atoi(string(s[i:j]))
		if n > maxAttachments {
			return p, fmt.Errorf("%w: too many attachments", errPacket)
		}
		p.attachments = n
		i = j + 1
	}
	if i < len(s) && s[i] == '/' {
		j := bytes.IndexByte(s[i:], ',')
		if j < 0 {
			p.nsp = string(s[i:])
			i = len(s)
		} else {
			p.nsp = string(s[i : i+j])
			i += j + 1
		}
	}
	if i < len(s) && s[i] >= '0' && s[i] <= '9' {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j-i > 15 {
			return p, fmt.Errorf("%w: ack id too long", errPacket)
		}
		p.id, _ = strconv.ParseInt(string(s[i:j]), 10, 64)
		i = j
	}
	p.data = s[i:]
	if err := p.validate(); err != nil {
		return p, err
	}
	return p, nil
}

func (p *packet) validate() error {
	d := bytes.TrimSpace(p.data)
	switch p.typ {
	case typeConnect:
		if len(d) != 0 && d[0] != '{' {
			return fmt.Errorf("%w: CONNECT payload must be an object", errPacket)
		}
	case typeDisconnect:
		if len(d) != 0 {
			return fmt.Errorf("%w: DISCONNECT carries no payload", errPacket)
		}
	case typeEvent, typeBinaryEvent, typeAck, typeBinaryAck:
		if len(d) == 0 || d[0] != '[' {
			return fmt.Errorf("%w: payload must be an array", errPacket)
		}
		if (p.typ == typeAck || p.typ == typeBinaryAck) && p.id < 0 {
			return fmt.Errorf("%w: ACK without id", errPacket)
		}
	case typeConnectError:
		return fmt.Errorf("%w: CONNECT_ERROR is server-to-client only", errPacket)
	}
	if len(d) != 0 && !json.Valid(d) {
		return fmt.Errorf("%w: invalid JSON", errPacket)
	}
	return nil
}

// args decodes an EVENT or ACK payload into values, replacing binary
// placeholders with the attachments.
func (p *packet) args() ([]any, error) {
	if p.decoded {
		return p.vals, nil
	}
	var v []any
	if err := json.Unmarshal(p.data, &v); err != nil {
		// Valid JSON (decodePacket checked) that does not fit Go's values:
		// a number beyond float64 such as 1e400, which JavaScript reads as
		// Infinity. Decoded again, such numbers stay json.Number.
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("%w: %v", errPacket, err)
		}
		if v, err = decodeWide(p.data); err != nil {
			return nil, fmt.Errorf("%w: %v", errPacket, err)
		}
	}
	if len(p.bins) > 0 {
		for i := range v {
			r, err := p.resolve(v[i])
			if err != nil {
				return nil, err
			}
			v[i] = r
		}
	}
	return v, nil
}

// decodeWide decodes a JSON array whose numbers may not fit a float64:
// those stay json.Number (they encode back unchanged), the others become
// float64 as usual. The slow path of args.
func decodeWide(data []byte) ([]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v []any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	for i := range v {
		v[i] = narrowNumbers(v[i])
	}
	return v, nil
}

func narrowNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if f, err := t.Float64(); err == nil {
			return f
		}
	case []any:
		for i, e := range t {
			t[i] = narrowNumbers(e)
		}
	case map[string]any:
		for k, e := range t {
			t[k] = narrowNumbers(e)
		}
	}
	return v
}

func (p *packet) resolve(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		if ph, ok := t["_placeholder"].(bool); ok && ph {
			n, ok := t["num"].(float64)
			if !ok || n < 0 || int(n) >= len(p.bins) || n != float64(int(n)) {
				return nil, fmt.Errorf("%w: bad binary placeholder", errPacket)
			}
			return p.bins[int(n)], nil
		}
		for k, e := range t {
			r, err := p.resolve(e)
			if err != nil {
				return nil, err
			}
			t[k] = r
		}
	case []any:
		for i, e := range t {
			r, err := p.resolve(e)
			if err != nil {
				return nil, err
			}
			t[i] = r
		}
	}
	return v, nil
}

var encBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encodeData marshals values to JSON, taking []byte values out as
// attachments (replaced by placeholders). json.RawMessage passes through.
func encodeData(vals any) (data []byte, bins [][]byte, err error) {
	if adapter.HasBinary(vals) {
		vals = extractBinary(vals, &bins)
	}
	buf := encBufs.Get().(*bytes.Buffer)
	buf.Reset()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(vals); err != nil {
		encBufs.Put(buf)
		return nil, nil, err
	}
	out := bytes.TrimRight(buf.Bytes(), "\n")
	data = append([]byte(nil), out...)
	encBufs.Put(buf)
	return data, bins, nil
}

// extractBinary copies the containers on the way to each []byte, so the
// caller's values are not changed.
func extractBinary(v any, bins *[][]byte) any {
	switch t := v.(type) {
	case json.RawMessage:
		return t
	case []byte:
		*bins = append(*bins, t)
		return map[string]any{"_placeholder": true, "num": len(*bins) - 1}
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = extractBinary(e, bins)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = extractBinary(e, bins)
		}
		return out
	}
	return v
}

// encodePacket renders a socket.io packet: the text part and attachments.
// data is raw JSON (nil for none).
func encodePacket(typ int, nsp string, id int64, data []byte, nbins int) []byte {
	b := make([]byte, 0, len(data)+len(nsp)+16)
	b = append(b, '4') // Engine.IO message
	if nbins > 0 {
		if typ == typeEvent {
			typ = typeBinaryEvent
		} else if typ == typeAck {
			typ = typeBinaryAck
		}
	}
	b = append(b, byte('0'+typ))
	if nbins > 0 {
		b = strconv.AppendInt(b, int64(nbins), 10)
		b = append(b, '-')
	}
	if nsp != "/" && nsp != "" {
		b = append(b, nsp...)
		b = append(b, ',')
	}
	if id >= 0 {
		b = strconv.AppendInt(b, id, 10)
	}
	return append(b, data...)
}
