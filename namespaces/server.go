package namespaces

import (
	"net/http"
	"regexp"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/clients"
)

// Defaults of Config.
const (
	DefaultRecoveryWindow = 2 * time.Minute
	DefaultConnectTimeout = 45 * time.Second
	// DefaultMaxPacketSize is Config.MaxPacketSize's default, bytes: the
	// Engine.IO default max payload.
	DefaultMaxPacketSize = 1_000_000
)

// Config configures the Socket.IO layer. The zero value works.
type Config struct {
	// RecoveryWindow is how long a socket that dropped keeps its session
	// (id, rooms, data, missed packets) for connection state recovery.
	// 0: DefaultRecoveryWindow (2 minutes); negative: recovery off.
	RecoveryWindow time.Duration
	// AckTimeout is the default timeout of emits with ack. 0: none (an ack
	// waits until the socket goes away or the context ends).
	AckTimeout time.Duration
	// ConnectTimeout closes a connection that joins no namespace in time.
	// 0: DefaultConnectTimeout (45 s); negative: never.
	ConnectTimeout time.Duration
	// MaxPacketSize bounds one incoming packet, its text and binary
	// attachments together, bytes, as Node's maxHttpBufferSize bounds a
	// message; a client over it is closed. 0: DefaultMaxPacketSize
	// (1,000,000); negative: no bound.
	MaxPacketSize int
	// Adapter makes the adapter of each namespace. nil: adapter.NewMemory.
	Adapter func(nsp string, recv adapter.Receiver, recoveryWindow time.Duration) adapter.Adapter
	// Logger receives the layer's logs. nil: none.
	Logger *zap.Logger
	// Hooks observe connects and disconnects (for metrics). Optional.
	Hooks Hooks
}

// Hooks observe the life of sockets. Each field may be nil; they must not
// block.
type Hooks struct {
	Connect    func(nsp string)
	Disconnect func(nsp string, reason clients.Reason)
	// ConnectError observes a refused namespace connection.
	ConnectError func(nsp string, err error)
}

// Server is the set of namespaces of one roomcast server.
type Server struct {
	cfg Config
	log *zap.Logger

	mu       sync.RWMutex
	nsps     map[string]*Namespace
	patterns []pattern
	closed   bool
}

type pattern struct {
	re    *regexp.Regexp
	setup func(*Namespace)
}

// New makes a Server with the main namespace "/".
func New(cfg Config) *Server {
	switch {
	case cfg.RecoveryWindow == 0:
		cfg.RecoveryWindow = DefaultRecoveryWindow
	case cfg.RecoveryWindow < 0:
		cfg.RecoveryWindow = 0
	}
	switch {
	case cfg.ConnectTimeout == 0:
		cfg.ConnectTimeout = DefaultConnectTimeout
	case cfg.ConnectTimeout < 0:
		cfg.ConnectTimeout = 0
	}
	if cfg.MaxPacketSize == 0 {
		cfg.MaxPacketSize = DefaultMaxPacketSize
	}
	if cfg.Adapter == nil {
		cfg.Adapter = func(_ string, recv adapter.Receiver, window time.Duration) adapter.Adapter {
			return adapter.NewMemory(recv, window)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{cfg: cfg, log: log, nsps: make(map[string]*Namespace)}
	s.Of("/")
	return s
}

// Of returns the namespace with this name, creating it if needed. Names
// start with "/".
func (s *Server) Of(name string) *Namespace {
	if name == "" || name[0] != '/' {
		name = "/" + name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ofLocked(name)
}

func (s *Server) ofLocked(name string) *Namespace {
	if n := s.nsps[name]; n != nil {
		return n
	}
	n := newNamespace(s, name)
	s.nsps[name] = n
	return n
}

// OfPattern creates, on a client's first connect, a namespace for each name
// that re matches, and calls setup on it before the client joins.
func (s *Server) OfPattern(re *regexp.Regexp, setup func(*Namespace)) {
	s.mu.Lock()
	s.patterns = append(s.patterns, pattern{re: re, setup: setup})
	s.mu.Unlock()
}

// Lookup finds a namespace by name, creating a dynamic one whose pattern
// matches; nil when none.
func (s *Server) Lookup(name string) *Namespace {
	s.mu.RLock()
	n := s.nsps[name]
	closed := s.closed
	s.mu.RUnlock()
	if n != nil || closed {
		return n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nsps[name]; n != nil {
		return n
	}
	for _, p := range s.patterns {
		if p.re.MatchString(name) {
			n := s.ofLocked(name)
			if p.setup != nil {
				p.setup(n)
			}
			return n
		}
	}
	return nil
}

// Namespaces lists the namespaces that exist now.
func (s *Server) Namespaces() []*Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Namespace, 0, len(s.nsps))
	for _, n := range s.nsps {
		out = append(out, n)
	}
	return out
}

// Close releases the adapters. Connections are closed by their transports.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	nsps := s.nsps
	s.mu.Unlock()
	for _, n := range nsps {
		n.adapter.Close()
	}
}

// newID makes a socket or private id: 20 URL-safe characters.
func (s *Server) newID() string { return clients.NewID() }

// NewClient attaches the socket layer to a new connection. The transport
// calls the Client's On* methods in order, from one goroutine at a time.
func (s *Server) NewClient(conn clients.Conn, r *http.Request) *Client {
	c := &Client{srv: s, conn: conn, sockets: make(map[string]*Socket, 1)}
	c.hs = newHandshake(r)
	if s.cfg.ConnectTimeout > 0 {
		c.connectTimer = time.AfterFunc(s.cfg.ConnectTimeout, func() {
			c.mu.Lock()
			idle := len(c.sockets) == 0 && !c.closed
			c.mu.Unlock()
			if idle {
				conn.Close(clients.ReasonForcedServerClose)
			}
		})
	}
	return c
}
