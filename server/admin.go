package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/roomcast/roomcast/namespaces"
)

// The server side of the Socket.IO Admin UI (@socket.io/admin-ui): its
// page connects to the admin namespace with {username, password} (or a
// session id it got earlier) and receives config, all_sockets,
// server_stats every few seconds, and live socket_connected,
// socket_disconnected, room_joined and room_left events; it sends the
// commands emit, join, leave and _disconnect, which act on every node
// through the adapter. Every event to the admin namespace goes through the
// adapter too, so a page connected to one node sees the others' stats and
// live events.

const (
	// DefaultAdminNamespace is AdminConfig.Namespace's default, the UI's.
	DefaultAdminNamespace = "/admin"
	// DefaultAdminStatsInterval is AdminConfig.StatsInterval's default, the
	// reference's.
	DefaultAdminStatsInterval = 2 * time.Second
	// adminSessionTTL is how long a session id the UI stored lets it
	// reconnect without credentials; adminMaxSessions bounds the sessions
	// kept (the oldest goes first).
	adminSessionTTL  = 24 * time.Hour
	adminMaxSessions = 1000
	// adminLoginRate and adminLoginBurst bound the password checks of a
	// node (each costs a bcrypt comparison, ~50 ms of CPU at cost 10):
	// unauthenticated clients cannot keep a core busy with them.
	adminLoginRate  = 5 // per second
	adminLoginBurst = 20
)

// AdminConfig turns on the Admin UI's namespace. Off by default.
type AdminConfig struct {
	Enabled bool
	// Namespace is where the UI connects. "": DefaultAdminNamespace.
	Namespace string
	// Username and PasswordHash (a bcrypt hash, as `htpasswd -nbBC 10`
	// or the UI's own documentation make) are the credentials; both are
	// required.
	Username     string
	PasswordHash string
	// ReadOnly refuses the UI's commands (emit, join, leave, _disconnect).
	ReadOnly bool
	// ServerID names this node in the UI. "": hostname#node-id.
	ServerID string
	// StatsInterval is how often server_stats is sent while an admin page
	// is connected to this node. 0: DefaultAdminStatsInterval.
	StatsInterval time.Duration
}

func (c AdminConfig) check() error {
	if !c.Enabled {
		return nil
	}
	if c.Username == "" || c.PasswordHash == "" {
		return fmt.Errorf("%w: the admin UI needs a user name and a bcrypt password hash", ErrBadConfig)
	}
	if _, err := bcrypt.Cost([]byte(c.PasswordHash)); err != nil {
		return fmt.Errorf("%w: the admin password hash is not a bcrypt hash: %v", ErrBadConfig, err)
	}
	if c.Namespace != "" && !strings.HasPrefix(c.Namespace, "/") {
		return fmt.Errorf("%w: the admin namespace must start with /", ErrBadConfig)
	}
	if c.StatsInterval < 0 {
		return fmt.Errorf("%w: the admin stats interval must not be negative", ErrBadConfig)
	}
	return nil
}

var (
	errAdminCredentials = errors.New("invalid credentials") // the message the UI recognizes
	errAdminTooMany     = errors.New("too many login attempts, try again later")
)

type admin struct {
	srv      *Server
	cfg      AdminConfig
	nsp      *namespaces.Namespace
	log      *zap.Logger
	features []string
	started  time.Time
	serverID string
	hostname string

	logins *rate.Limiter // password checks

	mu       sync.Mutex
	sessions map[string]time.Time // session id → expiry

	stop chan struct{} // closed by Shutdown: ends the stats loop
	done chan struct{} // closed when the stats loop has ended
}

// installAdmin serves the Admin UI's namespace (AdminConfig).
func (srv *Server) installAdmin() {
	cfg := srv.cfg.Admin
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultAdminNamespace
	}
	if cfg.StatsInterval == 0 {
		cfg.StatsInterval = DefaultAdminStatsInterval
	}
	host, _ := os.Hostname()
	a := &admin{srv: srv, cfg: cfg, log: srv.log.Named("admin"), started: time.Now(), hostname: host,
		serverID: cfg.ServerID, sessions: map[string]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{}), logins: rate.NewLimiter(adminLoginRate, adminLoginBurst)}
	if a.serverID == "" {
		a.serverID = host + "#" + srv.id
	}
	a.features = []string{}
	if !cfg.ReadOnly {
		a.features = []string{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"}
	}
	a.nsp = srv.nsps.Of(cfg.Namespace)
	a.nsp.Use(a.authenticate)
	a.nsp.OnConnection(a.connected)
	srv.admin.Store(a)
	// Every node sends its stats, whether or not a page is connected to
	// it: pages on other nodes receive them through the adapter.
	go a.statsLoop()
}

// stopAdmin ends the stats loop (Shutdown).
func (srv *Server) stopAdmin() {
	if a := srv.admin.Load(); a != nil {
		select {
		case <-a.stop:
		default:
			close(a.stop)
		}
		<-a.done
	}
}

