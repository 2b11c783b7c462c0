// Command roomcast runs the roomcast hub: `roomcast serve`.
package main

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/server"
)

const usage = `usage:
  roomcast serve [flags]   run the hub (roomcast serve -h lists the flags)
  roomcast emit [flags]    publish an event through Redis (roomcast emit -h)
  roomcast version         print the version
  roomcast help            print this help`

// version is set at link time (-ldflags "-X main.version=v1.2.3"); empty:
// the module version or VCS revision Go recorded in the binary.
var version string

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "emit":
		err = emit(os.Args[2:])
	case "version", "--version", "-version":
		fmt.Println(versionString())
		return
	case "help", "--help", "-help", "-h":
		fmt.Println(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "roomcast: unknown command %q\n%s\n", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "roomcast:", err)
		if errors.As(err, new(usageError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// versionString is "roomcast <version> (<details>)".
func versionString() string {
	v, details := version, []string{runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "+modified"
				}
			}
		}
		if rev != "" {
			details = append([]string{"commit " + rev[:min(12, len(rev))] + modified}, details...)
		}
	}
	if v == "" {
		v = "devel"
	}
	if cv := server.EmbeddedClientVersion(); cv != "" {
		details = append(details, "socket.io client "+cv)
	} else {
		details = append(details, "no socket.io client bundle")
	}
	return fmt.Sprintf("roomcast %s (%s)", v, strings.Join(details, ", "))
}

// options are the flags of `roomcast serve`.
type options struct {
	addr, logFormat, logLevel, path, cors, namespaces, apiKey, jwtSecret, jwtPublicKey string
	policy, backplane, redisURL, redisPrefix                                           string
	metricsAddr, pprofAddr                                                             string
	nats                                                                               natsOptions
	kafka                                                                              kafkaOptions
	pingInterval, pingTimeout, recovery, shutdownTimeout, drain, writeTimeout, ackTime time.Duration
	readTimeout, idleTimeout                                                           time.Duration
	recoveryMaxBytes                                                                   int64
	maxPayload, queueBytes, queuePackets, burst, maxNamespaces                         int
	maxRooms                                                                           int
	connectRate                                                                        float64
	allowPublish, publishSelf, pprof, apiInsecure                                      bool
	// Operations: capacity and StatsD.
	maxConnections                        int
	backplaneCapacity                     float64
	memoryLimit, statsdAddr, statsdPrefix string
	serveClient                           bool
	clientDir, staticDir                  string
	// The Socket.IO Admin UI.
	adminUI, adminReadOnly  bool
	adminUser, adminHash    string
	adminNamespace, adminID string
	parser                  string
}

