package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/clients"
	"github.com/roomcast/roomcast/namespaces"
)

// Server is a roomcast server: the Socket.IO runtime behind an HTTP
// listener. Safe for concurrent use.
type Server struct {
	cfg     Config
	log     *zap.Logger
	nsps    *namespaces.Server
	metrics *metrics
	reg     *prometheus.Registry
	limiter *rate.Limiter
	writers *writers
	mux     *http.ServeMux
	http    *http.Server
	ops     ops

	smu      sync.RWMutex
	sessions map[string]*session

	draining atomic.Bool
	id       string
	redis    redis.UniversalClient
	node     backplane
	ln       net.Listener
	lnMu     sync.Mutex
	ready    chan struct{}
}

// New builds a Server from cfg (see Config for defaults).
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	srv := &Server{cfg: cfg, log: cfg.Logger, sessions: make(map[string]*session), ready: make(chan struct{}), id: clients.NewID()[:12]}
	srv.reg = cfg.Registry
	if srv.reg == nil {
		srv.reg = prometheus.NewRegistry()
		srv.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	srv.metrics = newMetrics(srv.reg)
	if cfg.ConnectRate > 0 {
		srv.limiter = rate.NewLimiter(rate.Limit(cfg.ConnectRate), cfg.ConnectBurst)
	}
	m := srv.metrics
	if cfg.Backplane != "" && cfg.Backplane != "memory" && cfg.Adapter == nil {
		if err := srv.connectRedis(); err != nil {
			return nil, err
		}
	}
	srv.nsps = namespaces.New(namespaces.Config{
		RecoveryWindow: srv.cfg.RecoveryWindow,
		AckTimeout:     cfg.AckTimeout,
		MaxPacketSize:  cfg.MaxPayload,
		Adapter:        historyBound(srv.cfg.Adapter, cfg.RecoveryMaxBytes),
		Logger:         cfg.Logger,
		// 0 is the same default in both packages.
		MaxDynamicNamespaces: cfg.MaxNamespaces,
		Hooks: namespaces.Hooks{
			Connect: func(nsp string) {
				m.sockets.WithLabelValues(nsp).Inc()
				m.connects.WithLabelValues(nsp).Inc()
			},
			Disconnect: func(nsp string, r clients.Reason) {
				m.sockets.WithLabelValues(nsp).Dec()
				m.disconnects.WithLabelValues(nsp, r.String()).Inc()
			},
			ConnectError: func(nsp string, err error) {
				switch {
				case errors.Is(err, namespaces.ErrInvalidNamespace):
					nsp = "invalid"
				case errors.Is(err, namespaces.ErrTooManyNamespaces):
					nsp = "over_limit" // not a namespace: one series, not one per name
				}
				m.connectErrs.WithLabelValues(nsp).Inc()
			},
			NamespaceRemoved: m.forgetNamespace,
		},
	})
	if !cfg.Hub.Disabled {
		srv.installHub()
	}
	srv.mux = http.NewServeMux()
	srv.mux.HandleFunc(cfg.Path, srv.serveEngine)
	srv.mux.Handle("/api/", srv.apiHandler())
	srv.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	srv.mux.HandleFunc("GET /readyz", srv.serveReady)
	srv.routeOps()
	srv.routeClient()
	srv.routeStatic()
	srv.http = &http.Server{
		Handler:           srv.mux,
		ReadHeaderTimeout: 10 * time.Second,
		// No ReadTimeout: it would also cut long-poll GETs (net/http cancels
		// a request whose connection's read deadline passes); polling POST
		// bodies get their own deadline (Config.ReadTimeout).
		IdleTimeout: max(cfg.IdleTimeout, 0), // negative: none (0 for net/http)
		ErrorLog:    zap.NewStdLog(cfg.Logger.Named("http")),
	}
	srv.writers = newWriters()
	return srv, nil
}

// NodeID identifies this node (its backplane uid with Redis).
func (srv *Server) NodeID() string {
	if srv.node != nil {
		return srv.node.UID()
	}
	return srv.id
}

// Handler is the server's HTTP handler, for embedding in another server.
func (srv *Server) Handler() http.Handler { return srv.mux }

// Namespaces is the Socket.IO layer, for registering handlers.
func (srv *Server) Namespaces() *namespaces.Server { return srv.nsps }

// Of returns a namespace (creating it).
func (srv *Server) Of(name string) *namespaces.Namespace { return srv.nsps.Of(name) }

// To starts a broadcast to rooms of the main namespace.
func (srv *Server) To(rooms ...string) *namespaces.Broadcast { return srv.nsps.Of("/").To(rooms...) }

// ToUser starts a broadcast to every socket of a user (room "user:<id>")
// in the main namespace.
func (srv *Server) ToUser(ids ...string) *namespaces.Broadcast {
	rooms := make([]string, len(ids))
	for i, id := range ids {
		rooms[i] = UserRoom(id)
	}
	return srv.To(rooms...)
}

// UserRoom is the room every socket of a user joins.
func UserRoom(id string) string { return "user:" + id }

