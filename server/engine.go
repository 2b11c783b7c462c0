package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/roomcast/roomcast/clients"
	"github.com/roomcast/roomcast/namespaces"
)

const (
	transportPolling   = "polling"
	transportWebSocket = "websocket"
)

// Shared immutable Engine.IO control packets.
var (
	pingPacket  = clients.Text(clients.Control, []byte("2"))
	noopPacket  = clients.Text(clients.Control, []byte("6"))
	closePacket = clients.Text(clients.Control, []byte("1"))
	// closeMarker, queued by a graceful close, tells the writer to end the
	// connection once everything before it is written.
	closeMarker = clients.NewPacket(clients.Control)
)

// session is one Engine.IO connection.
type session struct {
	srv    *Server
	id     string
	q      *clients.Queue
	client *namespaces.Client

	mu           sync.Mutex
	transport    string
	ws           *wsConn // set once on WebSocket
	upgrading    bool
	closing      bool // Close has begun
	closed       bool // Close has ended the socket layer; the transport may end
	reason       clients.Reason
	awaitingPong bool
	timer        *time.Timer
	getActive    bool
	postActive   bool
	// postDone is signalled (on mu) when a POST ends or the session
	// closes: the upgrade waits on it, so one transport reads at a time.
	postDone *sync.Cond

	pollWake chan struct{} // signalled when data arrives for a polling GET
	done     chan struct{} // closed when the session closes
}

func (srv *Server) newSession(transport string, r *http.Request) *session {
	s := &session{
		srv:       srv,
		id:        clients.NewID(),
		transport: transport,
		pollWake:  make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	s.postDone = sync.NewCond(&s.mu)
	s.q = clients.NewQueue(srv.cfg.Queue, s.wakePoll, srv.metrics.queueStats)
	s.client = srv.nsps.NewClient(s, r)
	return s
}

// handshake queues the open packet and starts heartbeats.
func (s *session) handshake() {
	upgrades := []string{}
	if s.transport == transportPolling {
		upgrades = append(upgrades, transportWebSocket)
	}
	open, _ := json.Marshal(map[string]any{
		"sid":          s.id,
		"upgrades":     upgrades,
		"pingInterval": s.srv.cfg.PingInterval.Milliseconds(),
		"pingTimeout":  s.srv.cfg.PingTimeout.Milliseconds(),
		"maxPayload":   s.srv.cfg.MaxPayload,
	})
	s.q.Push(clients.Text(clients.Control, append([]byte("0"), open...)))
	s.mu.Lock()
	s.timer = time.AfterFunc(s.srv.cfg.PingInterval, s.onTimer)
	s.mu.Unlock()
	s.srv.metrics.connOpen.Inc()
}

// ID, Send, Close and Transport make a session a clients.Conn.
func (s *session) ID() string { return s.id }

func (s *session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport
}

func (s *session) Send(p *clients.Packet) {
	if p == nil {
		return
	}
	if s.q.Push(p) == clients.Full {
		// Never close inline: Send runs inside broadcast loops.
		go s.Close(clients.ReasonQueueFull)
	}
}

// onTimer drives heartbeats: it sends a ping, and closes the session when
// the previous ping went unanswered.
func (s *session) onTimer() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.awaitingPong {
		s.mu.Unlock()
		s.Close(clients.ReasonPingTimeout)
		return
	}
	s.awaitingPong = true
	s.timer.Reset(s.srv.cfg.PingTimeout)
	s.mu.Unlock()
	s.q.Push(pingPacket)
}

func (s *session) onPong() {
	s.mu.Lock()
	if s.awaitingPong && !s.closed {
		s.awaitingPong = false
		s.timer.Reset(s.srv.cfg.PingInterval)
	}
	s.mu.Unlock()
}

// onMessage handles one Engine.IO packet from the peer. It returns false
// when the session must end (it has then been closed).
func (s *session) onMessage(data []byte, binary bool) bool {
	if closed, _ := s.isClosed(); closed {
		return false // what a peer sends after its close is not handled (nor logged)
	}
	if binary {
		if err := s.client.OnBinary(data); err != nil {
			s.protocolError(err)
			return false
		}
		return true
	}
	if len(data) == 0 {
		s.protocolError(errEmptyPacket)
		return false
	}
	switch data[0] {
	case '4':
		if err := s.client.OnText(data[1:]); err != nil {
			s.protocolError(err)
			return false
		}
	case '3':
		s.onPong()
	case '1':
		s.Close(clients.ReasonTransportClose)
		return false
	case '6', '2':
		// noop; a ping from a v3 client is not answered by a v4 server.
	default:
		s.protocolError(errUnknownPacket)
		return false
	}
	return true
}

func (s *session) protocolError(err error) {
	s.log().Info("closing connection on bad packet", zap.Error(err))
	if errors.Is(err, namespaces.ErrPacketTooLarge) {
		s.Close(clients.ReasonPayloadTooLarge)
		return
	}
	s.Close(clients.ReasonParseError)
}