func parse(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("roomcast serve", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", server.DefaultAddr, "listen address; port 0 picks a free port")
	fs.StringVar(&o.logFormat, "log-format", "json", "log format: json or console")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.path, "path", server.DefaultPath, "Engine.IO path")
	fs.DurationVar(&o.pingInterval, "ping-interval", server.DefaultPingInterval, "Engine.IO ping interval")
	fs.DurationVar(&o.pingTimeout, "ping-timeout", server.DefaultPingTimeout, "Engine.IO ping timeout")
	fs.IntVar(&o.maxPayload, "max-payload", server.DefaultMaxPayload, "largest accepted message, polling body or socket.io packet with its attachments, bytes")
	fs.StringVar(&o.cors, "cors-origin", "*", "allowed origins, comma separated (* = any, without credentials; listed origins get credentials)")
	fs.DurationVar(&o.recovery, "recovery-window", 2*time.Minute, "connection state recovery window (0 disables)")
	fs.Int64Var(&o.recoveryMaxBytes, "recovery-max-bytes", adapter.DefaultMaxHistoryBytes, "recovery history bound per namespace, bytes (-1 = no byte bound)")
	fs.StringVar(&o.namespaces, "namespaces", "", "regular expression of extra hub namespaces, e.g. ^/tenant-[a-z0-9]+$")
	fs.IntVar(&o.maxNamespaces, "max-namespaces", server.DefaultMaxNamespaces, "most --namespaces namespaces at once (empty ones are removed; negative = no bound)")
	fs.BoolVar(&o.allowPublish, "allow-publish", true, "whether clients may publish")
	fs.BoolVar(&o.publishSelf, "publish-self", false, "whether a publisher receives its own message")
	fs.IntVar(&o.maxRooms, "max-rooms-per-socket", server.DefaultMaxRoomsPerSocket, "a client join beyond this many rooms of its socket gets {error} (negative = unlimited)")
	fs.StringVar(&o.apiKey, "api-key", "", "bearer key required by every /api/v1 route (required unless --addr is loopback or --api-insecure)")
	fs.BoolVar(&o.apiInsecure, "api-insecure", false, "serve the HTTP API without --api-key on a non-loopback --addr (behind an authenticating proxy only)")
	fs.StringVar(&o.jwtSecret, "jwt-secret", "", "HS256 secret: CONNECT then needs auth.token")
	fs.StringVar(&o.jwtPublicKey, "jwt-public-key", "", "PEM file with an RS256 public key: CONNECT then needs auth.token")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "graceful shutdown deadline")
	fs.DurationVar(&o.drain, "drain-window", 0, "spread client disconnects over this window on shutdown")
	fs.Float64Var(&o.connectRate, "connect-rate", 0, "new connections per second (0 = unlimited); excess gets HTTP 503")
	fs.IntVar(&o.burst, "connect-burst", server.DefaultConnectBurst, "burst for --connect-rate")
	fs.IntVar(&o.queueBytes, "send-queue-bytes", server.DefaultQueueBytes, "per-connection send queue bound, bytes")
	fs.IntVar(&o.queuePackets, "send-queue-packets", server.DefaultQueuePackets, "per-connection send queue bound, packets")
	fs.StringVar(&o.policy, "send-queue-policy", "disconnect", "full send queue policy: disconnect, drop-oldest or coalesce")
	fs.DurationVar(&o.writeTimeout, "write-timeout", server.DefaultWriteTimeout, "a write taking longer closes the connection")
	fs.DurationVar(&o.readTimeout, "read-timeout", server.DefaultReadTimeout, "a polling or API POST body that takes longer to arrive gets 408 (a polling session then ends; 0 = none)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", server.DefaultIdleTimeout, "closes a keep-alive HTTP connection idle this long (0 = none)")
	fs.DurationVar(&o.ackTime, "ack-timeout", 0, "default timeout of server emits with ack (0 = none)")
	fs.BoolVar(&o.pprof, "pprof", false, "serve Go profiles at /debug/pprof/ with /metrics (refused off loopback: use --pprof-addr)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics (and --pprof) on this address instead of --addr")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "", "serve Go profiles on this address, loopback or not (implies --pprof)")
	fs.StringVar(&o.backplane, "adapter", "memory", "adapter: memory, redis, redis-sharded, redis-streams, nats, nats-jetstream or kafka")
	fs.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis of the redis adapter")
	fs.StringVar(&o.redisPrefix, "redis-prefix", "socket.io", "channel prefix of the redis adapter")
	o.nats.flags(fs)
	o.kafka.flags(fs)
	fs.IntVar(&o.maxConnections, "max-connections", 0, "most open connections; new ones beyond get HTTP 503 (0 = no bound)")
	fs.StringVar(&o.memoryLimit, "memory-limit", "auto", "Go soft memory limit: a size (512MiB, 2GiB), auto (GOMEMLIMIT, else 90% of the cgroup's limit) or off")
	fs.Float64Var(&o.backplaneCapacity, "backplane-capacity", 0, "backplane messages/s (in + out) this node may use, for the capacity alert (0 = unknown)")
	fs.StringVar(&o.statsdAddr, "statsd-addr", "", "also send metrics to this StatsD UDP address (host:port)")
	fs.StringVar(&o.statsdPrefix, "statsd-prefix", server.DefaultStatsDPrefix, "prefix of the StatsD names")
	fs.BoolVar(&o.serveClient, "serve-client", true, "serve the socket.io browser client at <path>socket.io.js (and .min.js, .esm.min.js, .map)")
	fs.StringVar(&o.staticDir, "static", "", "directory of files (a web page) to serve at / next to the hub")
	fs.StringVar(&o.clientDir, "client-dir", "", "directory with socket.io-client's dist/ files to serve instead of the ones built in")
	fs.BoolVar(&o.adminUI, "admin-ui", false, "serve the Socket.IO Admin UI's namespace (needs --admin-user and --admin-password-hash)")
	fs.StringVar(&o.adminUser, "admin-user", "", "Admin UI user name")
	fs.StringVar(&o.adminHash, "admin-password-hash", "", "bcrypt hash of the Admin UI password (htpasswd -nbBC 10 USER PASS | cut -d: -f2)")
	fs.BoolVar(&o.adminReadOnly, "admin-readonly", false, "Admin UI: show only; refuse its commands (emit, join, leave, disconnect)")
	fs.StringVar(&o.adminNamespace, "admin-namespace", server.DefaultAdminNamespace, "namespace the Admin UI connects to")
	fs.StringVar(&o.adminID, "admin-server-id", "", "this node's name in the Admin UI (default hostname#node-id)")
	fs.StringVar(&o.parser, "parser", "json", "socket.io wire format of every client: json (default parser) or msgpack (socket.io-msgpack-parser)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "ROOMCAST_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// printHelp writes a flag set's usage, each flag with its environment
// variable and default.
func printHelp(w io.Writer, fs *flag.FlagSet, intro string) {
	fmt.Fprintf(w, "usage: %s [flags]\n\n%s\n\n", fs.Name(), intro)
	fs.VisitAll(func(f *flag.Flag) {
		kind, text := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if kind != "" {
			name += " " + kind
		}
		def := f.DefValue
		if def == "" {
			def = "none"
		}
		fmt.Fprintf(w, "  %s\n      %s\n      env %s, default %s\n", name, text, envName(f.Name), def)
	})
}

// validate checks what flag types do not; each error names the flag and
// what it accepts.
func (o *options) validate() error {
	bad := func(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }
	switch o.backplane {
	case "memory", "redis", "redis-sharded", "redis-streams", "nats", "nats-jetstream", "kafka":
	default:
		return bad("--adapter: unknown adapter %q; accepted: memory, redis, redis-sharded, redis-streams, nats, nats-jetstream, kafka", o.backplane)
	}
	if o.backplane == "kafka" && o.kafka.retention <= 0 {
		return bad("--kafka-retention: must be positive, not %v", o.kafka.retention)
	}
	if !strings.HasPrefix(o.path, "/") || strings.ContainsAny(o.path, "?# \t") {
		return bad("--path: must be an absolute URL path such as %s (no query or spaces), not %q", server.DefaultPath, o.path)
	}
	if _, err := server.ParseParser(o.parser); err != nil {
		return bad("--parser: unknown parser %q; accepted: json, msgpack", o.parser)
	}
	if o.maxPayload <= 0 {
		return bad("--max-payload: must be a positive number of bytes (default %d), not %d", server.DefaultMaxPayload, o.maxPayload)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--ping-interval", o.pingInterval}, {"--ping-timeout", o.pingTimeout}} {
		if d.v <= 0 {
			return bad("%s: must be a positive duration such as 25s, not %v", d.name, d.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--recovery-window", o.recovery}, {"--shutdown-timeout", o.shutdownTimeout}, {"--drain-window", o.drain}, {"--write-timeout", o.writeTimeout}, {"--read-timeout", o.readTimeout}, {"--idle-timeout", o.idleTimeout}, {"--ack-timeout", o.ackTime}} {
		if d.v < 0 {
			return bad("%s: must be a duration of 0 or more such as 10s, not %v", d.name, d.v)
		}
	}
	if o.connectRate < 0 || o.burst < 0 {
		return bad("--connect-rate and --connect-burst: must be 0 or more, not %v and %d", o.connectRate, o.burst)
	}
	if o.queueBytes <= 0 || o.queuePackets <= 0 {
		return bad("--send-queue-bytes and --send-queue-packets: must be positive, not %d and %d", o.queueBytes, o.queuePackets)
	}
	if err := o.nats.check(); err != nil {
		return err
	}
	if _, err := server.ParsePolicy(o.policy); err != nil {
		return bad("--send-queue-policy: unknown policy %q; accepted: disconnect, drop-oldest, coalesce", o.policy)
	}
	switch o.logFormat {
	case "json", "console":
	default:
		return bad("--log-format: unknown format %q; accepted: json, console", o.logFormat)
	}
	if _, err := zapcore.ParseLevel(o.logLevel); err != nil {
		return bad("--log-level: unknown level %q; accepted: debug, info, warn, error", o.logLevel)
	}
	if o.jwtSecret != "" && o.jwtPublicKey != "" {
		return bad("--jwt-secret and --jwt-public-key: give one, not both (an HS256 secret or an RS256 public key)")
	}
	if o.adminUI && (o.adminUser == "" || o.adminHash == "") {
		return bad("--admin-ui needs --admin-user and --admin-password-hash (a bcrypt hash)")
	}
	if o.adminUI && !strings.HasPrefix(o.adminHash, "$2") {
		return bad("--admin-password-hash: not a bcrypt hash (want $2a$/$2b$/$2y$..., e.g. from htpasswd -nbBC 10 USER PASS)")
	}
	if o.staticDir != "" {
		if st, err := os.Stat(o.staticDir); err != nil || !st.IsDir() {
			return bad("--static: %q is not a readable directory", o.staticDir)
		}
	}
	if o.clientDir != "" {
		if _, err := os.Stat(filepath.Join(o.clientDir, "socket.io.js")); err != nil {
			return bad("--client-dir: %q has no socket.io.js (give a copy of socket.io-client's dist/)", o.clientDir)
		}
	}
	return nil
}

// parseFlags applies the environment (ROOMCAST_<FLAG>), then the command
// line, which wins.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = usageError{fmt.Errorf("%s=%q (--%s): %w", name, v, f.Name, err)}
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	fs.SetOutput(io.Discard) // help and errors are printed below
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(os.Stdout, fs, "Each flag may also be set by its environment variable; the command line wins.")
			return err
		}
		return usageError{fmt.Errorf("%w (%s -h lists the flags)", err, fs.Name())}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %v (%s -h lists the flags)", fs.Args(), fs.Name())}
	}
	return nil
}

