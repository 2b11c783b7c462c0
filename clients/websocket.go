package clients

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

var (
	errEmptyPacket   = errors.New("empty Engine.IO packet")
	errUnknownPacket = errors.New("unknown Engine.IO packet type")
	errBadUpgrade    = errors.New("unexpected packet during upgrade")
)

// wsConn is the WebSocket transport of a session. gorilla/websocket does the
// handshake and reads; frames out are written by our writer straight to the
// TCP connection, pre-framed (see Frame), so that a broadcast's bytes
// are shared by all recipients, a batch goes out in one writev, and a write
// that times out can still be followed by a clean close frame.
type wsConn struct {
	conn   net.Conn
	ws     *websocket.Conn
	finish func(s *session, reason Reason, rest net.Buffers)

	raw syscall.RawConn // for writes that must not block; nil if unavailable
	// shed is set once a read loop has handed reading to a fresh goroutine
	// (see readLoop); only the current reader touches it.
	shed  bool
	once  sync.Once
	ended chan struct{} // closed when the read loop ends
}

var upgrader = websocket.Upgrader{
	// A small read buffer of our own: the 4 KiB one net/http hijacks with
	// would stay with every idle connection (measured: 3.7 KiB of the 10.4
	// KiB of heap per idle connection at 10,000). 256 bytes hold a frame
	// header and a control frame (gorilla needs 125 + header); longer
	// payloads are read past it, straight into the message buffer, so 1024
	// only cost every idle connection 768 bytes more. Writes bypass gorilla.
	ReadBufferSize:  256,
	WriteBufferSize: 0,
	WriteBufferPool: &sync.Pool{},
	CheckOrigin:     func(*http.Request) bool { return true }, // checked before
}

func (srv *Server) upgradeWS(w http.ResponseWriter, r *http.Request) (*wsConn, error) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil, err // gorilla answered the request
	}
	ws.SetReadLimit(int64(srv.cfg.MaxPayload))
	// Our writer owns all writes: gorilla must not answer pings or closes
	// itself (a close is answered by our writer as the session ends).
	ws.SetPingHandler(func(string) error { return nil })
	ws.SetCloseHandler(func(int, string) error { return nil })
	c := &wsConn{conn: ws.NetConn(), ws: ws, ended: make(chan struct{})}
	srv.smu.Lock()
	srv.live[c] = struct{}{}
	srv.smu.Unlock()
	if sc, ok := c.conn.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.finish = c.doFinish
	return c, nil
}

// acceptWebSocket opens a session directly over WebSocket.
func (srv *Server) acceptWebSocket(w http.ResponseWriter, r *http.Request) {
	c, err := srv.upgradeWS(w, r)
	if err != nil {
		return
	}
	s := srv.newSession(transportWebSocket, r)
	s.ws = c
	s.q.SetWake(func() { s.srv.writers.submit(c, s) })
	srv.addSession(s)
	s.handshake()
	go c.readLoop(s)
}

// upgrade takes a polling session over to WebSocket: probe, pause, upgrade.
func (srv *Server) upgrade(w http.ResponseWriter, r *http.Request, s *session) {
	s.mu.Lock()
	ok := s.transport == transportPolling && !s.upgrading && !s.closed
	if ok {
		s.upgrading = true
	}
	closed := s.closed
	s.mu.Unlock()
	if !ok && closed {
		engineError(w, http.StatusBadRequest, codeBadRequest)
		return
	}
	if !ok {
		// A session that has a WebSocket, or is getting one: as Node's
		// engine.io, the new WebSocket is accepted and closed at once.
		c, err := srv.upgradeWS(w, r)
		if err != nil {
			return
		}
		f := NewFrame(false, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		hdr := f.WSHeader()
		hdr[0] = 0x80 | websocket.CloseMessage
		c.conn.SetWriteDeadline(time.Now().Add(srv.cfg.UpgradeTimeout))
		(&net.Buffers{hdr, f.Data}).WriteTo(c.conn)
		c.conn.Close()
		c.end(srv)
		return
	}
	c, err := srv.upgradeWS(w, r)
	if err != nil {
		s.mu.Lock()
		s.upgrading = false
		s.mu.Unlock()
		return
	}
	go c.probe(s)
}

// probe runs the upgrade handshake on the new WebSocket, then becomes its
// read loop.
func (c *wsConn) probe(s *session) {
	fail := func(err error) {
		defer c.end(s.srv)
		s.log().Debug("upgrade failed", zap.Error(err))
		s.mu.Lock()
		s.upgrading = false
		s.mu.Unlock()
		c.conn.Close()
	}
	c.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.UpgradeTimeout))
	for {
		buf, binary, err := c.read()
		if err != nil {
			fail(err)
			return
		}
		msg := buf.String()
		release(buf)
		switch {
		case !binary && msg == "2probe":
			f := NewFrame(false, []byte("3probe"))
			c.conn.SetWriteDeadline(time.Now().Add(s.srv.cfg.UpgradeTimeout))
			if _, err := (&net.Buffers{f.WSHeader(), f.Data}).WriteTo(c.conn); err != nil {
				fail(err)
				return
			}
			c.conn.SetWriteDeadline(time.Time{}) // see write
			// Release the client's pending GET so it can pause polling.
			s.q.Push(noopPacket)
		case !binary && msg == "5":
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				fail(errors.New("session closed during upgrade"))
				return
			}
			// From here POSTs are refused; one still running finishes
			// first, so the session has one reader at a time and the
			// packets of that POST come before those of the WebSocket.
			s.transport = transportWebSocket
			s.upgrading = false
			s.ws = c
			for s.postActive && !s.closed {
				s.postDone.Wait()
			}
			s.mu.Unlock()
			c.conn.SetReadDeadline(time.Time{})
			s.q.SetWake(func() { s.srv.writers.submit(c, s) })
			s.wakePoll() // a GET still waiting answers with a noop
			c.readLoop(s)
			return
		default:
			fail(errBadUpgrade)
			return
		}
	}
}

