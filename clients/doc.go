// Package clients is roomcast's connection layer: Engine.IO 4 on its own.
// It holds the sessions, the WebSocket and long-polling transports and the
// upgrade between them, heartbeats, each connection's bounded send queue
// and its policies when full (disconnect, drop-oldest, coalesce), the
// writer that owns a connection's writes, and the connection close
// reasons. It knows nothing of Socket.IO.
//
// New(Config, Handler) makes a Server, an http.Handler for the Engine.IO
// path. The layer above implements Handler: Open is called for each new
// connection with its Conn (ID, Send, Close, Transport) and returns the
// Receiver of its messages (Text, Binary, and Close exactly once). A
// Server also looks up an open connection by id (Conn), counts them (Len),
// and shuts down with Drain, Wait and Close. An echo server is a few lines
// (see ExampleServer).
//
// A Queue is safe for concurrent use. Push never blocks: it runs inside
// broadcast loops and backplane receive loops. Exactly one writer drains a
// queue at a time; the queue itself tracks whether a writer is active and
// asks for one (through its wake function) when data arrives at an idle
// queue (writer.go tells who writes when). Under the disconnect policy the
// first refused push cuts the queue: every later push is refused too, so
// what is delivered is a gap-free prefix of the stream.
//
// Each connection has one reader at a time (the WebSocket read loop, or
// the polling POST handler, serialised, across the upgrade too), so a
// Receiver's methods are called in order, one at a time.
package clients