func newLogger(format, level string) (*zap.Logger, error) {
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
	default:
		return nil, fmt.Errorf("--log-format must be json or console, not %q", format)
	}
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	return cfg.Build()
}

func config(o *options, log *zap.Logger) (server.Config, error) {
	cfg := server.Config{
		Addr:           o.addr,
		Path:           o.path,
		PingInterval:   o.pingInterval,
		PingTimeout:    o.pingTimeout,
		MaxPayload:     o.maxPayload,
		RecoveryWindow: o.recovery,
		AckTimeout:     o.ackTime,
		WriteTimeout:   o.writeTimeout,
		ConnectRate:    o.connectRate,
		ConnectBurst:   o.burst,
		DrainWindow:    o.drain,
		APIKey:         o.apiKey,
		Logger:         log,
		Queue:          server.QueueConfig{MaxBytes: o.queueBytes, MaxPackets: o.queuePackets},
		Hub:            server.HubConfig{Enabled: true, DenyPublish: !o.allowPublish, PublishSelf: o.publishSelf, MaxRoomsPerSocket: o.maxRooms},
		Backplane:      o.backplane,
		Pprof:          o.pprof,
		RedisPrefix:    o.redisPrefix,
		ReadTimeout:    o.readTimeout,
		IdleTimeout:    o.idleTimeout,
		MaxNamespaces:  o.maxNamespaces,
		APIInsecure:    o.apiInsecure,
		MetricsAddr:    o.metricsAddr,
		PprofAddr:      o.pprofAddr,
		Client:         server.ClientConfig{Disabled: !o.serveClient, Dir: o.clientDir},
		StaticDir:      o.staticDir,
	}
	cfg.MaxConnections = o.maxConnections
	cfg.Admin = server.AdminConfig{Enabled: o.adminUI, Username: o.adminUser, PasswordHash: o.adminHash,
		ReadOnly: o.adminReadOnly, Namespace: o.adminNamespace, ServerID: o.adminID}
	cfg.BackplaneCapacity = o.backplaneCapacity
	cfg.StatsDAddr, cfg.StatsDPrefix = o.statsdAddr, o.statsdPrefix
	cfg.Parser, _ = server.ParseParser(o.parser) // checked by validate
	if o.backplane != "memory" {
		cfg.RedisURL = o.redisURL
	}
	o.nats.apply(&cfg)
	o.kafka.apply(&cfg)
	// Recovery and the hub are on in `roomcast serve` (the library's zero
	// values have both off): the flag's 0 turns recovery off.
	if o.recovery <= 0 {
		cfg.RecoveryWindow = -1
	}
	if o.ackTime == 0 {
		cfg.AckTimeout = -1 // the flag's 0 means none
	}
	cfg.RecoveryMaxBytes = o.recoveryMaxBytes
	if o.writeTimeout == 0 {
		cfg.WriteTimeout = -1
	}
	if o.readTimeout == 0 {
		cfg.ReadTimeout = -1
	}
	if o.idleTimeout == 0 {
		cfg.IdleTimeout = -1
	}
	for _, s := range strings.Split(o.cors, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.CORSOrigins = append(cfg.CORSOrigins, s)
		}
	}
	p, err := server.ParsePolicy(o.policy)
	if err != nil {
		return cfg, usageError{fmt.Errorf("--send-queue-policy: %w", err)}
	}
	cfg.Queue.Policy = p
	if o.namespaces != "" {
		re, err := regexp.Compile(o.namespaces)
		if err != nil {
			return cfg, usageError{fmt.Errorf("--namespaces: not a regular expression: %w", err)}
		}
		cfg.Hub.Namespaces = re
	}
	if o.jwtSecret != "" || o.jwtPublicKey != "" {
		var secret []byte
		if o.jwtSecret != "" {
			secret = []byte(o.jwtSecret)
		}
		var pub *rsa.PublicKey
		if o.jwtPublicKey != "" {
			pemBytes, err := os.ReadFile(o.jwtPublicKey)
			if err != nil {
				return cfg, usageError{fmt.Errorf("--jwt-public-key: %w", err)}
			}
			block, _ := pem.Decode(pemBytes)
			if block == nil {
				return cfg, usageError{fmt.Errorf("--jwt-public-key: %s holds no PEM block; give a PEM file with an RSA public key (BEGIN PUBLIC KEY)", o.jwtPublicKey)}
			}
			if strings.Contains(block.Type, "PRIVATE") {
				return cfg, usageError{fmt.Errorf("--jwt-public-key: %s holds a private key (%s); give its public key instead, e.g. openssl rsa -in key.pem -pubout -out public.pem", o.jwtPublicKey, block.Type)}
			}
			key, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil && block.Type == "RSA PUBLIC KEY" {
				key, err = x509.ParsePKCS1PublicKey(block.Bytes)
			}
			if err != nil {
				return cfg, usageError{fmt.Errorf("--jwt-public-key: %s: %w", o.jwtPublicKey, err)}
			}
			var ok bool
			if pub, ok = key.(*rsa.PublicKey); !ok {
				return cfg, usageError{fmt.Errorf("--jwt-public-key: %s holds a %T key; RS256 needs an RSA public key", o.jwtPublicKey, key)}
			}
		}
		j, err := server.NewJWT(secret, pub)
		if err != nil {
			return cfg, err
		}
		cfg.Auth = j
	}
	return cfg, nil
}

