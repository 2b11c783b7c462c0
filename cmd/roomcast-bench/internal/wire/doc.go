// Package wire is the small Engine.IO 4 / Socket.IO 5 codec of roomcast-bench.
//
// It covers what a WebSocket-only client needs: one Engine.IO packet per
// WebSocket text frame (DecodeEngine, the open handshake DecodeOpen) and the
// Socket.IO packet carried by an Engine.IO message (Decode, AppendHeader,
// AppendEvent, EventName). Decoding never copies: returned slices alias the
// input. Binary attachments are recognised in headers but not reassembled.
//
// All functions are pure and safe for concurrent use.
package wire
