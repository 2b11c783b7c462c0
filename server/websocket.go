package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/roomcast/roomcast/clients"
)

var (
	errEmptyPacket   = errors.New("empty Engine.IO packet")
	errUnknownPacket = errors.New("unknown Engine.IO packet type")
	errBadUpgrade    = errors.New("unexpected packet during upgrade")
)

const (
	// Writes are batched up to this many bytes per system call (writev).
	maxWriteBatch = 256 << 10
	// maxIovecs is the most buffers one writev takes (Linux IOV_MAX).
	maxIovecs = 1024
	// maxFastRounds bounds how many batches a pool worker writes to one
	// connection before it moves on.
	maxFastRounds = 8
)

// wsConn is the WebSocket transport of a session. gorilla/websocket does the
// handshake and reads; frames out are written by our writer straight to the
// TCP connection, pre-framed (see clients.Frame), so that a broadcast's bytes
// are shared by all recipients, a batch goes out in one writev, and a write
// that times out can still be followed by a clean close frame.
type wsConn struct {
	conn   net.Conn
	ws     *websocket.Conn
	finish func(s *session, reason clients.Reason, rest net.Buffers)

	raw   syscall.RawConn // for writes that must not block; nil if unavailable
	once  sync.Once
	ended chan struct{} // closed when the read loop ends
}

