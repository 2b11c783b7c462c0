package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
)

// emitterUID is the uid emitters publish under, as Node's
// @socket.io/redis-emitter does.
const emitterUID = "emitter"

// Backplanes an Emitter can publish through: the values of
// EmitterConfig.Backplane (and of roomcast's --adapter).
const (
	BackplaneRedis   = "redis"
	BackplaneSharded = "redis-sharded"
	BackplaneStreams = "redis-streams"
	BackplaneNATS    = "nats"
	// BackplaneJetStream: broadcasts and room operations go into the
	// stream (so nodes cut off catch up, and recovery replays them).
	BackplaneJetStream = "nats-jetstream"
	// BackplaneKafka: broadcasts and room operations go into the
	// namespace's topic, server-side emits into the control topic.
	BackplaneKafka = "kafka"
)

// ErrBackplane refuses a backplane an Emitter cannot publish through.
var ErrBackplane = errors.New("unknown backplane")

// EmitterConfig configures an Emitter.
type EmitterConfig struct {
	// Client publishes. Required for the Redis backplanes.
	Client redis.UniversalClient
	// NATS publishes. Required for the NATS backplanes.
	NATS *nats.Conn
	// Kafka publishes. Required for BackplaneKafka. Its records must be
	// able to go to partition 0 (kgo.RecordPartitioner(kgo.ManualPartitioner())
	// or the default partitioner on the one-partition topics).
	Kafka *kgo.Client
	// Backplane is the adapter of the nodes: BackplaneRedis (pub/sub),
	// BackplaneSharded or BackplaneStreams. "": BackplaneRedis.
	Backplane string
	// Prefix of the channel names. "": DefaultRedisPrefix ("socket.io"),
	// or DefaultNATSPrefix ("roomcast") for the NATS backplanes, or
	// DefaultKafkaPrefix ("roomcast", the topic prefix) for Kafka.
	Prefix string
	// Stream is the stream's key (BackplaneStreams). "": DefaultStreamName.
	// (BackplaneJetStream publishes on the stream's subjects, which follow
	// from Prefix.)
	Stream string
	// MaxLen trims the stream, approximately (BackplaneStreams). 0:
	// DefaultStreamMaxLen.
	MaxLen int64
}

// Emitter publishes to the sockets of a Redis backplane from a process that
// holds no sockets (a worker, a cron job), in the wire format the nodes of
// that backplane read (for pub/sub, that of Node's @socket.io/redis-emitter),
// so roomcast and Node nodes both obey it. Its methods return a new
// Emitter; an Emitter may be reused and shared.
type Emitter struct {
	client    redis.UniversalClient
	nc        *nats.Conn
	js        jetstream.JetStream
	kafka     *kgo.Client
	backplane string
	prefix    string
	stream    string
	maxLen    int64
	nsp       string
	rooms     []string
	except    []string
	volatile  bool
}

// NewEmitter makes an emitter for the Redis pub/sub backplane on the main
// namespace. prefix "": "socket.io".
func NewEmitter(client redis.UniversalClient, prefix string) *Emitter {
	e, _ := NewEmitterWith(EmitterConfig{Client: client, Prefix: prefix})
	return e
}

// NewEmitterWith makes an emitter for the backplane of cfg on the main
// namespace; an unknown backplane is ErrBackplane.
func NewEmitterWith(cfg EmitterConfig) (*Emitter, error) {
	switch cfg.Backplane {
	case "":
		cfg.Backplane = BackplaneRedis
	case BackplaneRedis, BackplaneSharded, BackplaneStreams:
	case BackplaneNATS, BackplaneJetStream:
		if cfg.NATS == nil {
			return nil, fmt.Errorf("%w %q: EmitterConfig.NATS is required", ErrBackplane, cfg.Backplane)
		}
		if cfg.Prefix == "" {
			cfg.Prefix = DefaultNATSPrefix
		}
	case BackplaneKafka:
		if cfg.Kafka == nil {
			return nil, fmt.Errorf("%w %q: EmitterConfig.Kafka is required", ErrBackplane, cfg.Backplane)
		}
		if cfg.Prefix == "" {
			cfg.Prefix = DefaultKafkaPrefix
		}
	default:
		return nil, fmt.Errorf("%w %q: want %s, %s, %s, %s, %s or %s", ErrBackplane, cfg.Backplane,
			BackplaneRedis, BackplaneSharded, BackplaneStreams, BackplaneNATS, BackplaneJetStream, BackplaneKafka)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRedisPrefix
	}
	var js jetstream.JetStream
	if cfg.Backplane == BackplaneJetStream {
		var err error
		if js, err = jetstream.New(cfg.NATS); err != nil {
			return nil, err
		}
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStreamName
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultStreamMaxLen
	}
	return &Emitter{client: cfg.Client, nc: cfg.NATS, js: js, kafka: cfg.Kafka, backplane: cfg.Backplane, prefix: cfg.Prefix,
		stream: cfg.Stream, maxLen: cfg.MaxLen, nsp: "/"}, nil
}

func (e *Emitter) clone() *Emitter {
	c := *e
	c.rooms = slices.Clone(e.rooms)
	c.except = slices.Clone(e.except)
	return &c
}

// Of selects a namespace.
func (e *Emitter) Of(nsp string) *Emitter {
	c := e.clone()
	if nsp == "" || nsp[0] != '/' {
		nsp = "/" + nsp
	}
	c.nsp, c.rooms, c.except = nsp, nil, nil
	return c
}

