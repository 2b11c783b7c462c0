package clients

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Defaults of Config's zero fields.
const (
	DefaultPingInterval   = 25 * time.Second
	DefaultPingTimeout    = 20 * time.Second
	DefaultMaxPayload     = 1_000_000
	DefaultUpgradeTimeout = 10 * time.Second
	DefaultWriteTimeout   = 5 * time.Second
	DefaultReadTimeout    = 10 * time.Second
)

// Config configures a Server. The zero value works: zero fields take the
// defaults above.
type Config struct {
	// PingInterval and PingTimeout drive heartbeats.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// UpgradeTimeout bounds a polling → WebSocket upgrade.
	UpgradeTimeout time.Duration
	// WriteTimeout closes a connection whose write takes longer; it also
	// bounds the flush of a graceful close. Negative: writes have none.
	WriteTimeout time.Duration
	// ReadTimeout bounds reading a polling POST body. Negative: none.
	ReadTimeout time.Duration
	// MaxPayload bounds a message and a polling body, in bytes.
	MaxPayload int
	// Queue bounds each connection's send queue.
	Queue QueueConfig
	// CheckOrigin, when set, refuses (403, Engine.IO code 4) a request it
	// returns false for. Nil allows every origin.
	CheckOrigin func(r *http.Request) bool
	// AllowRequest, when set, runs before a new connection is opened (not
	// for requests of an existing one). Returning false refuses it: the
	// function has then answered the request itself.
	AllowRequest func(w http.ResponseWriter, r *http.Request) bool
	// Logger logs connection events. Nil: none.
	Logger *zap.Logger
	// Stats observes connections and their queues; any field may be nil.
	Stats Stats
}

func (c Config) withDefaults() Config {
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.UpgradeTimeout <= 0 {
		c.UpgradeTimeout = DefaultUpgradeTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Handler is the layer above the connections: Open is called once per new
// connection, before its open packet is sent, and returns what receives the
// connection's messages.
type Handler interface {
	Open(c Conn, r *http.Request) Receiver
}

// Receiver receives one connection's messages, in order, one at a time.
type Receiver interface {
	// Text receives the data of an Engine.IO message packet ("4" removed).
	// An error closes the connection: with ReasonPayloadTooLarge if it
	// wraps ErrTooLarge, else with ReasonParseError.
	Text(data []byte) error
	// Binary receives a binary message.
	Binary(data []byte) error
	// Close is called exactly once, when the connection ends, before any
	// writer ends the transport: a peer that learns of the close and
	// reconnects at once finds what Close saved.
	Close(r Reason)
}

// Server is an Engine.IO 4 server: the WebSocket and long-polling
// transports, the upgrade between them, heartbeats, and each connection's
// send queue and writer. Safe for concurrent use.
type Server struct {
	cfg     Config
	h       Handler
	log     *zap.Logger
	stats   Stats
	writers *writers

	smu      sync.RWMutex
	sessions map[string]*session
	draining atomic.Bool
	live     map[*wsConn]struct{} // WebSockets still reading, for Wait
}

// New makes a Server whose connections are handed to h.
func New(cfg Config, h Handler) *Server {
	cfg = cfg.withDefaults()
	return &Server{
		cfg:      cfg,
		h:        h,
		log:      cfg.Logger,
		stats:    cfg.Stats,
		writers:  newWriters(),
		sessions: make(map[string]*session),
		live:     make(map[*wsConn]struct{}),
	}
}

// Engine.IO error codes, sent as {"code":N,"message":"…"}.
const (
	codeTransportUnknown   = 0
	codeUnknownSID         = 1
	codeBadHandshakeMethod = 2
	codeBadRequest         = 3
	codeForbidden          = 4
	codeUnsupportedVersion = 5
)

var engineMessages = map[int]string{
	codeTransportUnknown:   "Transport unknown",
	codeUnknownSID:         "Session ID unknown",
	codeBadHandshakeMethod: "Bad handshake method",
	codeBadRequest:         "Bad request",
	codeForbidden:          "Forbidden",
	codeUnsupportedVersion: "Unsupported protocol version",
}

// engineError answers a bad Engine.IO request.
func engineError(w http.ResponseWriter, status, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"code": code, "message": engineMessages[code]})
	w.Write(b)
}

