package clients

import "encoding/binary"

// Kind tells how a queued packet may be treated when its queue is full.
type Kind uint8

const (
	// Droppable packets (events) are subject to the queue policy.
	Droppable Kind = iota
	// Control packets (acks, CONNECT, DISCONNECT, errors, Engine.IO
	// heartbeats) are never dropped or coalesced; they may exceed the bounds.
	Control
	// Volatile packets are dropped when the queue is not empty and never
	// count toward a disconnect.
	Volatile
)

// Frame is one Engine.IO message. Text frames carry the Engine.IO packet
// type byte first ("4" + socket.io packet); binary frames carry raw bytes.
// The WebSocket frame header is computed once, so a broadcast is framed
// once and the same bytes are written to every recipient.
type Frame struct {
	Binary bool
	Data   []byte
	wsHdr  [10]byte
	wsLen  uint8
}

// NewFrame builds a frame; data must not be changed afterwards.
func NewFrame(binaryFrame bool, data []byte) Frame {
	f := Frame{Binary: binaryFrame, Data: data}
	op := byte(0x1) // text
	if binaryFrame {
		op = 0x2
	}
	f.wsHdr[0] = 0x80 | op // FIN
	n := len(data)
	switch {
	case n < 126:
		f.wsHdr[1] = byte(n)
		f.wsLen = 2
	case n <= 0xFFFF:
		f.wsHdr[1] = 126
		binary.BigEndian.PutUint16(f.wsHdr[2:], uint16(n))
		f.wsLen = 4
	default:
		f.wsHdr[1] = 127
		binary.BigEndian.PutUint64(f.wsHdr[2:], uint64(n))
		f.wsLen = 10
	}
	return f
}

// WSHeader returns the unmasked server-to-client WebSocket frame header.
func (f *Frame) WSHeader() []byte { return f.wsHdr[:f.wsLen] }

// Packet is one outbound socket.io (or Engine.IO) packet: one or more frames
// that must be written together (a binary event is a text frame followed by
// its attachments). A Packet is immutable once built and may be shared by
// every recipient of a broadcast.
type Packet struct {
	Frames []Frame
	Kind   Kind
	// Key, when set, lets the coalesce policy replace a queued packet with
	// the same key.
	Key string
	// Policy overrides the queue's policy for this packet (0: the queue's).
	Policy Policy
	size   int
}

// NewPacket builds a packet from frames.
func NewPacket(kind Kind, frames ...Frame) *Packet {
	p := &Packet{Frames: frames, Kind: kind}
	for i := range frames {
		p.size += len(frames[i].Data) + int(frames[i].wsLen)
	}
	return p
}

// Text builds a single-text-frame packet.
func Text(kind Kind, data []byte) *Packet { return NewPacket(kind, NewFrame(false, data)) }

// Size is the number of bytes the packet counts against a queue bound.
func (p *Packet) Size() int { return p.size }

// Message builds the packet of one Engine.IO text message ("4" + data).
func Message(kind Kind, data []byte) *Packet {
	return Text(kind, append([]byte("4"), data...))
}

// BinaryMessage builds the packet of one binary message.
func BinaryMessage(kind Kind, data []byte) *Packet {
	return NewPacket(kind, NewFrame(true, data))
}
