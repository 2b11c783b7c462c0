package server

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/clients"
	"github.com/roomcast/roomcast/namespaces"
)

// Defaults of Config; the README and the flags use the same values.
const (
	DefaultAddr            = "127.0.0.1:3000"
	DefaultPath            = "/socket.io/"
	DefaultPingInterval    = 25 * time.Second
	DefaultPingTimeout     = 20 * time.Second
	DefaultMaxPayload      = 1_000_000
	DefaultUpgradeTimeout  = 10 * time.Second
	DefaultWriteTimeout    = 5 * time.Second
	DefaultReadTimeout     = 10 * time.Second
	DefaultIdleTimeout     = 60 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultConnectBurst    = 100
	DefaultMaxNamespaces   = namespaces.DefaultMaxDynamicNamespaces
	DefaultAckTimeout      = namespaces.DefaultAckTimeout
	DefaultConnectTimeout  = namespaces.DefaultConnectTimeout
	DefaultRecoveryWindow  = namespaces.DefaultRecoveryWindow
	// DefaultMaxRoomsPerSocket bounds the rooms a socket may be in for a
	// client's hub join to succeed (HubConfig.MaxRoomsPerSocket).
	DefaultMaxRoomsPerSocket = 1000
)

// Config configures a Server. The zero value is a working Socket.IO server
// on DefaultAddr with the memory adapter and the reference server's
// defaults: no connection state recovery, no hub (set Hub.Enabled for the
// built-in join/leave/publish protocol); `roomcast serve` turns both on.
type Config struct {
	// Addr is the listen address. "": DefaultAddr.
	Addr string
	// Path is the Engine.IO path. "": DefaultPath.
	Path string
	// PingInterval and PingTimeout drive heartbeats. 0: defaults (25 s, 20 s).
	PingInterval time.Duration
	PingTimeout  time.Duration
	// MaxPayload bounds a message, a polling body and a socket.io packet
	// with its binary attachments, bytes. 0: 1,000,000.
	MaxPayload int
	// UpgradeTimeout bounds a polling → WebSocket upgrade. 0: 10 s.
	UpgradeTimeout time.Duration
	// CORSOrigins lists allowed origins (exact "scheme://host[:port]"); a
	// listed origin gets credentialed CORS (reflected, with
	// Access-Control-Allow-Credentials). Empty or "*": any origin, answered
	// with Access-Control-Allow-Origin "*" and no credentials. Other origins
	// get 403.
	CORSOrigins []string

	// RecoveryWindow: connection state recovery window. 0 or negative:
	// off, as in the reference server; namespaces.DefaultRecoveryWindow (2
	// minutes) is the usual value to turn it on.
	RecoveryWindow time.Duration
	// RecoveryMaxBytes bounds the recovery history each namespace keeps on
	// this node (memory, redis and redis-sharded adapters), bytes of
	// payload (estimated). 0: adapter.DefaultMaxHistoryBytes (64 MiB);
	// negative: no byte bound (at most adapter.MaxHistory broadcasts
	// still). A client whose offset fell to the bound gets a fresh session.
	RecoveryMaxBytes int64
	// AckTimeout is the default timeout of server emits with ack (Timeout
	// sets one per emit). 0: DefaultAckTimeout (10 s); negative: none (a
	// wait still ends when its socket disconnects or its context ends).
	AckTimeout time.Duration
	// ConnectTimeout closes a connection that joins no namespace (sends no
	// accepted CONNECT) in time. 0: DefaultConnectTimeout (45 s, the
	// reference server's); negative: never.
	ConnectTimeout time.Duration

	// Queue bounds each connection's send queue (defaults: 1 MiB, 1,024
	// packets, policy disconnect).
	Queue clients.QueueConfig
	// WriteTimeout closes a connection whose write takes longer (WebSocket
	// close 1008 "Send timeout"). 0: 5 s; negative: none.
	WriteTimeout time.Duration
	// ReadTimeout bounds reading the body of a polling or HTTP API POST,
	// from the end of its headers: a slower body gets 408 (and ends a
	// polling session). 0:
	// DefaultReadTimeout (10 s); negative: none. Long-poll GETs and
	// WebSocket connections are not affected.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive HTTP connection that waits longer for
	// its next request. 0: DefaultIdleTimeout (60 s); negative: none.
	// Hijacked (WebSocket) connections are not affected.
	IdleTimeout time.Duration

	// ConnectRate limits new Engine.IO sessions per second (excess: HTTP
	// 503). 0: unlimited. ConnectBurst: 0: 100.
	ConnectRate  float64
	ConnectBurst int

	// DrainWindow spreads the disconnects of a graceful shutdown over this
	// long, so clients do not all reconnect elsewhere at once. 0: at once.
	DrainWindow time.Duration

	// APIKey, when set, is the bearer key every /api/v1 route requires
	// (Authorization: Bearer <key>, scheme in any case). Without it the API
	// is open, and New (and Serve) refuse a non-loopback address unless
	// APIInsecure is set.
	APIKey string
	// APIInsecure serves the HTTP API without a key on any address (for an
	// API behind a proxy that authenticates). Default false.
	APIInsecure bool
	// Auth, when set, authenticates every CONNECT, on every namespace (the
	// hub's and the program's own), before the namespace's middleware.
	Auth Authenticator
	// Hub configures the built-in hub protocol (off unless Hub.Enabled).
	Hub HubConfig
	// MaxNamespaces bounds the dynamic namespaces (Hub.Namespaces) that
	// exist at once; a CONNECT that would make one more gets the
	// connect_error "too many namespaces". Empty ones are removed.
	// 0: DefaultMaxNamespaces (1,000); negative: no bound.
	MaxNamespaces int

	// Backplane selects the adapter: "" or "memory" (this node only),
	// "redis" (Redis pub/sub, wire-compatible with Node's
	// @socket.io/redis-adapter), "redis-sharded" (Redis 7 sharded pub/sub,
	// as its createShardedAdapter; Redis Cluster URLs work), "redis-streams"
	// (as @socket.io/redis-streams-adapter; recovery across nodes), "nats"
	// (NATS subjects per namespace and room), "nats-jetstream" (a
	// JetStream stream; recovery across nodes) or "kafka" (a topic per
	// namespace; recovery across nodes). The Redis ones need RedisURL, the
	// NATS ones NATSURL, kafka KafkaBrokers.
	Backplane string
	// RedisURL is the Redis of the backplane, e.g. redis://127.0.0.1:6379/0.
	RedisURL string
	// RedisPrefix prefixes the backplane's channels. "": "socket.io".
	RedisPrefix string
	// NATSURL is the NATS of the nats and nats-jetstream backplanes, one
	// server or several separated by commas, e.g. nats://127.0.0.1:4222.
	NATSURL string
	// NATSPrefix is the first token of the backplane's subjects (and the
	// JetStream stream's name). "": "roomcast".
	NATSPrefix string
	// NATSMaxAge and NATSMaxMsgs bound what the nats-jetstream stream keeps
	// (0: 24 h and 100,000 messages).
	NATSMaxAge  time.Duration
	NATSMaxMsgs int64
	// NATSReplicas is the number of replicas of the nats-jetstream stream
	// and session bucket, 1 to 5; more than 1 needs a NATS cluster. 0: 1.
	NATSReplicas int
	// KafkaBrokers are the seed brokers of the kafka backplane, host:port
	// separated by commas.
	KafkaBrokers string
	// KafkaTopicPrefix starts the names of the kafka backplane's topics.
	// "": "roomcast".
	KafkaTopicPrefix string
	// KafkaRetention is the retention of the topics the kafka backplane
	// creates. 0: 24 h.
	KafkaRetention time.Duration

	// Adapter, when set, makes each namespace's adapter (and Backplane is
	// ignored): for programs that bring their own.
	Adapter func(nsp string, recv adapter.Receiver, recoveryWindow time.Duration) adapter.Adapter

	// MetricsAddr, when set, serves /metrics (and pprof with Pprof) on a
	// listener of its own at this address instead of the main one. "": on
	// the main listener.
	MetricsAddr string
	// Pprof serves Go's profiles at /debug/pprof/ with /metrics (on
	// MetricsAddr, else the main listener); New refuses it when that
	// address is not loopback: give PprofAddr explicitly instead.
	Pprof bool
	// PprofAddr, when set, serves Go's profiles on a listener of its own at
	// this address, loopback or not (Pprof is then implied). "": see Pprof.
	PprofAddr string

	// MaxConnections refuses new Engine.IO connections (HTTP 503) while
	// this many are open; exported as roomcast_connections_max. Size it
	// from a load test (README "Operating roomcast"). 0: no bound.
	MaxConnections int
	// BackplaneCapacity is the backplane throughput this node may use,
	// messages/s in and out (measured for the backplane in use); exported
	// as roomcast_backplane_capacity_messages_per_second, so alerts can
	// tell how close the traffic is. 0: unknown.
	BackplaneCapacity float64
	// StatsDAddr, when set, also sends the metrics to a StatsD server at
	// this UDP address (host:port). StatsDPrefix prefixes the names ("":
	// DefaultStatsDPrefix). StatsDInterval is how often counters and
	// gauges are sent (0: DefaultStatsDInterval); StatsDSampleRate the
	// share of send latency timings sent (0: DefaultStatsDSampleRate).
	StatsDAddr       string
	StatsDPrefix     string
	StatsDInterval   time.Duration
	StatsDSampleRate float32

	// Client serves the socket.io browser client under Path (ClientConfig).
	Client ClientConfig
	// StaticDir, when set, is a directory of files served at "/" (a page
	// next to the hub; the server's own routes win). "": none.
	StaticDir string

	// Admin serves the Socket.IO Admin UI's namespace (AdminConfig). Off
	// by default.
	Admin AdminConfig

	// Parser is the socket.io wire format of every client:
	// namespaces.ParserJSON (the zero value) or namespaces.ParserMsgpack
	// (clients with socket.io-msgpack-parser).
	Parser namespaces.Parser

	// Logger: nil means no logs.
	Logger *zap.Logger
	// Registry receives the metrics. nil: a new registry (served at /metrics).
	Registry *prometheus.Registry
}

