// Package adapter holds the backplanes of roomcast: the room registry of a
// namespace and the delivery of broadcasts to its sockets, locally (Memory,
// the default) or across nodes.
//
// An adapter knows nothing of sockets beyond their ids: it resolves the
// recipients of a broadcast and hands each id, with the message, to the
// Receiver given at construction. Adapters are safe for concurrent use;
// Receiver.Deliver is called from the broadcasting goroutine (or the
// backplane's receive loop) and must not block.
package adapter
