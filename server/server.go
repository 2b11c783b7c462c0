package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/redis/go-redis/v9"

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
	engine  *clients.Server
	mux     *http.ServeMux
	http    *http.Server
	ops     ops

	draining atomic.Bool
	id       string
	redis    redis.UniversalClient
	node     backplane
	ln       net.Listener
	lnMu     sync.Mutex
	ready    chan struct{}
	admin    atomic.Pointer[admin] // the Admin UI's namespace, when on
}

// New builds a Server from cfg (see Config for defaults).
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	srv := &Server{cfg: cfg, log: cfg.Logger, ready: make(chan struct{}), id: clients.NewID()[:12]}
	srv.reg = cfg.Registry
	if srv.reg == nil {
		srv.reg = prometheus.NewRegistry()
		srv.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	srv.metrics = newMetrics(srv.reg)
	srv.metrics.capacity(cfg)
	if cfg.ConnectRate > 0 {
		srv.limiter = rate.NewLimiter(rate.Limit(cfg.ConnectRate), cfg.ConnectBurst)
	}
	m := srv.metrics
	if err := srv.startStatsD(); err != nil {
		return nil, err
	}
	if cfg.Backplane != "" && cfg.Backplane != "memory" && cfg.Adapter == nil {
		if err := srv.connectRedis(); err != nil {
			srv.stopStatsD()
			return nil, err
		}
	}
	srv.nsps = namespaces.New(namespaces.Config{
		RecoveryWindow: srv.cfg.RecoveryWindow,
		AckTimeout:     cfg.AckTimeout,
		ConnectTimeout: cfg.ConnectTimeout,
		MaxPacketSize:  cfg.MaxPayload,
		Adapter:        historyBound(srv.cfg.Adapter, cfg.RecoveryMaxBytes),
		Logger:         cfg.Logger,
		// 0 is the same default in both packages.
		MaxDynamicNamespaces: cfg.MaxNamespaces,
		Parser:               cfg.Parser,
		Hooks: namespaces.Hooks{
			Connect: func(nsp string) {
				m.sockets.WithLabelValues(nsp).Inc()
				m.connects.WithLabelValues(nsp).Inc()
			},
			Disconnect: func(nsp string, r namespaces.Reason) {
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
			NamespaceRemoved:   m.forgetNamespace,
			SocketConnected:    srv.adminSocketConnected,
			SocketDisconnected: srv.adminSocketDisconnected,
			RoomJoined:         srv.adminRoomJoined,
			RoomLeft:           srv.adminRoomLeft,
		},
	})
	if cfg.Auth != nil {
		srv.nsps.Use(srv.exceptAdmin(authMiddleware(cfg.Auth)))
	}
	if cfg.Hub.Enabled {
		srv.installHub()
	}
	if cfg.Admin.Enabled {
		srv.installAdmin()
	}
	srv.engine = clients.New(srv.engineConfig(), srv.nsps)
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
	return srv, nil
}

// engineConfig is the connection layer's part of the configuration.
func (srv *Server) engineConfig() clients.Config {
	cfg, m := srv.cfg, srv.metrics
	return clients.Config{
		PingInterval:   cfg.PingInterval,
		PingTimeout:    cfg.PingTimeout,
		UpgradeTimeout: cfg.UpgradeTimeout,
		WriteTimeout:   cfg.WriteTimeout,
		ReadTimeout:    cfg.ReadTimeout,
		MaxPayload:     cfg.MaxPayload,
		Queue:          cfg.Queue,
		CheckOrigin:    srv.originAllowed,
		AllowRequest:   srv.admit,
		Logger:         cfg.Logger,
		Stats: clients.Stats{
			Dropped:   m.queueStats.Dropped,
			Coalesced: m.queueStats.Coalesced,
			Opened:    m.connOpen.Inc,
			Closed: func(r clients.Reason) {
				m.connOpen.Dec()
				m.closes.WithLabelValues(r.String()).Inc()
				if r == clients.ReasonQueueFull || r == clients.ReasonWriteTimeout {
					// Counted here, once per connection, whichever path found it slow.
					m.slowCloses.WithLabelValues(r.String()).Inc()
				}
			},
			Taken: m.observeQueue,
			Sent:  m.observeSent,
		},
	}
}

// serveEngine is the handler of the Engine.IO path: CORS, then the
// connection layer.
func (srv *Server) serveEngine(w http.ResponseWriter, r *http.Request) {
	srv.cors(w, r)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	srv.engine.ServeHTTP(w, r)
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
	srv.engine.Drain(ctx, srv.cfg.DrainWindow)
	err := srv.http.Shutdown(ctx)
	srv.closeOps()
	// Wait for the transports to end (bounded by ctx).
	srv.engine.Wait(ctx)
	srv.stopAdmin()
	srv.nsps.Close()
	srv.engine.Close()
	if srv.node != nil {
		srv.node.Close()
		if srv.redis != nil {
			srv.redis.Close()
		}
	}
	srv.stopStatsD()
	return err
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
