package wire

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// PacketType is the Socket.IO packet type.
type PacketType byte

// Socket.IO protocol 5 packet types.
const (
	Connect PacketType = iota
	Disconnect
	Event
	Ack
	ConnectError
	BinaryEvent
	BinaryAck
)

// NoID is Packet.ID of a packet without an ack id.
const NoID int64 = -1

// maxIDDigits bounds an ack id so that it fits an int64.
const maxIDDigits = 18

// maxAttachmentDigits bounds the attachment count of a binary packet.
const maxAttachmentDigits = 6

// Packet is a decoded Socket.IO packet. Data aliases the decoded input.
type Packet struct {
	Type        PacketType
	Attachments int    // binary packets only
	Nsp         string // "/" when the packet names none
	ID          int64  // NoID when absent
	Data        []byte // raw JSON, empty when absent
}

// Decode parses a Socket.IO packet: the data of an Engine.IO message packet,
// "<type>[<attachments>-][<nsp>,][<id>][<json>]". It checks the payload's
// outer shape per type (as socket.io-parser's isPayloadValid does) without
// validating the whole JSON. Events and acks must carry an array.
func Decode(b []byte) (Packet, error) {
	if len(b) == 0 {
		return Packet{}, ErrEmpty
	}
	if b[0] < '0' || b[0] > '6' {
		return Packet{}, ErrPacketType
	}
	p := Packet{Type: PacketType(b[0] - '0'), Nsp: "/", ID: NoID}
	i := 1
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		j := digits(b, i)
		if j == i || j-i > maxAttachmentDigits || j >= len(b) || b[j] != '-' {
			return Packet{}, ErrAttachments
		}
		n, _ := strconv.Atoi(string(b[i:j]))
		if n < 1 {
			return Packet{}, ErrAttachments
		}
		p.Attachments = n
		i = j + 1
	}
	if i < len(b) && b[i] == '/' {
		j := i
		for j < len(b) && b[j] != ',' {
			j++
		}
		if nsp := b[i:j]; len(nsp) == 1 {
			p.Nsp = "/"
		} else {
			p.Nsp = string(nsp)
		}
		i = j
		if i < len(b) {
			i++ // the comma
		}
	}
	if j := digits(b, i); j > i {
		if j-i > maxIDDigits {
			return Packet{}, ErrID
		}
		id, err := strconv.ParseInt(string(b[i:j]), 10, 64)
		if err != nil {
			return Packet{}, ErrID
		}
		p.ID = id
		i = j
	}
	p.Data = b[i:]
	if !payloadShapeOK(p.Type, p.Data) {
		return Packet{}, ErrPayload
	}
	return p, nil
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func payloadShapeOK(t PacketType, d []byte) bool {
	switch t {
	case Connect:
		return len(d) == 0 || enclosed(d, '{', '}')
	case Disconnect:
		return len(d) == 0
	case ConnectError:
		return enclosed(d, '{', '}') || enclosed(d, '"', '"')
	case Event, BinaryEvent:
		return enclosed(d, '[', ']') && len(d) > 2
	case Ack, BinaryAck:
		return enclosed(d, '[', ']')
	}
	return false
}

func enclosed(d []byte, open, closing byte) bool {
	return len(d) >= 2 && d[0] == open && d[len(d)-1] == closing
}

// AppendHeader appends a Socket.IO packet header without attachments: the
// type, the namespace unless it is "/" or empty, and the ack id unless it is
// negative. The caller appends the JSON payload.
func AppendHeader(dst []byte, t PacketType, nsp string, id int64) []byte {
	dst = append(dst, byte('0'+t))
	if nsp != "" && nsp != "/" {
		dst = append(dst, nsp...)
		dst = append(dst, ',')
	}
	if id >= 0 {
		dst = strconv.AppendInt(dst, id, 10)
	}
	return dst
}

// Append appends the whole packet p, attachments count included.
func Append(dst []byte, p Packet) []byte {
	if (p.Type == BinaryEvent || p.Type == BinaryAck) && p.Attachments > 0 {
		dst = append(dst, byte('0'+p.Type))
		dst = strconv.AppendInt(dst, int64(p.Attachments), 10)
		dst = append(dst, '-')
		hdr := AppendHeader(nil, p.Type, p.Nsp, p.ID)
		dst = append(dst, hdr[1:]...)
	} else {
		dst = AppendHeader(dst, p.Type, p.Nsp, p.ID)
	}
	return append(dst, p.Data...)
}

// AppendEvent appends the event array ["event",arg,...]; each arg must be
// valid JSON.
func AppendEvent(dst []byte, event string, args ...[]byte) []byte {
	dst = append(dst, '[')
	dst = AppendString(dst, event)
	for _, a := range args {
		dst = append(dst, ',')
		dst = append(dst, a...)
	}
	return append(dst, ']')
}

// AppendString appends s as a JSON string.
func AppendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s) // a string always marshals
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// EventName splits the data of an event packet, ["name",arg1,...], into the
// event name and the raw JSON of its arguments ("arg1,..."; empty when there
// are none). A numeric first element is returned as its digits. The name
// aliases data unless it contains escapes.
func EventName(data []byte) (name, args []byte, err error) {
	if !enclosed(data, '[', ']') {
		return nil, nil, ErrPayload
	}
	body := data[1 : len(data)-1]
	i := skipSpace(body, 0)
	if i >= len(body) {
		return nil, nil, ErrPayload
	}
	var end int
	switch c := body[i]; {
	case c == '"':
		escaped := false
		end = -1
		for j := i + 1; j < len(body); j++ {
			if body[j] == '\\' {
				escaped = true
				j++
				continue
			}
			if body[j] == '"' {
				end = j + 1
				break
			}
		}
		if end < 0 {
			return nil, nil, ErrPayload
		}
		if escaped {
			var s string
			if err := json.Unmarshal(body[i:end], &s); err != nil {
				return nil, nil, ErrPayload
			}
			name = []byte(s)
		} else {
			name = body[i+1 : end-1]
		}
	case c == '-' || (c >= '0' && c <= '9'):
		end = i + 1
		for end < len(body) && (body[end] == '.' || body[end] == 'e' || body[end] == 'E' ||
			body[end] == '+' || body[end] == '-' || (body[end] >= '0' && body[end] <= '9')) {
			end++
		}
		name = body[i:end]
	default:
		return nil, nil, ErrPayload
	}
	j := skipSpace(body, end)
	if j == len(body) {
		return name, nil, nil
	}
	if body[j] != ',' {
		return nil, nil, ErrPayload
	}
	return name, body[j+1:], nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