// exceptAdmin skips mw on the admin namespace, which has its own
// credentials (the UI sends no token).
func (srv *Server) exceptAdmin(mw namespaces.ConnectMiddleware) namespaces.ConnectMiddleware {
	if !srv.cfg.Admin.Enabled {
		return mw
	}
	name := srv.cfg.Admin.Namespace
	if name == "" {
		name = DefaultAdminNamespace
	}
	return func(s *namespaces.Socket) error {
		if s.Namespace().Name() == name {
			return nil
		}
		return mw(s)
	}
}

// authenticate is the admin namespace's connect middleware.
func (a *admin) authenticate(s *namespaces.Socket) error {
	auth := s.Handshake().Auth
	if id, ok := auth["sessionId"].(string); ok && a.validSession(id) {
		return nil
	}
	if !a.logins.Allow() {
		a.log.Warn("admin login refused: too many attempts", zap.String("address", s.Handshake().Address))
		return errAdminTooMany
	}
	user, _ := auth["username"].(string)
	pass, _ := auth["password"].(string)
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(a.cfg.Username)) == 1
	// Compare even for a wrong user name, so the answer takes as long.
	passOK := bcrypt.CompareHashAndPassword([]byte(a.cfg.PasswordHash), []byte(pass)) == nil
	if !userOK || !passOK {
		a.log.Info("admin login refused", zap.String("address", s.Handshake().Address))
		return errAdminCredentials
	}
	id := a.newSession()
	_ = s.Emit(context.Background(), "session", id) // held until the CONNECT is sent
	return nil
}

func (a *admin) newSession() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, exp := range a.sessions {
		if now.After(exp) {
			delete(a.sessions, k)
		}
	}
	if len(a.sessions) >= adminMaxSessions {
		var oldest string
		var when time.Time
		for k, exp := range a.sessions {
			if oldest == "" || exp.Before(when) {
				oldest, when = k, exp
			}
		}
		delete(a.sessions, oldest)
	}
	a.sessions[id] = now.Add(adminSessionTTL)
	return id
}

func (a *admin) validSession(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.sessions[id]
	return ok && time.Now().Before(exp)
}

// connected greets an admin page: config, then every socket of every
// namespace on every node, then this node's stats.
func (a *admin) connected(s *namespaces.Socket) {
	for _, ev := range []string{"emit", "join", "leave", "_disconnect"} {
		s.On(ev, a.command)
	}
	ctx := s.Context()
	_ = s.Emit(ctx, "config", map[string]any{"supportedFeatures": a.features})
	// Fetching waits for the other nodes: not on the connection's
	// goroutine.
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = s.Emit(ctx, "all_sockets", a.allSockets(ctx))
		_ = s.Emit(ctx, "server_stats", a.stats())
	}()
}

// allSockets describes the sockets of the namespaces this node has, on
// every node (a namespace only another node has is not listed).
func (a *admin) allSockets(ctx context.Context) []map[string]any {
	out := []map[string]any{}
	for _, n := range a.srv.nsps.Namespaces() {
		infos, err := n.FetchSockets(ctx)
		if err != nil {
			a.log.Warn("admin fetch sockets failed", zap.String("nsp", n.Name()), zap.Error(err))
		}
		for _, info := range infos {
			m := map[string]any{"id": info.ID, "nsp": n.Name(), "handshake": adminHandshake(info.Handshake),
				"rooms": info.Rooms, "data": info.Data}
			if s := n.Socket(info.ID); s != nil { // the connection is known only where it lives
				m["transport"], m["clientId"] = s.Transport(), clientID(s)
			}
			out = append(out, m)
		}
	}
	return out
}

func clientID(s *namespaces.Socket) string {
	id := s.ConnID()
	if len(id) > 12 {
		id = id[:12] // enough to group the sockets of a connection
	}
	return id
}

// adminHandshake is the handshake the UI shows: without the CONNECT
// payload (tokens) and without the cookie and authorization headers.
func adminHandshake(h map[string]any) map[string]any {
	out := make(map[string]any, len(h))
	for k, v := range h {
		if k == "auth" {
			continue
		}
		out[k] = v
	}
	if headers, ok := h["headers"].(map[string]any); ok {
		clean := make(map[string]any, len(headers))
		for k, v := range headers {
			switch strings.ToLower(k) {
			case "cookie", "authorization", "proxy-authorization":
				clean[k] = "[redacted]"
			default:
				clean[k] = v
			}
		}
		out["headers"] = clean
	}
	return out
}

