// Package namespaces is the Socket.IO layer of roomcast and its public API:
// namespaces (static, or created on demand for names matching a pattern),
// sockets, rooms, acks, connect and per-event middleware, handlers and the
// broadcast operators (To, Except, Volatile, Local, Timeout, Coalesce).
//
// Concurrency: a Server, its Namespaces, Sockets and Broadcasts are safe for
// concurrent use. The packets of one connection are handled in order, on one
// goroutine: handlers and middleware run there and must not block for long
// (hand slow work to another goroutine). Emits never block; emits with ack
// take a context and block only in EmitWithAck.
package namespaces