// To adds rooms; Except skips sockets in rooms; Volatile lets busy sockets
// drop the emit.
func (e *Emitter) To(rooms ...string) *Emitter {
	c := e.clone()
	c.rooms = append(c.rooms, rooms...)
	return c
}
func (e *Emitter) Except(rooms ...string) *Emitter {
	c := e.clone()
	c.except = append(c.except, rooms...)
	return c
}
func (e *Emitter) Volatile() *Emitter { c := e.clone(); c.volatile = true; return c }

// reserved are the event names socket.io clients keep for themselves.
var reserved = map[string]bool{"connect": true, "connect_error": true, "disconnect": true,
	"disconnecting": true, "newListener": true, "removeListener": true}

// ErrEventName refuses an empty or reserved event name.
var ErrEventName = errors.New("invalid event name")

// Emit publishes event with args to the selected sockets of every node.
func (e *Emitter) Emit(ctx context.Context, event string, args ...any) error {
	if event == "" || reserved[event] {
		return ErrEventName
	}
	packet := packetOf(e.nsp, &Message{Type: PacketEvent, Data: append([]any{event}, args...), AckID: -1})
	opts := toWire(Options{Rooms: e.rooms, Except: e.except, Volatile: e.volatile})
	if e.backplane != BackplaneRedis {
		return e.publish(ctx, cmBroadcast, map[string]any{"packet": packet, "opts": opts})
	}
	b, err := encodeMsgpack([]any{emitterUID, packet, opts})
	if err != nil {
		return err
	}
	ch := e.prefix + "#" + e.nsp + "#"
	if len(e.rooms) == 1 {
		ch += e.rooms[0] + "#"
	}
	return e.client.Publish(ctx, ch, b).Err()
}

// publish sends a message of the cluster protocol (sharded, streams,
// NATS, JetStream).
func (e *Emitter) publish(ctx context.Context, typ int, data map[string]any) error {
	m := clusterMsg{UID: emitterUID, Nsp: e.nsp, Type: typ, Data: data}
	switch e.backplane {
	case BackplaneNATS:
		if err := natsPublish(e.nc, e.prefix, m); err != nil {
			return err
		}
		return e.flush(ctx)
	case BackplaneJetStream:
		if _, err := jsPublish(ctx, e.js, e.nc, e.prefix, e.prefix+".js", m); err != nil {
			return err
		}
		return e.flush(ctx)
	case BackplaneKafka:
		// Synchronous: the record is in Kafka when Emit returns.
		produce := func(ctx context.Context, r *kgo.Record) (int64, error) { return kafkaProduce(ctx, e.kafka, r) }
		_, err := kafkaPublish(ctx, produce, kafkaControlTopic(e.prefix), kafkaNspTopic(e.prefix, e.nsp), m)
		return err
	}
	channel := e.prefix + "#" + e.nsp + "#"
	if e.backplane == BackplaneSharded {
		return shardedPublish(ctx, e.client, channel, m)
	}
	_, err := streamsPublish(ctx, e.client, e.stream, e.maxLen, channel, m)
	return err
}

// flush waits until NATS has the publications (bounded by ctx, or by 10 s
// when ctx has no deadline).
func (e *Emitter) flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		return e.nc.FlushTimeout(10 * time.Second)
	}
	return e.nc.FlushWithContext(ctx)
}

// request sends a room operation to every node: typ is its type in the
// pub/sub protocol, cm in the cluster protocol.
func (e *Emitter) request(ctx context.Context, typ, cm int, v map[string]any) error {
	opts := map[string]any{"rooms": orEmpty(e.rooms), "except": orEmpty(e.except)}
	if e.backplane != BackplaneRedis {
		v["opts"] = opts
		return e.publish(ctx, cm, v)
	}
	v["type"], v["opts"] = typ, opts
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.client.Publish(ctx, e.prefix+"-request#"+e.nsp+"#", b).Err()
}

// SocketsJoin makes the selected sockets join rooms.
func (e *Emitter) SocketsJoin(ctx context.Context, rooms ...string) error {
	return e.request(ctx, reqRemoteJoin, cmSocketsJoin, map[string]any{"rooms": rooms})
}

// SocketsLeave makes the selected sockets leave rooms.
func (e *Emitter) SocketsLeave(ctx context.Context, rooms ...string) error {
	return e.request(ctx, reqRemoteLeave, cmSocketsLeave, map[string]any{"rooms": rooms})
}

// DisconnectSockets disconnects the selected sockets.
func (e *Emitter) DisconnectSockets(ctx context.Context, close bool) error {
	return e.request(ctx, reqRemoteDisconnect, cmDisconnectSockets, map[string]any{"close": close})
}

// ServerSideEmit sends an event to every node's namespace handlers.
func (e *Emitter) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	if event == "" || reserved[event] {
		return ErrEventName
	}
	data := plain(append([]any{event}, args...))
	if e.backplane != BackplaneRedis {
		return e.publish(ctx, cmServerSideEmit, map[string]any{"packet": data})
	}
	b, err := json.Marshal(map[string]any{"uid": emitterUID, "type": reqServerSideEmit, "data": data})
	if err != nil {
		return err
	}
	return e.client.Publish(ctx, e.prefix+"-request#"+e.nsp+"#", b).Err()
}