// end marks the connection's reading over.
func (c *wsConn) end(srv *Server) {
	srv.smu.Lock()
	delete(srv.live, c)
	srv.smu.Unlock()
	close(c.ended)
}

// readBufs lends message buffers to the read loops: an idle connection
// holds none.
var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// read waits for the next message and reads it into a lent buffer, which
// the caller gives back with release.
func (c *wsConn) read() (buf *bytes.Buffer, binary bool, err error) {
	mt, r, err := c.ws.NextReader()
	if err != nil {
		return nil, false, err
	}
	buf = readBufs.Get().(*bytes.Buffer)
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		release(buf)
		return nil, false, err
	}
	return buf, mt == websocket.BinaryMessage, nil
}

func release(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 { // do not pool what one large message grew
		readBufs.Put(buf)
	}
}

// readLoop reads until the connection ends, handing each message to the
// session in order.
//
// The handlers of a message run on this goroutine and may grow its stack
// (a Socket.IO connect does: 8 KiB); a goroutine keeps a grown stack until a
// garbage collection happens to shrink it, and an idle connection spends
// its life parked in the read below. So when handling a message moved the
// stack (the runtime copies a stack to grow it: the address of a local
// changes), reading goes on in a fresh goroutine with a small stack and
// this one ends: at once the first time (the connect), later at the next
// pong, so that a busy connection does not pay for a new goroutine and a
// regrown stack on every message (echo at 10,000 clients, noisy runs: 33.6
// µs of server CPU per message when every growth handed over, 27-29 µs
// with this rule and 28-31 µs before either), while one that
// went idle sheds its stack within a heartbeat. Measured at 3,000 idle
// connections: 8.4 -> 4.2 KiB of stack per connection, see BENCHMARKS.md
// ("Idle: 10,000 clients").
func (c *wsConn) readLoop(s *session) {
	var mark byte
	top := uintptr(unsafe.Pointer(&mark))
	grown := false
	for {
		buf, binary, err := c.read()
		if err != nil {
			closed, _ := s.isClosed()
			if !closed {
				reason := ReasonTransportClose
				var ce *websocket.CloseError
				switch {
				case errors.Is(err, websocket.ErrReadLimit):
					reason = ReasonPayloadTooLarge
					s.log().Info("closing connection on oversized message", zap.Int("max_payload", s.srv.cfg.MaxPayload))
				case errors.As(err, &ce), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				default:
					reason = ReasonTransportError
				}
				s.Close(reason)
			}
			c.conn.Close()
			c.end(s.srv)
			return
		}
		pong := !binary && buf.Len() == 1 && buf.Bytes()[0] == '3'
		res := s.onMessage(buf.Bytes(), binary)
		release(buf)
		if res != msgOK {
			// The session is closed; keep reading until the peer answers our
			// close frame or the grace period ends.
			c.conn.SetReadDeadline(time.Now().Add(time.Second))
		}
		grown = grown || uintptr(unsafe.Pointer(&mark)) != top
		if grown && (!c.shed || pong) {
			c.shed = true
			go c.readLoop(s) // one reader at a time: this one is done
			return
		}
	}
}