// HubConfig configures the hub protocol (join, leave, publish, echo).
type HubConfig struct {
	// Enabled serves the hub's handlers (join, leave, publish, echo, and
	// the roomcast:ping server-side event). Default off: a program embedding
	// roomcast writes its own handlers; `roomcast serve` turns it on.
	Enabled bool
	// DenyPublish refuses client publishes.
	DenyPublish bool
	// PublishSelf makes publishers receive their own messages.
	PublishSelf bool
	// Namespaces, when set, serves the hub on every namespace it matches,
	// besides "/".
	Namespaces *regexp.Regexp
	// MaxRoomsPerSocket refuses a client's join ({error}) while the socket
	// is in this many rooms (every room counts, its own id room and
	// user: room included; server-side joins are not limited). 0:
	// DefaultMaxRoomsPerSocket (1,000); negative: unlimited.
	MaxRoomsPerSocket int
	// Authorize, when set, is asked for every client join, leave and
	// publish, after the reserved names and the JWT RoomsClaim. nil: any
	// non-reserved room (publishing does not require membership).
	Authorize AuthorizeFunc
}

func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.Path[len(c.Path)-1] != '/' {
		c.Path += "/"
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.UpgradeTimeout == 0 {
		c.UpgradeTimeout = DefaultUpgradeTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ConnectBurst == 0 {
		c.ConnectBurst = DefaultConnectBurst
	}
	if c.Hub.MaxRoomsPerSocket == 0 {
		c.Hub.MaxRoomsPerSocket = DefaultMaxRoomsPerSocket
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.PingInterval < 0 || c.PingTimeout < 0 || c.MaxPayload < 0 || c.UpgradeTimeout < 0 {
		return c, fmt.Errorf("%w: ping interval, ping timeout, max payload and upgrade timeout must be positive", ErrBadConfig)
	}
	switch c.Backplane {
	case "", "memory":
	case "redis", "redis-sharded", "redis-streams":
		if c.RedisURL == "" {
			return c, fmt.Errorf("%w: the %s backplane needs a Redis URL", ErrBadConfig, c.Backplane)
		}
	case "nats", "nats-jetstream":
		if c.NATSURL == "" {
			return c, fmt.Errorf("%w: the %s backplane needs a NATS URL", ErrBadConfig, c.Backplane)
		}
	case "kafka":
		if strings.TrimSpace(strings.ReplaceAll(c.KafkaBrokers, ",", "")) == "" {
			return c, fmt.Errorf("%w: the kafka backplane needs brokers", ErrBadConfig)
		}
	default:
		return c, fmt.Errorf("%w: unknown backplane %q (want memory, redis, redis-sharded, redis-streams, nats, nats-jetstream or kafka)", ErrBadConfig, c.Backplane)
	}
	if c.MaxConnections < 0 || c.BackplaneCapacity < 0 || c.StatsDInterval < 0 || c.StatsDSampleRate < 0 || c.StatsDSampleRate > 1 {
		return c, fmt.Errorf("%w: max connections, backplane capacity and the StatsD interval must not be negative; the StatsD sample rate is in [0, 1]", ErrBadConfig)
	}
	if c.ConnectRate < 0 || c.ConnectBurst < 0 || c.DrainWindow < 0 {
		return c, fmt.Errorf("%w: connect rate, connect burst and drain window must not be negative", ErrBadConfig)
	}
	if err := c.checkOps(); err != nil {
		return c, err
	}
	if err := c.Admin.check(); err != nil {
		return c, err
	}
	return c, nil
}