// ListenAndServe listens on cfg.Addr and serves until Shutdown.
func (srv *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", srv.cfg.Addr)
	if err != nil {
		return err
	}
	return srv.Serve(ln)
}

// Serve serves on ln (and the listeners of MetricsAddr and PprofAddr)
// until Shutdown. It refuses a non-loopback ln while the HTTP API has no
// key or pprof is on it (see Config.APIKey). It closes ln when it returns.
func (srv *Server) Serve(ln net.Listener) error {
	if err := srv.cfg.exposureError(ln.Addr().String()); err != nil {
		ln.Close()
		return err
	}
	if err := srv.listenOps(); err != nil {
		ln.Close()
		return err
	}
	srv.lnMu.Lock()
	srv.ln = ln
	srv.lnMu.Unlock()
	close(srv.ready)
	srv.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("path", srv.cfg.Path))
	err := srv.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return ErrClosed
	}
	return err
}

// Addr is the bound address once serving (blocks until then).
func (srv *Server) Addr() net.Addr {
	<-srv.ready
	srv.lnMu.Lock()
	defer srv.lnMu.Unlock()
	return srv.ln.Addr()
}

// Shutdown stops accepting connections, tells every client to go (closing
// its transport, so socket.io clients reconnect, elsewhere if balanced),
// spread over DrainWindow, and waits for the connections to end or ctx.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.draining.Store(true)
	srv.smu.RLock()
	all := make([]*session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.smu.RUnlock()
	srv.log.Info("shutting down", zap.Int("connections", len(all)), zap.Duration("drain_window", srv.cfg.DrainWindow))
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	start := time.Now()
	for i, s := range all {
		if w := srv.cfg.DrainWindow; w > 0 && len(all) > 1 {
			at := start.Add(time.Duration(int64(w) * int64(i) / int64(len(all))))
			select {
			case <-time.After(time.Until(at)):
			case <-ctx.Done():
			}
		}
		s.Close(clients.ReasonServerShutdown)
	}
	err := srv.http.Shutdown(ctx)
	srv.closeOps()
	// Wait for the transports to end (bounded by ctx).
	for _, s := range all {
		s.mu.Lock()
		ws := s.ws
		s.mu.Unlock()
		if ws == nil {
			continue
		}
		select {
		case <-ws.ended:
		case <-ctx.Done():
			ws.conn.Close()
		}
	}
	srv.nsps.Close()
	srv.writers.stop()
	if srv.node != nil {
		srv.node.Close()
		srv.redis.Close()
	}
	return err
}

// historyBound makes the adapters of mk (nil: memory) bound their recovery
// history to maxBytes (see Config.RecoveryMaxBytes).
func historyBound(mk func(string, adapter.Receiver, time.Duration) adapter.Adapter, maxBytes int64) func(string, adapter.Receiver, time.Duration) adapter.Adapter {
	if mk == nil {
		mk = func(_ string, recv adapter.Receiver, window time.Duration) adapter.Adapter {
			return adapter.NewMemory(recv, window)
		}
	}
	return func(nsp string, recv adapter.Receiver, window time.Duration) adapter.Adapter {
		a := mk(nsp, recv, window)
		if h, ok := a.(interface{ SetMaxHistoryBytes(int64) }); ok {
			h.SetMaxHistoryBytes(maxBytes)
		}
		return a
	}
}

// backplane is what the Redis backplanes have in common.
type backplane interface {
	Adapter(nsp string, recv adapter.Receiver, window time.Duration) adapter.Adapter
	UID() string
	Close() error
}

// connectRedis sets up the Redis backplane. A URL with addr= parameters is
// a Redis Cluster (go-redis ParseClusterURL).
func (srv *Server) connectRedis() error {
	var client redis.UniversalClient
	if strings.Contains(srv.cfg.RedisURL, "addr=") {
		opts, err := redis.ParseClusterURL(srv.cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("%w: redis cluster URL: %v", ErrBadConfig, err)
		}
		client = redis.NewClusterClient(opts)
	} else {
		opts, err := redis.ParseURL(srv.cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("%w: redis URL: %v", ErrBadConfig, err)
		}
		client = redis.NewClient(opts)
	}
	rc := adapter.RedisConfig{
		Client: client,
		Prefix: srv.cfg.RedisPrefix,
		Logger: srv.log,
		OnError: func(op string, _ error) {
			srv.metrics.backplaneErrors.WithLabelValues(op).Inc()
		},
	}
	var node backplane
	var err error
	switch srv.cfg.Backplane {
	case "redis":
		node, err = adapter.NewRedisNode(rc)
	case "redis-sharded":
		node, err = adapter.NewShardedNode(rc)
	case "redis-streams":
		node, err = adapter.NewStreamsNode(adapter.StreamsConfig{RedisConfig: rc})
	}
	if err != nil {
		client.Close()
		return err
	}
	srv.redis = client
	srv.node = node
	srv.cfg.Adapter = node.Adapter
	return nil
}

func (srv *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	if srv.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
