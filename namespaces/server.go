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
	// DefaultRecoveryWindow is the window a program that turns connection
	// state recovery on usually gives (the reference server's
	// maxDisconnectionDuration); Config.RecoveryWindow's zero value is off.
	DefaultRecoveryWindow = 2 * time.Minute
	// DefaultConnectTimeout is Config.ConnectTimeout's default (the
	// reference server's connectTimeout).
	DefaultConnectTimeout = 45 * time.Second
	// DefaultAckTimeout is Config.AckTimeout's default: an emit with ack
	// given no timeout of its own fails with ErrAckTimeout after it.
	DefaultAckTimeout = 10 * time.Second
	// DefaultMaxPacketSize is Config.MaxPacketSize's default, bytes: the
	// Engine.IO default max payload.
	DefaultMaxPacketSize = 1_000_000
	// DefaultMaxDynamicNamespaces is Config.MaxDynamicNamespaces' default.
	DefaultMaxDynamicNamespaces = 1000
)

// Config configures the Socket.IO layer. The zero value works.
type Config struct {
	// RecoveryWindow is how long a socket that dropped keeps its session
	// (id, rooms, data, missed packets) for connection state recovery.
	// 0 or negative: recovery off, as in the reference server
	// (DefaultRecoveryWindow is the usual value to turn it on).
	RecoveryWindow time.Duration
	// AckTimeout is the default timeout of emits with ack (Timeout sets
	// one per emit). 0: DefaultAckTimeout (10 s); negative: none, an ack
	// then waits until the socket disconnects or the context ends.
	AckTimeout time.Duration
	// ConnectTimeout closes a connection that joins no namespace in time.
	// 0: DefaultConnectTimeout (45 s); negative: never.
	ConnectTimeout time.Duration
	// MaxPacketSize bounds one incoming packet, its text and binary
	// attachments together, bytes, as Node's maxHttpBufferSize bounds a
	// message; a client over it is closed. 0: DefaultMaxPacketSize
	// (1,000,000); negative: no bound.
	MaxPacketSize int
	// MaxDynamicNamespaces bounds the namespaces made from OfPattern that
	// exist at once; a CONNECT that would make one more gets a
	// connect_error (ErrTooManyNamespaces). An empty dynamic namespace is
	// removed. 0: DefaultMaxDynamicNamespaces (1,000); negative: no bound.
	MaxDynamicNamespaces int
	// Parser is the wire format every client of the server speaks: the
	// zero value ParserJSON (socket.io-parser) or ParserMsgpack
	// (socket.io-msgpack-parser).
	Parser Parser
	// Adapter makes the adapter of each namespace. nil: adapter.NewMemory.
	Adapter func(nsp string, recv adapter.Receiver, recoveryWindow time.Duration) adapter.Adapter
	// Logger receives the layer's logs. nil: none.
	Logger *zap.Logger
	// Hooks observe connects and disconnects (for metrics). Optional.
	Hooks Hooks
}

// Hooks observe the life of sockets and dynamic namespaces. Each field may be nil; they must not
// block.
type Hooks struct {
	Connect    func(nsp string)
	Disconnect func(nsp string, reason Reason)
	// ConnectError observes a refused namespace connection.
	ConnectError func(nsp string, err error)
	// NamespaceRemoved observes the removal of an empty dynamic namespace,
	// after every other hook of its sockets ran.
	NamespaceRemoved func(nsp string)
	// SocketConnected observes a socket once it is connected (after
	// Connect, before the namespace's connection handlers);
	// SocketDisconnected once it has left its namespace and rooms (after
	// Disconnect). For observers that need the socket itself (its id,
	// handshake, transport), such as an admin view.
	SocketConnected    func(s *Socket)
	SocketDisconnected func(s *Socket, reason Reason)
	// RoomJoined and RoomLeft observe the room changes this node makes to
	// its own sockets through Socket.Join, Socket.Leave and
	// Broadcast.Join/Leave; changes other nodes ask for through the
	// backplane, and the rooms a disconnecting socket leaves, are not
	// reported.
	RoomJoined func(nsp, room, sid string)
	RoomLeft   func(nsp, room, sid string)
}

// Server is the set of namespaces of one roomcast server.
type Server struct {
	cfg Config
	log *zap.Logger

	mu       sync.RWMutex
	nsps     map[string]*Namespace
	patterns []pattern
	dynamic  int // namespaces in nsps made from patterns
	closed   bool
	use      []ConnectMiddleware // Use: before every namespace's own
}

type pattern struct {
	re    *regexp.Regexp
	setup func(*Namespace)
}

