package wire

import (
	"encoding/json"
	"errors"
	"fmt"
)

// EngineType is the Engine.IO packet type, the first byte of a text frame.
type EngineType byte

// Engine.IO protocol 4 packet types.
const (
	EngineOpen    EngineType = '0'
	EngineClose   EngineType = '1'
	EnginePing    EngineType = '2'
	EnginePong    EngineType = '3'
	EngineMessage EngineType = '4'
	EngineUpgrade EngineType = '5'
	EngineNoop    EngineType = '6'
)

// Errors returned by the decoders.
var (
	ErrEmpty       = errors.New("wire: empty packet")
	ErrEngineType  = errors.New("wire: unknown engine.io packet type")
	ErrPacketType  = errors.New("wire: unknown socket.io packet type")
	ErrAttachments = errors.New("wire: illegal attachments")
	ErrID          = errors.New("wire: illegal ack id")
	ErrPayload     = errors.New("wire: invalid payload")
	ErrOpen        = errors.New("wire: invalid open packet")
)

// DecodeEngine splits a text frame into its Engine.IO type and data.
func DecodeEngine(frame []byte) (EngineType, []byte, error) {
	if len(frame) == 0 {
		return 0, nil, ErrEmpty
	}
	t := EngineType(frame[0])
	if t < EngineOpen || t > EngineNoop {
		return 0, nil, ErrEngineType
	}
	return t, frame[1:], nil
}

// AppendEngine appends an Engine.IO packet of type t carrying data.
func AppendEngine(dst []byte, t EngineType, data []byte) []byte {
	dst = append(dst, byte(t))
	return append(dst, data...)
}

// Open is the data of the Engine.IO open packet. Durations are milliseconds,
// as on the wire.
type Open struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// DecodeOpen parses the data of an open packet (the JSON after the '0').
func DecodeOpen(data []byte) (Open, error) {
	var o Open
	if err := json.Unmarshal(data, &o); err != nil {
		return Open{}, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	if o.SID == "" || o.PingInterval <= 0 || o.PingTimeout <= 0 {
		return Open{}, fmt.Errorf("%w: missing sid, pingInterval or pingTimeout", ErrOpen)
	}
	return o, nil
}
