// Package adapter holds the backplanes of roomcast: the room registry of a
// namespace and the delivery of broadcasts to its sockets, locally (Memory,
// the default) or across nodes.
//
// An adapter knows nothing of sockets beyond their ids: it resolves the
// recipients of a broadcast and hands each id, with the message, to the
// Receiver given at construction. Adapters are safe for concurrent use;
// Receiver.Deliver is called from the broadcasting goroutine (or the
// backplane's receive loop) and must not block.
//
// Backplanes: Redis pub/sub (RedisNode), Redis sharded pub/sub
// (ShardedNode), Redis streams (StreamsNode), NATS (NATSNode), NATS
// JetStream (JetStreamNode) and Kafka (KafkaNode). All but the first speak the cluster protocol
// (cluster.go) over their own link and receive through one dispatcher
// (routes); all share one cross-node request tracker (requests.go) and one
// ordered publisher (publisher.go). OffsetAfter orders the recovery offsets
// of all of them.
//
// Nothing read from a backplane is trusted: every message decodes through
// one pure function per kind (decodeBroadcast, decodeRequest,
// decodeClusterMsg, decodeStreamEntry, decodeKafkaSession) within fixed limits on size,
// nesting and number of values; a message that does not is skipped and
// reported to the node's OnError as op "decode". Emitter publishes from outside the
// cluster in the format of each backplane.
//
// Publishing never blocks the caller. Broadcast, BroadcastWithAck,
// AddSockets, DelSockets, DisconnectSockets and ServerSideEmit act on the
// local sockets and queue the publish; they return ErrPublishQueueFull when
// the bounded queue is full, ErrBackplaneDown when the backplane knows at
// once that it cannot publish (NATS, JetStream and Kafka while disconnected), and
// ErrClosed after Close. A publish that fails after it was queued is
// retried where the backplane can, then logged and counted (OnError, op
// "publish").
package adapter