// New makes a Server with the main namespace "/".
func New(cfg Config) *Server {
	if cfg.RecoveryWindow < 0 {
		cfg.RecoveryWindow = 0
	}
	switch {
	case cfg.AckTimeout == 0:
		cfg.AckTimeout = DefaultAckTimeout
	case cfg.AckTimeout < 0:
		cfg.AckTimeout = 0
	}
	switch {
	case cfg.ConnectTimeout == 0:
		cfg.ConnectTimeout = DefaultConnectTimeout
	case cfg.ConnectTimeout < 0:
		cfg.ConnectTimeout = 0
	}
	if cfg.MaxDynamicNamespaces == 0 {
		cfg.MaxDynamicNamespaces = DefaultMaxDynamicNamespaces
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
	n.serverMW = s.use
	n.connectMW = s.use
	s.nsps[name] = n
	return n
}

// Use adds connect middleware run for every namespace, existing and future
// (dynamic ones included), before the namespace's own (Namespace.Use):
// authentication, for instance.
func (s *Server) Use(mw ConnectMiddleware) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.use = append(s.use[:len(s.use):len(s.use)], mw)
	for _, n := range s.nsps {
		n.mu.Lock()
		n.serverMW = s.use
		n.connectMW = n.middleware()
		n.mu.Unlock()
	}
}

// OfPattern creates, on a client's first connect, a namespace for each name
// that re matches, and calls setup on it before the client joins. Such a
// dynamic namespace is removed when its last socket leaves (its adapter
// closed, Hooks.NamespaceRemoved called); at most
// Config.MaxDynamicNamespaces exist at once.
func (s *Server) OfPattern(re *regexp.Regexp, setup func(*Namespace)) {
	s.mu.Lock()
	s.patterns = append(s.patterns, pattern{re: re, setup: setup})
	s.mu.Unlock()
}

// Lookup finds a namespace by name, creating a dynamic one whose pattern
// matches; nil when none, or when creating one would pass
// Config.MaxDynamicNamespaces. A dynamic namespace it creates stays until a
// socket has joined and left it: callers that only use it for a moment
// take Hold instead.
func (s *Server) Lookup(name string) *Namespace {
	n, _ := s.lookup(name, false)
	return n
}

// Hold finds a namespace as Lookup does and pins it until release is
// called: a dynamic namespace made for the caller (an HTTP API request, a
// server-side emit) is removed again once released if it has no socket.
// Errors: ErrInvalidNamespace, ErrTooManyNamespaces.
func (s *Server) Hold(name string) (n *Namespace, release func(), err error) {
	n, err = s.lookup(name, true)
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	return n, func() { once.Do(func() { s.release(n) }) }, nil
}

// lookup finds or creates a namespace; hold pins it against removal until
// release. Errors: ErrInvalidNamespace, ErrTooManyNamespaces.
func (s *Server) lookup(name string, hold bool) (*Namespace, error) {
	s.mu.RLock()
	n := s.nsps[name]
	if n != nil && hold {
		n.holds.Add(1) // under s.mu: collect cannot run meanwhile
	}
	s.mu.RUnlock()
	if n != nil {
		return n, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n = s.nsps[name]; n == nil && !s.closed {
		for _, p := range s.patterns {
			if !p.re.MatchString(name) {
				continue
			}
			if max := s.cfg.MaxDynamicNamespaces; max > 0 && s.dynamic >= max {
				return nil, ErrTooManyNamespaces
			}
			n = s.ofLocked(name)
			n.dynamic = true
			s.dynamic++
			if p.setup != nil {
				p.setup(n)
			}
			break
		}
	}
	if n == nil {
		return nil, ErrInvalidNamespace
	}
	if hold {
		n.holds.Add(1)
	}
	return n, nil
}

// release ends a hold of lookup and removes the namespace if it is an
// empty dynamic one.
func (s *Server) release(n *Namespace) {
	n.holds.Add(-1)
	s.collect(n)
}

// collect removes n if it is dynamic, has no socket and no hold: a name a
// client made up leaves nothing behind (as Node's
// cleanupEmptyChildNamespaces). Sessions its adapter kept for recovery go
// with it.
func (s *Server) collect(n *Namespace) {
	if !n.dynamic {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || n.holds.Load() > 0 || s.nsps[n.name] != n || n.Len() > 0 {
		return
	}
	delete(s.nsps, n.name)
	s.dynamic--
	// Under s.mu: a namespace of the same name made next must not see
	// this adapter's unsubscribes come after its subscribes.
	n.adapter.Close()
	if h := s.cfg.Hooks.NamespaceRemoved; h != nil {
		h(n.name)
	}
	n.log.Debug("namespace removed")
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
