// Package namespaces is the Socket.IO layer of roomcast and its public API:
// namespaces (static, or created on demand for names matching a pattern),
// sockets, rooms, acks, connect and per-event middleware, handlers and the
// broadcast operators (To, Except, Volatile, Local, Timeout, Coalesce).
//
// Entry points: New(Config) makes a Server; Server.Of a Namespace;
// Namespace.OnConnection receives each Socket, whose On registers event
// handlers (an *Event: Args, Raw, Bind, Ack). Socket.Emit, Socket.Timeout
// and Socket.Volatile (an Emitter) emit to one socket; Namespace.To and
// Socket.To start a Broadcast. Errors are the sentinel Err values of
// errors.go, and those of the backplane (adapter.ErrPublishQueueFull,
// adapter.ErrBackplaneDown, adapter.ErrClosed) from a broadcast's Emit,
// Join, Leave and Disconnect: the local sockets were served, the other
// nodes were not.
//
// Concurrency: a Server, its Namespaces, Sockets and Broadcasts are safe for
// concurrent use. The packets of one connection are handled in order, on one
// goroutine: handlers and middleware run there and must not block for long
// (hand slow work to another goroutine). Emits never block; emits with ack
// take a context and block only in EmitWithAck, never past the ack timeout
// (Config.AckTimeout, 10 s by default) nor past the disconnect of the
// socket waited for. Socket.Context ends when the socket disconnects.
package namespaces