func (a *admin) serialize(s *namespaces.Socket) map[string]any {
	hs := s.Handshake()
	info := map[string]any{
		"headers": map[string]any{}, "address": hs.Address, "time": hs.Time.UTC().Format(time.RFC3339),
		"issued": hs.Time.UnixMilli(), "secure": hs.Secure, "url": hs.URL, "query": map[string]any{},
	}
	headers := map[string]any{}
	for k, v := range hs.Headers {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	info["headers"] = headers
	query := map[string]any{}
	for k, v := range hs.Query {
		query[k] = v[0]
	}
	info["query"] = query
	data := map[string]any{}
	for _, k := range []string{"user"} { // what roomcast itself stores
		if v, ok := s.Get(k); ok {
			data[k] = v
		}
	}
	return map[string]any{"id": s.ID(), "clientId": clientID(s), "transport": s.Transport(), "nsp": s.Namespace().Name(),
		"data": data, "handshake": adminHandshake(info), "rooms": s.Rooms()}
}

// broadcast sends an event to every admin page, on every node.
func (a *admin) broadcast(event string, args ...any) {
	if err := a.nsp.Emit(context.Background(), event, args...); err != nil {
		a.log.Warn("admin event not sent", zap.String("event", event), zap.Error(err))
	}
}

func (a *admin) statsLoop() {
	defer close(a.done)
	t := time.NewTicker(a.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.broadcast("server_stats", a.stats())
		}
	}
}

// stats is this node's server_stats.
func (a *admin) stats() map[string]any {
	nsps := []map[string]any{}
	for _, n := range a.srv.nsps.Namespaces() {
		nsps = append(nsps, map[string]any{"name": n.Name(), "socketsCount": n.Len()})
	}
	return map[string]any{"serverId": a.serverID, "hostname": a.hostname, "pid": os.Getpid(),
		"uptime": time.Since(a.started).Seconds(), "clientsCount": a.srv.engine.Len(),
		"pollingClientsCount": 0, "namespaces": nsps}
}

// command runs one of the UI's commands: emit(nsp, filter, event,
// ...args), join(nsp, room, filter), leave(nsp, room, filter),
// _disconnect(nsp, close, filter). An empty filter selects the whole
// namespace. A command with an ack gets {ok: true} or {error}.
func (a *admin) command(ev *namespaces.Event) {
	err := a.run(ev)
	if err != nil {
		a.log.Info("admin command refused", zap.String("event", ev.Name), zap.Error(err))
	} else {
		a.log.Info("admin command", zap.String("event", ev.Name), zap.String("sid", ev.Socket.ID()))
	}
	if !ev.WantsAck() {
		return
	}
	if err != nil {
		_ = ev.Ack(map[string]any{"error": err.Error()})
		return
	}
	_ = ev.Ack(map[string]any{"ok": true})
}

var (
	errAdminReadOnly = errors.New("read-only")
	errAdminArgs     = errors.New("bad arguments")
	errAdminNsp      = errors.New("unknown namespace")
)

func (a *admin) run(ev *namespaces.Event) error {
	if a.cfg.ReadOnly {
		return errAdminReadOnly
	}
	arg := func(i int) string {
		if i < len(ev.Args) {
			s, _ := ev.Args[i].(string)
			return s
		}
		return ""
	}
	nspName := arg(0)
	var n *namespaces.Namespace
	for _, c := range a.srv.nsps.Namespaces() {
		if c.Name() == nspName {
			n = c
		}
	}
	if n == nil {
		return errAdminNsp // never creates one
	}
	sel := func(filter string) *namespaces.Broadcast {
		if filter == "" {
			return n.Except()
		}
		return n.To(filter)
	}
	switch ev.Name {
	case "emit":
		event := arg(2)
		if event == "" {
			return errAdminArgs
		}
		var args []any
		if len(ev.Args) > 3 {
			args = ev.Args[3:]
		}
		return sel(arg(1)).Emit(context.Background(), event, args...)
	case "join", "leave":
		room := arg(1)
		if room == "" {
			return errAdminArgs
		}
		if ev.Name == "join" {
			return sel(arg(2)).Join(room)
		}
		return sel(arg(2)).Leave(room)
	case "_disconnect":
		closeConn := false
		if len(ev.Args) > 1 {
			closeConn, _ = ev.Args[1].(bool)
		}
		return sel(arg(2)).Disconnect(closeConn)
	}
	return errAdminArgs
}

// The namespaces hooks feed the live events (no-ops while the admin UI is
// off).

func (srv *Server) adminSocketConnected(s *namespaces.Socket) {
	if a := srv.admin.Load(); a != nil {
		a.broadcast("socket_connected", a.serialize(s), time.Now())
	}
}

func (srv *Server) adminSocketDisconnected(s *namespaces.Socket, r namespaces.Reason) {
	if a := srv.admin.Load(); a != nil {
		a.broadcast("socket_disconnected", s.Namespace().Name(), s.ID(), r.String(), time.Now())
	}
}

func (srv *Server) adminRoomJoined(nsp, room, sid string) {
	if a := srv.admin.Load(); a != nil {
		a.broadcast("room_joined", nsp, room, sid, time.Now())
	}
}

func (srv *Server) adminRoomLeft(nsp, room, sid string) {
	if a := srv.admin.Load(); a != nil {
		a.broadcast("room_left", nsp, room, sid, time.Now())
	}
}
