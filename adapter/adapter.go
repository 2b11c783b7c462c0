package adapter

import (
	"context"
	"errors"
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
	// Timeout bounds the wait for acks of a broadcast with ack.
	Timeout time.Duration
}

// Socket.IO packet types, the values of Message.Type (and of "type" in the
// packet objects the Node adapters exchange).
const (
	PacketConnect      = 0
	PacketDisconnect   = 1
	PacketEvent        = 2
	PacketAck          = 3
	PacketConnectError = 4
	PacketBinaryEvent  = 5
	PacketBinaryAck    = 6
)

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
	// AckID is the id recipients answer to, or -1. For a broadcast with
	// ack, the adapter sets it (Receiver.NextAckID) before delivering.
	AckID int64
	// OnAck, on a broadcast with ack, receives each recipient's answer.
	OnAck func(args []any)
	// AckTimeout bounds how long a recipient's answer is awaited.
	AckTimeout time.Duration
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

// Receiver is the namespace side of an adapter: what the adapter asks of
// the local sockets.
type Receiver interface {
	// Deliver hands msg to the local socket with this id.
	Deliver(id string, msg *Message)
	// Disconnect disconnects a local socket (closing its connection with
	// close).
	Disconnect(id string, close bool)
	// Describe tells what fetchSockets reports of a local socket.
	Describe(id string) (SocketInfo, bool)
	// ServerSideEmit hands an event from another node to the namespace's
	// server-side handlers; ack is nil when the sender wants no answer.
	ServerSideEmit(data []any, ack func(any))
	// NextAckID returns a fresh ack id of the namespace.
	NextAckID() int64
}

// SocketInfo describes a socket, local or on another node, as
// fetchSockets returns it (the JSON shape of the Node adapters).
type SocketInfo struct {
	ID        string         `json:"id" msgpack:"id"`
	Handshake map[string]any `json:"handshake" msgpack:"handshake"`
	Rooms     []string       `json:"rooms" msgpack:"rooms"`
	Data      any            `json:"data" msgpack:"data"`
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

	aged uint64 // Memory: its newest offset dropped by age when the session was saved
}

// Errors of the publishing methods of an Adapter. Each means the operation
// was applied to this node's sockets but not handed to the other nodes.
var (
	// ErrPublishQueueFull: the backplane's bounded publish queue is full
	// (the backplane is slower than the emitters).
	ErrPublishQueueFull = errors.New("backplane: publish queue full")
	// ErrBackplaneDown: the backplane knows at once that it cannot publish
	// (its connection is down).
	ErrBackplaneDown = errors.New("backplane: not connected")
	// ErrClosed: the backplane was closed.
	ErrClosed = errors.New("backplane: closed")
)

// Adapter is a namespace's room registry and broadcaster.
// Flusher is implemented by the adapters that publish asynchronously (every
// cross-node one). Flush returns once everything the adapter handed to its
// backplane before the call has been published or has failed, or when ctx
// ends; an error means the marker could not be queued (ErrPublishQueueFull,
// ErrBackplaneDown, ErrClosed) or ctx ended first. A caller that publishes
// through several nodes in turn flushes after each publish to keep its order
// across them (the HTTP API does).
type Flusher interface {
	Flush(ctx context.Context) error
}

type Adapter interface {
	// Join adds the socket to rooms; Leave removes it from one; LeaveAll
	// removes it from every room.
	Join(id string, rooms ...string)
	Leave(id, room string)
	LeaveAll(id string)
	// Rooms lists the rooms of a local socket.
	Rooms(id string) []string
	// Broadcast delivers msg to every matching socket.
	//
	// Broadcast, BroadcastWithAck, AddSockets, DelSockets and
	// DisconnectSockets act on the local sockets whatever happens; a
	// non-nil error (ErrPublishQueueFull, ErrBackplaneDown, ErrClosed)
	// means the operation was not handed to the other nodes. A nil error
	// means it was queued: the in-tree backplanes publish asynchronously,
	// and a later failure is logged and counted.
	Broadcast(msg *Message, opts Options) error
	// BroadcastWithAck delivers msg, whose OnAck receives the answers; it
	// calls onCount once per node with the number of recipients there.
	BroadcastWithAck(msg *Message, opts Options, onCount func(n int)) error
	// Sockets lists the ids of the local sockets matching opts.
	Sockets(opts Options) []string
	// AddSockets and DelSockets make the matching sockets join or leave
	// rooms; DisconnectSockets disconnects them. On every node unless
	// opts.Local.
	AddSockets(opts Options, rooms []string) error
	DelSockets(opts Options, rooms []string) error
	DisconnectSockets(opts Options, close bool) error
	// FetchSockets describes the matching sockets of every node. On a
	// timeout it returns what arrived with an error.
	FetchSockets(ctx context.Context, opts Options) ([]SocketInfo, error)
	// ServerSideEmit sends data ([event, args...]) to the other nodes'
	// namespaces; withAck waits for one answer per node (bounded by ctx and
	// the adapter's request timeout).
	ServerSideEmit(ctx context.Context, data []any, withAck bool) ([]any, error)
	// ServerCount is the number of live nodes (1 for a single node).
	ServerCount(ctx context.Context) int
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