// ServeHTTP serves the Engine.IO path.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("EIO") != "4" {
		engineError(w, http.StatusBadRequest, codeUnsupportedVersion)
		return
	}
	transport := q.Get("transport")
	if transport != transportPolling && transport != transportWebSocket {
		engineError(w, http.StatusBadRequest, codeTransportUnknown)
		return
	}
	if srv.cfg.CheckOrigin != nil && !srv.cfg.CheckOrigin(r) {
		engineError(w, http.StatusForbidden, codeForbidden)
		return
	}
	sid := q.Get("sid")
	if sid == "" {
		srv.handshake(w, r, transport)
		return
	}
	s := srv.session(sid)
	if s == nil {
		engineError(w, http.StatusBadRequest, codeUnknownSID)
		return
	}
	if transport == transportWebSocket {
		srv.upgrade(w, r, s)
		return
	}
	if s.Transport() != transportPolling {
		engineError(w, http.StatusBadRequest, codeBadRequest)
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.poll(w, r)
	case http.MethodPost:
		s.post(w, r)
	default:
		engineError(w, http.StatusBadRequest, codeBadRequest)
	}
}

func (srv *Server) handshake(w http.ResponseWriter, r *http.Request, transport string) {
	if r.Method != http.MethodGet {
		engineError(w, http.StatusBadRequest, codeBadHandshakeMethod)
		return
	}
	if srv.draining.Load() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	if srv.cfg.AllowRequest != nil && !srv.cfg.AllowRequest(w, r) {
		return
	}
	if transport == transportWebSocket {
		srv.acceptWebSocket(w, r)
		return
	}
	s := srv.newSession(transportPolling, r)
	srv.addSession(s)
	s.handshake()
	s.poll(w, r)
}

func (srv *Server) addSession(s *session) {
	srv.smu.Lock()
	srv.sessions[s.id] = s
	srv.smu.Unlock()
}

func (srv *Server) removeSession(s *session) {
	srv.smu.Lock()
	if srv.sessions[s.id] == s {
		delete(srv.sessions, s.id)
	}
	srv.smu.Unlock()
}

func (srv *Server) session(id string) *session {
	srv.smu.RLock()
	defer srv.smu.RUnlock()
	return srv.sessions[id]
}

// Conn returns the open connection with this session id, or nil.
func (srv *Server) Conn(id string) Conn {
	if s := srv.session(id); s != nil {
		return s
	}
	return nil
}

// Len is the number of open connections.
func (srv *Server) Len() int {
	srv.smu.RLock()
	defer srv.smu.RUnlock()
	return len(srv.sessions)
}

// Drain refuses new connections (503) and closes every open one with
// ReasonServerShutdown, which flushes what is queued, in random order
// spread over window; when ctx ends, the rest close at once.
func (srv *Server) Drain(ctx context.Context, window time.Duration) {
	srv.draining.Store(true)
	srv.smu.RLock()
	all := make([]*session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.smu.RUnlock()
	srv.log.Info("shutting down", zap.Int("connections", len(all)), zap.Duration("drain_window", window))
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	start := time.Now()
	for i, s := range all {
		if window > 0 && len(all) > 1 {
			at := start.Add(time.Duration(int64(window) * int64(i) / int64(len(all))))
			select {
			case <-time.After(time.Until(at)):
			case <-ctx.Done():
			}
		}
		s.Close(ReasonServerShutdown)
	}
}

// Wait waits for every WebSocket to end (after Drain they are closing);
// when ctx ends first, it cuts those left.
func (srv *Server) Wait(ctx context.Context) {
	srv.smu.RLock()
	all := make([]*wsConn, 0, len(srv.live))
	for c := range srv.live {
		all = append(all, c)
	}
	srv.smu.RUnlock()
	for _, c := range all {
		select {
		case <-c.ended:
		case <-ctx.Done():
			c.conn.Close()
		}
	}
}

// Close stops the pool of writers; connections still writing get writers
// of their own. Call it after Drain and Wait.
func (srv *Server) Close() { srv.writers.stop() }
