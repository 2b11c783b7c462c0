package server

import (
	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/namespaces"
)

// The Socket.IO layer's types and errors, under this package's name: a
// program that embeds roomcast and writes handlers imports only server.
// Each is the namespaces (or adapter) item of the same name; see its
// documentation there.
type (
	Socket            = namespaces.Socket
	Event             = namespaces.Event
	EventHandler      = namespaces.EventHandler
	Namespace         = namespaces.Namespace
	Broadcast         = namespaces.Broadcast
	Emitter           = namespaces.Emitter
	Handshake         = namespaces.Handshake
	Ack               = namespaces.Ack
	ConnectError      = namespaces.ConnectError
	ConnectMiddleware = namespaces.ConnectMiddleware
	EventMiddleware   = namespaces.EventMiddleware
	SocketInfo        = adapter.SocketInfo
	// DisconnectReason is the reason a Socket.OnDisconnect handler gets.
	DisconnectReason = namespaces.Reason
)

// Errors of the Socket.IO layer (see namespaces).
var (
	ErrAckTimeout         = namespaces.ErrAckTimeout
	ErrSocketDisconnected = namespaces.ErrSocketDisconnected
	ErrEventName          = namespaces.ErrEventName
	ErrEncode             = namespaces.ErrEncode
	ErrNoAck              = namespaces.ErrNoAck
	ErrAckSent            = namespaces.ErrAckSent
	ErrNoArgument         = namespaces.ErrNoArgument
)

// Errors of the backplane (see adapter): an Emit, Join, Leave or Disconnect
// returning one of them served the local sockets but did not reach the
// other nodes.
var (
	ErrPublishQueueFull = adapter.ErrPublishQueueFull
	ErrBackplaneDown    = adapter.ErrBackplaneDown
	ErrBackplaneClosed  = adapter.ErrClosed
)

// Bind decodes argument i of ev into a T, from the client's JSON text (see
// namespaces.Bind):
//
//	msg, err := server.Bind[Message](ev, 0)
func Bind[T any](ev *Event, i int) (T, error) { return namespaces.Bind[T](ev, i) }
