package adapter

import (
	"sync"
	"time"
)

// Options select the recipients of a broadcast.
type Options struct {
	Rooms    []string // empty: every socket of the namespace
	Except   []string // sockets in any of these rooms are skipped
	Local    bool     // do not forward to other nodes
	Volatile bool     // may be dropped; not stored for recovery
	// WithAck marks a broadcast whose recipients will answer; it is not
	// stored for recovery.
	WithAck bool
}

// Message is a packet to broadcast: the socket.io packet type and its data
// (an event name followed by arguments).
type Message struct {
	Type int
	Data []any
	// Offset is the recovery offset the adapter gave this message ("" when
	// it is not stored); it is appended to the data sent to clients.
	Offset string
	// Volatile and Key travel with the message: a volatile message may be
	// dropped by a busy socket; Key lets a full queue coalesce it.
	Volatile bool
	Key      string
	// AckID is the id recipients answer to, or -1.
	AckID int64
	// Local is state of the sending namespace for local recipients (for
	// instance an ack collector); it never crosses nodes.
	Local any

	once    sync.Once
	encoded any
}

// Encoded returns the receiver's encoding of m, computing it once with enc.
// It lets a broadcast be encoded once however many sockets receive it.
func (m *Message) Encoded(enc func(*Message) any) any {
	m.once.Do(func() { m.encoded = enc(m) })
	return m.encoded
}

// Receiver is the namespace side of an adapter.
type Receiver interface {
	// Deliver hands msg to the local socket with this id.
	Deliver(id string, msg *Message)
}

// Session is what a disconnected socket leaves for connection state
// recovery.
type Session struct {
	ID    string // the socket id
	PID   string // the private id the client presents to restore
	Rooms []string
	Data  any
	// Base is the offset of the last message stored before the socket
	// connected: a client that received no message yet restores from it.
	Base    string
	Expires time.Time
	// Missed holds, on restore, the messages sent to the session's rooms
	// after the offset the client presented, in order.
	Missed []*Message
}

// Adapter is a namespace's room registry and broadcaster.
type Adapter interface {
	// Join adds the socket to rooms; Leave removes it from one; LeaveAll
	// removes it from every room.
	Join(id string, rooms ...string)
	Leave(id, room string)
	LeaveAll(id string)
	// Rooms lists the rooms of a local socket.
	Rooms(id string) []string
	// Broadcast delivers msg to every matching socket.
	Broadcast(msg *Message, opts Options)
	// Sockets lists the ids of the local sockets matching opts.
	Sockets(opts Options) []string
	// SaveSession keeps a session for recovery. RestoreSession returns it,
	// with the messages missed since offset, or nil when it is unknown,
	// expired or the offset is too old; it calls attach with the session
	// before the socket rejoins its rooms, atomically with respect to
	// broadcasts, so a message is either among the missed ones or delivered
	// after attach (or both: the receiver drops the duplicate by Offset).
	SaveSession(s *Session)
	RestoreSession(pid, offset string, attach func(*Session)) *Session
	// Offset is the offset of the newest stored message ("" when none).
	Offset() string
	// Close releases the adapter's resources.
	Close() error
}