func serve(args []string) error {
	o, err := parse(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := newLogger(o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	defer log.Sync()
	// go-redis prints its own lines to stderr (dial retries, …): route
	// them into the log at debug level; errors that matter come back to
	// us as values and are logged once.
	redis.SetLogger(redisLogger{log.Named("go-redis")})
	cfg, err := config(o, log)
	if err != nil {
		return err
	}
	if err := checkRedis(o); err != nil {
		return err
	}
	limit, source, err := server.SetMemoryLimit(o.memoryLimit)
	if err != nil {
		return err
	}
	log.Info("memory limit", zap.Int64("bytes", limit), zap.String("source", source))
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case s := <-sig:
		log.Info("signal received, shutting down", zap.String("signal", s.String()), zap.Duration("timeout", o.shutdownTimeout))
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown did not finish in time", zap.Error(err))
	}
	<-errc
	log.Info("stopped")
	return nil
}

// natsOptions are the flags of the NATS adapters.
type natsOptions struct {
	url, prefix string
	maxAge      time.Duration
	maxMsgs     int64
	replicas    int
}

func (n *natsOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&n.url, "nats-url", "nats://127.0.0.1:4222", "NATS of the nats adapters, several servers separated by commas")
	fs.StringVar(&n.prefix, "nats-prefix", adapter.DefaultNATSPrefix, "subject prefix of the nats adapters (and JetStream stream name, in capitals)")
	fs.DurationVar(&n.maxAge, "nats-max-age", adapter.DefaultJetStreamMaxAge, "how long the nats-jetstream stream keeps broadcasts")
	fs.Int64Var(&n.maxMsgs, "nats-max-msgs", adapter.DefaultJetStreamMaxMsgs, "how many broadcasts the nats-jetstream stream keeps")
	fs.IntVar(&n.replicas, "nats-replicas", 1, "replicas of the nats-jetstream stream and session bucket, 1 to 5 (more than 1 needs a NATS cluster)")
}