// graceful reasons flush what is queued before the connection ends.
func graceful(r clients.Reason) bool {
	return r == clients.ReasonServerShutdown || r == clients.ReasonForcedServerClose
}

// Close ends the session; idempotent, returns at once.
func (s *session) Close(reason clients.Reason) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	s.mu.Unlock()
	// The socket layer ends first, saving the recovery session, while the
	// session is not yet marked closed, so no writer ends the transport yet:
	// a client that learns of the close and reconnects at once finds its
	// session saved.
	s.client.OnClose(reason)

	s.mu.Lock()
	s.closed = true
	s.reason = reason
	if s.timer != nil {
		s.timer.Stop()
	}
	ws := s.ws
	transport := s.transport
	s.postDone.Broadcast()
	s.mu.Unlock()

	s.srv.removeSession(s)
	s.srv.metrics.connOpen.Dec()
	s.srv.metrics.closes.WithLabelValues(reason.String()).Inc()
	if reason == clients.ReasonQueueFull || reason == clients.ReasonWriteTimeout {
		// Counted here, once per connection, whichever path found it slow.
		s.srv.metrics.slowCloses.WithLabelValues(reason.String()).Inc()
		s.log().Info("closing slow connection", zap.Stringer("reason", reason), zap.String("transport", transport))
	}
	if ce := s.srv.log.Check(zap.DebugLevel, "connection closed"); ce != nil {
		ce.Write(zap.String("cid", s.id), zap.Stringer("reason", reason), zap.String("transport", transport))
	}
	grace := s.srv.cfg.WriteTimeout
	if grace <= 0 {
		grace = DefaultWriteTimeout
	}
	switch {
	case graceful(reason) && s.q.Push(closeMarker) == clients.Queued:
		// A graceful close flushes, then ends, bounded by the write timeout.
		time.AfterFunc(grace, func() { s.hardStop() })
	case reason == clients.ReasonQueueFull:
		// The cut left a gap-free prefix of the stream queued (at most the
		// queue's bound, nothing more is accepted): the writer writes it and
		// ends the connection, bounded by the write timeout. Dropping it
		// instead would let a recovering client whose missed packets exceed
		// the bound make no progress at all: its replay fills the queue
		// before the writer runs.
		if ws != nil && transport == transportWebSocket && !s.q.Writing() {
			go ws.finish(s, reason, nil)
		}
		time.AfterFunc(grace, func() { s.hardStop() })
	default:
		wasWriting := s.q.Close()
		if ws != nil && transport == transportWebSocket && !wasWriting {
			go ws.finish(s, reason, nil)
		}
	}
	close(s.done)
	s.wakePoll()
}

// hardStop ends the transport without waiting any longer.
func (s *session) hardStop() {
	s.q.Close()
	s.mu.Lock()
	ws := s.ws
	s.mu.Unlock()
	if ws != nil {
		ws.conn.Close()
	}
}

func (s *session) isClosed() (bool, clients.Reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed, s.reason
}

// log is the logger of this connection. Made on demand: a logger with
// fields costs a buffer, too much to keep for every idle connection.
func (s *session) log() *zap.Logger { return s.srv.log.With(zap.String("cid", s.id)) }

// wakePoll signals a waiting polling GET.
func (s *session) wakePoll() {
	select {
	case s.pollWake <- struct{}{}:
	default:
	}
}

// engineError answers a bad Engine.IO request.
func engineError(w http.ResponseWriter, status, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"code": code, "message": engineMessages[code]})
	w.Write(b)
}

// serveEngine is the handler of the Engine.IO path.
func (srv *Server) serveEngine(w http.ResponseWriter, r *http.Request) {
	srv.cors(w, r)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
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
	if !srv.originAllowed(r) {
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
	if srv.limiter != nil && !srv.limiter.Allow() {
		srv.metrics.rejected.WithLabelValues("rate limit").Inc()
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many new connections, retry later", http.StatusServiceUnavailable)
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

// cors sets the CORS headers of an allowed origin. An origin listed in
// CORSOrigins is reflected with Access-Control-Allow-Credentials (cookies
// and HTTP auth); any other origin allowed by "*" (or an empty list) gets
// Access-Control-Allow-Origin "*" and no credentials, so no page can make
// credentialed requests unless it is listed by name.
func (srv *Server) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || !srv.originAllowed(r) {
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	listed := false
	for _, o := range srv.cfg.CORSOrigins {
		if o == origin && o != "*" {
			listed = true
			break
		}
	}
	if listed {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	} else {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET,POST,OPTIONS")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		h.Set("Access-Control-Max-Age", strconv.Itoa(86400))
	}
}

// originAllowed: a request without Origin, any origin with "*" or an empty
// CORSOrigins, else an origin listed exactly.
func (srv *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(srv.cfg.CORSOrigins) == 0 {
		return true
	}
	for _, o := range srv.cfg.CORSOrigins {
		if o == "*" || o == origin {
			return true
		}
	}
	return false
}
