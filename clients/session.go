package clients

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

const (
	transportPolling   = "polling"
	transportWebSocket = "websocket"
)

// ErrTooLarge is what a Receiver's error wraps (or is) to close the
// connection with ReasonPayloadTooLarge rather than ReasonParseError.
var ErrTooLarge = errors.New("message too large")

// Shared immutable Engine.IO control packets.
var (
	pingPacket  = Text(Control, []byte("2"))
	noopPacket  = Text(Control, []byte("6"))
	closePacket = Text(Control, []byte("1"))
	// closeMarker, queued by a graceful close, tells the writer to end the
	// connection once everything before it is written.
	closeMarker = NewPacket(Control)
)

// session is one Engine.IO connection.
type session struct {
	srv  *Server
	id   string
	q    *Queue
	recv Receiver

	mu           sync.Mutex
	transport    string
	ws           *wsConn // set once on WebSocket
	upgrading    bool
	closing      bool // Close has begun
	closed       bool // Close has ended the socket layer; the transport may end
	reason       Reason
	byPeer       bool // the peer sent a close packet
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
		id:        NewID(),
		transport: transport,
		pollWake:  make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	s.postDone = sync.NewCond(&s.mu)
	s.q = NewQueue(srv.cfg.Queue, s.wakePoll, srv.stats)
	s.recv = srv.h.Open(s, r)
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
	s.q.Push(Text(Control, append([]byte("0"), open...)))
	s.mu.Lock()
	s.timer = time.AfterFunc(s.srv.cfg.PingInterval, s.onTimer)
	s.mu.Unlock()
	if f := s.srv.stats.Opened; f != nil {
		f()
	}
}

// ID, Send, Close and Transport make a session a Conn.
func (s *session) ID() string { return s.id }

func (s *session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport
}

func (s *session) Send(p *Packet) {
	if p == nil {
		return
	}
	if s.q.Push(p) == Full {
		// Never close inline: Send runs inside broadcast loops.
		go s.Close(ReasonQueueFull)
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
		s.Close(ReasonPingTimeout)
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

// msgResult is what became of a message from the peer.
type msgResult uint8

const (
	msgOK        msgResult = iota // handled; the session goes on
	msgEnd                        // the session has ended (closed by the peer, or before)
	msgBadData                    // the Receiver refused its data; the session is closed
	msgBadPacket                  // not an Engine.IO packet; the session is closed
)

// onMessage handles one Engine.IO packet from the peer.
func (s *session) onMessage(data []byte, binary bool) msgResult {
	if closed, _ := s.isClosed(); closed {
		return msgEnd // what a peer sends after its close is not handled (nor logged)
	}
	if binary {
		if err := s.recv.Binary(data); err != nil {
			s.protocolError(err)
			return msgBadData
		}
		return msgOK
	}
	if len(data) == 0 {
		s.protocolError(errEmptyPacket)
		return msgBadPacket
	}
	switch data[0] {
	case '4':
		if err := s.recv.Text(data[1:]); err != nil {
			s.protocolError(err)
			return msgBadData
		}
	case '3':
		s.onPong()
	case '1':
		s.mu.Lock()
		s.byPeer = true
		s.mu.Unlock()
		s.Close(ReasonTransportClose)
		return msgEnd
	case '6', '2':
		// noop; a ping from a v3 client is not answered by a v4 server.
	default:
		s.protocolError(errUnknownPacket)
		return msgBadPacket
	}
	return msgOK
}

func (s *session) protocolError(err error) {
	s.log().Info("closing connection on bad packet", zap.Error(err))
	if errors.Is(err, ErrTooLarge) {
		s.Close(ReasonPayloadTooLarge)
		return
	}
	s.Close(ReasonParseError)
}

// graceful reasons flush what is queued before the connection ends.
func graceful(r Reason) bool {
	return r == ReasonServerShutdown || r == ReasonForcedServerClose
}

// Close ends the session; idempotent, returns at once.
func (s *session) Close(reason Reason) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	s.mu.Unlock()
	// The receiver ends first (the socket layer saves its recovery
	// session), while the
	// session is not yet marked closed, so no writer ends the transport yet:
	// a client that learns of the close and reconnects at once finds its
	// session saved.
	s.recv.Close(reason)

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
	if f := s.srv.stats.Closed; f != nil {
		f(reason)
	}
	if reason == ReasonQueueFull || reason == ReasonWriteTimeout {
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
	case graceful(reason) && s.q.Push(closeMarker) == Queued:
		// A graceful close flushes, then ends, bounded by the write timeout.
		time.AfterFunc(grace, func() { s.hardStop() })
	case reason == ReasonQueueFull:
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

func (s *session) isClosed() (bool, Reason) {
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
