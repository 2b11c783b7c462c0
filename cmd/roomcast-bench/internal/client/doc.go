// Package client is the Socket.IO client of roomcast-bench: WebSocket-only
// Engine.IO 4 / Socket.IO 5, one namespace per connection, built to hold
// tens of thousands of connections in one process.
//
// A Dialer (NewDialer) holds the options shared by all connections; Dial
// performs the WebSocket handshake, reads the Engine.IO open packet and
// completes the Socket.IO CONNECT before returning. The caller then runs
// Conn.ReadLoop on one goroutine per connection: it answers pings and calls
// the connection's Handler for every event and ack of the namespace. There is
// no other goroutine per connection and none per message.
//
// Concurrency: Emit, EmitAck, StopReading, ResumeReading and Close are safe
// for concurrent use, including from inside Handler callbacks (which run on
// the reader goroutine). Handler callbacks must not block. Every write has a
// deadline (Options.WriteTimeout) and the reader gives up when the server
// sends no ping for pingInterval+pingTimeout.
package client