// check validates the NATS flags (JetStream's own bounds).
func (n *natsOptions) check() error {
	bad := func(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }
	if n.maxAge < 100*time.Millisecond {
		return bad("--nats-max-age: must be at least 100ms (JetStream's minimum), not %v", n.maxAge)
	}
	if n.maxMsgs <= 0 {
		return bad("--nats-max-msgs: must be a positive number of messages (default %d), not %d", adapter.DefaultJetStreamMaxMsgs, n.maxMsgs)
	}
	if n.replicas < 1 || n.replicas > 5 {
		return bad("--nats-replicas: must be 1 to 5, not %d", n.replicas)
	}
	return nil
}

func (n *natsOptions) apply(cfg *server.Config) {
	cfg.NATSURL, cfg.NATSPrefix, cfg.NATSMaxAge, cfg.NATSMaxMsgs = n.url, n.prefix, n.maxAge, n.maxMsgs
	cfg.NATSReplicas = n.replicas
}

// kafkaOptions are the flags of the kafka adapter.
type kafkaOptions struct {
	brokers, prefix string
	retention       time.Duration
}

func (k *kafkaOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&k.brokers, "kafka-brokers", "127.0.0.1:9092", "Kafka seed brokers of the kafka adapter, host:port separated by commas")
	fs.StringVar(&k.prefix, "kafka-topic-prefix", adapter.DefaultKafkaPrefix, "first part of the kafka adapter's topic names (<prefix>.<namespace>, <prefix>._control, <prefix>._sessions)")
	fs.DurationVar(&k.retention, "kafka-retention", adapter.DefaultKafkaRetention, "retention of the topics the kafka adapter creates")
}