var upgrader = websocket.Upgrader{
	// A small read buffer of our own: the 4 KiB one net/http hijacks with
	// would stay with every idle connection (measured: 3.7 KiB of the 10.4
	// KiB of heap per idle connection at 10,000). Writes bypass gorilla.
	ReadBufferSize:  1024,
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
	s.mu.Unlock()
	if !ok {
		engineError(w, http.StatusBadRequest, codeBadRequest)
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
		defer close(c.ended)
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
			f := clients.NewFrame(false, []byte("3probe"))
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
func (c *wsConn) readLoop(s *session) {
	defer close(c.ended)
	for {
		buf, binary, err := c.read()
		if err != nil {
			closed, _ := s.isClosed()
			if !closed {
				reason := clients.ReasonTransportClose
				var ce *websocket.CloseError
				switch {
				case errors.Is(err, websocket.ErrReadLimit):
					reason = clients.ReasonPayloadTooLarge
					s.log().Info("closing connection on oversized message", zap.Int("max_payload", s.srv.cfg.MaxPayload))
				case errors.As(err, &ce), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				default:
					reason = clients.ReasonTransportError
				}
				s.Close(reason)
			}
			c.conn.Close()
			return
		}
		ok := s.onMessage(buf.Bytes(), binary)
		release(buf)
		if !ok {
			// The session is closed; keep reading until the peer answers our
			// close frame or the grace period ends.
			c.conn.SetReadDeadline(time.Now().Add(time.Second))
		}
	}
}

// scratch is a writer's reusable space: it lets a pool worker write to
// thousands of connections with no allocation per message.
type scratch struct {
	entries []clients.Entry
	bufs    net.Buffers
	work    net.Buffers
}

// writeLoop drains the session's queue to the connection with blocking
// writes, on a goroutine of its own, until Take returns nothing.
func (c *wsConn) writeLoop(s *session) { c.drain(s, &scratch{}, false) }

// drain writes what the queue holds until Take returns nothing. A pool
// worker drains with fast set: its writes never block; when the socket
// cannot take a whole batch, drain hands the rest to a goroutine of the
// connection's own and returns. A worker also yields after a few rounds,
// so one busy connection cannot hold it.
func (c *wsConn) drain(s *session, sc *scratch, fast bool) {
	m := s.srv.metrics
	for round := 0; ; round++ {
		if fast && round == maxFastRounds {
			// The queue stays marked busy, so this connection is still
			// ours: requeue it behind the others.
			s.srv.writers.submit(c, s)
			return
		}
		sc.entries = s.q.Take(sc.entries[:0])
		if len(sc.entries) == 0 {
			if closed, reason := s.isClosed(); closed {
				c.finish(s, reason, nil)
			}
			return
		}
		m.observeQueue(sc.entries)
		marker := false
		for i := range sc.entries {
			if sc.entries[i].Packet == closeMarker {
				marker = true
				sc.entries = sc.entries[:i]
				break
			}
		}
		if !c.writeEntries(s, sc, sc.entries, marker, fast) {
			return
		}
		if marker {
			_, reason := s.isClosed()
			c.finish(s, reason, nil)
			return
		}
	}
}

// writeEntries writes entries in batches of up to maxWriteBatch bytes. It
// returns false when the writer must stop: the connection failed, or (fast)
// the rest went to a goroutine of the connection's own.
func (c *wsConn) writeEntries(s *session, sc *scratch, entries []clients.Entry, marker, fast bool) bool {
	defer func() {
		clear(sc.bufs)
		sc.bufs = sc.bufs[:0]
	}()
	start, size := 0, 0
	for i := range entries {
		p := entries[i].Packet
		for j := range p.Frames {
			f := &p.Frames[j]
			sc.bufs = append(sc.bufs, f.WSHeader(), f.Data)
			size += len(f.WSHeader()) + len(f.Data)
		}
		if size < maxWriteBatch && i < len(entries)-1 {
			continue
		}
		if fast && c.raw != nil {
			n, err := c.tryWrite(sc.bufs)
			if err != nil {
				c.fail(s, err, nil)
				return false
			}
			if n < size {
				// The socket is full: the connection gets a writer of its
				// own, which may block, and the worker moves on.
				frame, skip := cutAt(sc.bufs, n)
				bufs := append(net.Buffers(nil), sc.bufs[2*frame:]...)
				batch := append([]clients.Entry(nil), entries[start:i+1]...)
				rest := append([]clients.Entry(nil), entries[i+1:]...)
				go c.slow(s, bufs, skip, batch, rest, marker)
				return false
			}
		} else {
			sc.work = append(sc.work[:0], sc.bufs...)
			if rest, err := c.write(sc.bufs, sc.work, 0, s.srv.cfg.WriteTimeout); err != nil {
				c.fail(s, err, rest)
				return false
			}
		}
		clear(sc.bufs)
		sc.bufs = sc.bufs[:0]
		s.srv.metrics.observeSent(entries[start : i+1])
		start, size = i+1, 0
	}
	return true
}

// slow finishes, with blocking writes, what a pool worker could not write
// at once, then goes on as the connection's own writer until the queue is
// empty.
func (c *wsConn) slow(s *session, bufs net.Buffers, skip int, batch, rest []clients.Entry, marker bool) {
	work := append(net.Buffers(nil), bufs...)
	if cut, err := c.write(bufs, work, skip, s.srv.cfg.WriteTimeout); err != nil {
		c.fail(s, err, cut)
		return
	}
	s.srv.metrics.observeSent(batch)
	sc := &scratch{}
	if !c.writeEntries(s, sc, rest, marker, false) {
		return
	}
	if marker {
		_, reason := s.isClosed()
		c.finish(s, reason, nil)
		return
	}
	c.drain(s, sc, false)
}

// cutAt locates byte n of bufs (header, payload pairs): the frame it falls
// in and how many of that frame's bytes come before it.
func cutAt(bufs net.Buffers, n int) (frame, skip int) {
	for i := 0; i+1 < len(bufs); i += 2 {
		l := len(bufs[i]) + len(bufs[i+1])
		if n < l {
			return i / 2, n
		}
		n -= l
	}
	return len(bufs) / 2, 0
}

// tryWrite writes what the socket takes now, without waiting: writev on
// the raw descriptor until everything is written or EAGAIN.
func (c *wsConn) tryWrite(bufs net.Buffers) (int, error) {
	written := 0
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for i := 0; i < len(bufs); {
			j := min(i+maxIovecs, len(bufs))
			want := 0
			for _, b := range bufs[i:j] {
				want += len(b)
			}
			n, err := unix.Writev(int(fd), bufs[i:j])
			if n > 0 {
				written += n
			}
			switch {
			case err == unix.EINTR && n <= 0:
				continue
			case err == unix.EAGAIN:
				return true
			case err != nil:
				werr = err
				return true
			case n < want:
				return true // the socket took what it could
			}
			i = j
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return written, err
}

// write writes bufs (alternating frame headers and payloads, of which the
// first skip bytes are written already) within the write timeout, through
// work, a copy of bufs that the write consumes. On error it returns the
// unwritten rest of the frame that was cut, which must go out before a
// close frame for the peer to still parse the stream.
func (c *wsConn) write(bufs, work net.Buffers, skip int, timeout time.Duration) (rest net.Buffers, err error) {
	if timeout > 0 {
		c.conn.SetWriteDeadline(time.Now().Add(timeout))
	}
	pending := work
	for skip > 0 && len(pending) > 0 {
		if skip < len(pending[0]) {
			pending[0] = pending[0][skip:]
			break
		}
		skip -= len(pending[0])
		pending = pending[1:]
	}
	if _, err = pending.WriteTo(c.conn); err == nil {
		if timeout > 0 {
			// A deadline left behind would fail the pool's non-blocking
			// writes (tryWrite) once it passes.
			c.conn.SetWriteDeadline(time.Time{})
		}
		return nil, nil
	}
	// WriteTo consumed what it wrote: pending starts at the first buffer
	// not fully written.
	done := len(bufs) - len(pending)
	if len(pending) > 0 {
		if done%2 == 0 { // at or inside a header
			if len(pending[0]) != len(bufs[done]) {
				rest = append(rest, pending[0], pending[1])
			}
		} else { // inside a payload
			rest = append(rest, pending[0])
		}
	}
	return rest, err
}

func (c *wsConn) fail(s *session, err error, rest net.Buffers) {
	reason := clients.ReasonTransportError
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		reason = clients.ReasonWriteTimeout
	}
	if closed, r := s.isClosed(); closed {
		reason = r
	} else {
		s.Close(reason) // the queue is active, so Close leaves the finish to us
	}
	c.finish(s, reason, rest)
}

// doFinish writes the close frame (after the rest of a cut frame) and ends
// the connection. It runs once.
func (c *wsConn) doFinish(s *session, reason clients.Reason, rest net.Buffers) {
	c.once.Do(func() {
		payload := websocket.FormatCloseMessage(reason.WSCloseCode(), closeText(reason))
		closeFrame := clients.NewFrame(false, payload)
		hdr := closeFrame.WSHeader()
		hdr[0] = 0x80 | websocket.CloseMessage
		grace := s.srv.cfg.WriteTimeout
		if grace <= 0 {
			grace = DefaultWriteTimeout
		}
		c.conn.SetWriteDeadline(time.Now().Add(grace))
		out := append(rest, hdr, closeFrame.Data)
		if _, err := out.WriteTo(c.conn); err != nil {
			c.conn.Close()
			return
		}
		// Let the peer read everything, then let the read loop see its
		// close (or give up after a second).
		if tc, ok := c.conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		c.conn.SetReadDeadline(time.Now().Add(time.Second))
		time.AfterFunc(2*time.Second, func() { c.conn.Close() })
	})
}

// closeText is the close frame's reason text.
func closeText(r clients.Reason) string {
	switch r {
	case clients.ReasonQueueFull, clients.ReasonWriteTimeout, clients.ReasonPayloadTooLarge, clients.ReasonParseError, clients.ReasonPingTimeout:
		return r.String()
	}
	return ""
}
