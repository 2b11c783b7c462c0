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
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/clients"
	"github.com/roomcast/roomcast/server"
)

const usage = `usage:
  roomcast serve [flags]   run the hub (roomcast serve -h for the flags)
  roomcast emit [flags]    publish an event through Redis (roomcast emit -h)`

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
	default:
		fmt.Fprintln(os.Stderr, usage)
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

// options are the flags of `roomcast serve`.
type options struct {
	addr, logFormat, logLevel, path, cors, namespaces, apiKey, jwtSecret, jwtPublicKey string
	policy, backplane, redisURL, redisPrefix                                           string
	metricsAddr, pprofAddr                                                             string
	pingInterval, pingTimeout, recovery, shutdownTimeout, drain, writeTimeout, ackTime time.Duration
	readTimeout, idleTimeout                                                           time.Duration
	recoveryMaxBytes                                                                   int64
	maxPayload, queueBytes, queuePackets, burst, maxNamespaces                         int
	maxRooms                                                                           int
	connectRate                                                                        float64
	allowPublish, publishSelf, pprof, apiInsecure                                      bool
	serveClient                                                                        bool
	clientDir, staticDir                                                               string
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
	fs.IntVar(&o.queueBytes, "send-queue-bytes", clients.DefaultMaxBytes, "per-connection send queue bound, bytes")
	fs.IntVar(&o.queuePackets, "send-queue-packets", clients.DefaultMaxPackets, "per-connection send queue bound, packets")
	fs.StringVar(&o.policy, "send-queue-policy", "disconnect", "full send queue policy: disconnect, drop-oldest or coalesce")
	fs.DurationVar(&o.writeTimeout, "write-timeout", server.DefaultWriteTimeout, "a write taking longer closes the connection")
	fs.DurationVar(&o.readTimeout, "read-timeout", server.DefaultReadTimeout, "a polling or API POST body that takes longer to arrive gets 408 (a polling session then ends; 0 = none)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", server.DefaultIdleTimeout, "closes a keep-alive HTTP connection idle this long (0 = none)")
	fs.DurationVar(&o.ackTime, "ack-timeout", 0, "default timeout of server emits with ack (0 = none)")
	fs.BoolVar(&o.pprof, "pprof", false, "serve Go profiles at /debug/pprof/ with /metrics (refused off loopback: use --pprof-addr)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics (and --pprof) on this address instead of --addr")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "", "serve Go profiles on this address, loopback or not (implies --pprof)")
	fs.StringVar(&o.backplane, "adapter", "memory", "adapter: memory, redis, redis-sharded or redis-streams")
	fs.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis of the redis adapter")
	fs.StringVar(&o.redisPrefix, "redis-prefix", "socket.io", "channel prefix of the redis adapter")
	fs.BoolVar(&o.serveClient, "serve-client", true, "serve the socket.io browser client at <path>socket.io.js (and .min.js, .esm.min.js, .map)")
	fs.StringVar(&o.staticDir, "static", "", "directory of files (a web page) to serve at / next to the hub")
	fs.StringVar(&o.clientDir, "client-dir", "", "directory with socket.io-client's dist/ files to serve instead of the ones built in")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return o, nil
}

// parseFlags applies the environment (ROOMCAST_<FLAG>), then the command
// line, which wins.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "ROOMCAST_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
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
		Queue:          clients.QueueConfig{MaxBytes: o.queueBytes, MaxPackets: o.queuePackets},
		Hub:            server.HubConfig{DenyPublish: !o.allowPublish, PublishSelf: o.publishSelf, MaxRoomsPerSocket: o.maxRooms},
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
	if o.backplane != "memory" {
		cfg.RedisURL = o.redisURL
	}
	if o.recovery == 0 {
		cfg.RecoveryWindow = -1 // the flag's 0 means off
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
	p, err := clients.ParsePolicy(o.policy)
	if err != nil {
		return cfg, err
	}
	cfg.Queue.Policy = p
	if o.namespaces != "" {
		re, err := regexp.Compile(o.namespaces)
		if err != nil {
			return cfg, fmt.Errorf("--namespaces: %w", err)
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
				return cfg, fmt.Errorf("--jwt-public-key: %w", err)
			}
			block, _ := pem.Decode(pemBytes)
			if block == nil {
				return cfg, errors.New("--jwt-public-key: no PEM block found")
			}
			key, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return cfg, fmt.Errorf("--jwt-public-key: %w", err)
			}
			var ok bool
			if pub, ok = key.(*rsa.PublicKey); !ok {
				return cfg, errors.New("--jwt-public-key: not an RSA public key")
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
	cfg, err := config(o, log)
	if err != nil {
		return err
	}
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
