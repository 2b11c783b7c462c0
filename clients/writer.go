package clients

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// A connection's writes have one owner at a time. Everything else only
// pushes packets to its Queue, which never blocks; the queue asks for a
// writer (its wake function) when data arrives while none is active:
//
//   - over WebSocket, the pool below: a worker writes what the socket takes
//     without blocking (drain, fast); when the socket is full the
//     connection gets a goroutine of its own (slow), which may block within
//     the write timeout, then goes on draining until the queue is empty;
//   - over polling, the pending GET (polling.go).
//
// A write that fails or times out ends the connection (fail); its last
// act is finish, which writes the rest of a cut frame and the close frame.
// A queue cut by the Disconnect policy keeps a gap-free prefix of the
// stream, which the writer writes before the close (see session.Close).

// writers is the server's pool of WebSocket writers. A connection whose
// queue gets data is handed to a worker, which writes what the socket takes
// without blocking; only a connection whose socket is full gets a goroutine
// of its own. So a broadcast to 10,000 idle sockets starts no goroutine per
// recipient, and a slow client never holds a worker.
type writers struct {
	jobs chan writeJob
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

type writeJob struct {
	c *wsConn
	s *session
}

func newWriters() *writers {
	w := &writers{jobs: make(chan writeJob, 1<<16), done: make(chan struct{})}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	w.wg.Add(n)
	for range n {
		go w.work()
	}
	return w
}

func (w *writers) work() {
	defer w.wg.Done()
	var sc scratch
	for {
		select {
		case j := <-w.jobs:
			j.c.drain(j.s, &sc, true)
		case <-w.done:
			return
		}
	}
}

// submit hands a connection with queued data to a worker; when the pool is
// stopped or its queue is full, the connection gets its own goroutine.
func (w *writers) submit(c *wsConn, s *session) {
	select {
	case <-w.done:
		go c.writeLoop(s)
		return
	default:
	}
	select {
	case w.jobs <- writeJob{c, s}:
	default:
		go c.writeLoop(s)
	}
}

// stop ends the workers; connections still queued get goroutines of their
// own.
func (w *writers) stop() {
	w.once.Do(func() {
		close(w.done)
		w.wg.Wait()
		for {
			select {
			case j := <-w.jobs:
				go j.c.writeLoop(j.s)
			default:
				return
			}
		}
	})
}

const (
	// Writes are batched up to this many bytes per system call (writev).
	maxWriteBatch = 256 << 10
	// maxIovecs is the most buffers one writev takes (Linux IOV_MAX).
	maxIovecs = 1024
	// maxFastRounds bounds how many batches a pool worker writes to one
	// connection before it moves on.
	maxFastRounds = 8
)

// scratch is a writer's reusable space: it lets a pool worker write to
// thousands of connections with no allocation per message.
type scratch struct {
	entries []Entry
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
		s.srv.stats.taken(sc.entries)
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
func (c *wsConn) writeEntries(s *session, sc *scratch, entries []Entry, marker, fast bool) bool {
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
				batch := append([]Entry(nil), entries[start:i+1]...)
				rest := append([]Entry(nil), entries[i+1:]...)
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
		s.srv.stats.sent(entries[start : i+1])
		start, size = i+1, 0
	}
	return true
}

// slow finishes, with blocking writes, what a pool worker could not write
// at once, then goes on as the connection's own writer until the queue is
// empty.
func (c *wsConn) slow(s *session, bufs net.Buffers, skip int, batch, rest []Entry, marker bool) {
	work := append(net.Buffers(nil), bufs...)
	if cut, err := c.write(bufs, work, skip, s.srv.cfg.WriteTimeout); err != nil {
		c.fail(s, err, cut)
		return
	}
	s.srv.stats.sent(batch)
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
	reason := ReasonTransportError
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		reason = ReasonWriteTimeout
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
func (c *wsConn) doFinish(s *session, reason Reason, rest net.Buffers) {
	c.once.Do(func() {
		payload := websocket.FormatCloseMessage(reason.WSCloseCode(), closeText(reason))
		closeFrame := NewFrame(false, payload)
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
func closeText(r Reason) string {
	switch r {
	case ReasonQueueFull, ReasonWriteTimeout, ReasonPayloadTooLarge, ReasonParseError, ReasonPingTimeout:
		return r.String()
	}
	return ""
}
