// Package clients holds what roomcast keeps per connection: the bounded send
// queue every outbound packet goes through, its policies when full
// (disconnect, drop-oldest, coalesce), the disconnect reasons, and the
// pending-ack registry with timeouts.
//
// A Queue is safe for concurrent use. Push never blocks: it runs inside
// broadcast loops and backplane receive loops. Exactly one writer drains a
// queue at a time; the queue itself tracks whether a writer is active and
// asks for one (through its wake function) when data arrives at an idle
// queue. Under the disconnect policy the first refused push cuts the
// queue: every later push is refused too, so what is delivered is a
// gap-free prefix of the stream.
package clients
