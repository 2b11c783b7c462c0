package server

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/roomcast/roomcast/clients"
)

// cutConn accepts limit bytes, then fails every write with a timeout.
type cutConn struct {
	net.Conn
	limit int
	got   bytes.Buffer
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (c *cutConn) Write(b []byte) (int, error) {
	n := min(len(b), c.limit-c.got.Len())
	c.got.Write(b[:n])
	if n < len(b) {
		return n, timeoutErr{}
	}
	return n, nil
}
func (c *cutConn) SetWriteDeadline(time.Time) error { return nil }

// After a write cut at any byte, what was written plus the returned rest
// is a whole number of frames: the peer can parse up to the close frame.
func TestWriteCutKeepsFramesWhole(t *testing.T) {
	frames := []clients.Frame{
		clients.NewFrame(false, []byte("42[\"a\"]")),
		clients.NewFrame(false, bytes.Repeat([]byte("x"), 300)), // 4-byte header
		clients.NewFrame(true, []byte{1, 2, 3}),
	}
	var bufs net.Buffers
	var whole bytes.Buffer
	for i := range frames {
		bufs = append(bufs, frames[i].WSHeader(), frames[i].Data)
		whole.Write(frames[i].WSHeader())
		whole.Write(frames[i].Data)
	}
	for cut := 0; cut < whole.Len(); cut++ {
		conn := &cutConn{limit: cut}
		c := &wsConn{conn: conn}
		work := append(net.Buffers(nil), bufs...)
		rest, err := c.write(bufs, work, time.Second)
		var te interface{ Timeout() bool }
		if !errors.As(err, &te) {
			t.Fatalf("cut %d: err %v", cut, err)
		}
		for _, b := range rest {
			conn.got.Write(b)
		}
		n := conn.got.Len()
		boundaries := map[int]bool{0: true}
		off := 0
		for i := range frames {
			off += len(frames[i].WSHeader()) + len(frames[i].Data)
			boundaries[off] = true
		}
		if !boundaries[n] || !bytes.Equal(conn.got.Bytes(), whole.Bytes()[:n]) || n < cut {
			t.Fatalf("cut %d: stream of %d bytes does not end on a frame boundary", cut, n)
		}
	}
}