func (k *kafkaOptions) apply(cfg *server.Config) {
	cfg.KafkaBrokers, cfg.KafkaTopicPrefix, cfg.KafkaRetention = k.brokers, k.prefix, k.retention
}

// checkRedis pings the backplane's Redis once before the server starts, so
// an unreachable or misnamed Redis is one clear error, not a stream of
// retry logs.
func checkRedis(o *options) error {
	if !strings.HasPrefix(o.backplane, "redis") {
		return nil
	}
	var client redis.UniversalClient
	if strings.Contains(o.redisURL, "addr=") {
		opts, err := redis.ParseClusterURL(o.redisURL)
		if err != nil {
			return usageError{fmt.Errorf("--redis-url: %w", err)}
		}
		opts.MaxRetries = -1
		client = redis.NewClusterClient(opts)
	} else {
		opts, err := redis.ParseURL(o.redisURL)
		if err != nil {
			return usageError{fmt.Errorf("--redis-url: %w", err)}
		}
		opts.MaxRetries = -1
		client = redis.NewClient(opts)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("--redis-url %s: Redis not reachable: %w", redact(o.redisURL), err)
	}
	return nil
}

// redact hides a Redis URL's password.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// redisLogger passes go-redis's internal messages to zap at debug level.
type redisLogger struct{ log *zap.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	if ce := l.log.Check(zap.DebugLevel, "go-redis"); ce != nil {
		ce.Write(zap.String("detail", fmt.Sprintf(format, v...)))
	}
}
