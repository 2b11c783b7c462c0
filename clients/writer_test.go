package clients

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"
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
	frames := []Frame{
		NewFrame(false, []byte("42[\"a\"]")),
		NewFrame(false, bytes.Repeat([]byte("x"), 300)), // 4-byte header
		NewFrame(true, []byte{1, 2, 3}),
	}
	var bufs net.Buffers
	var whole bytes.Buffer
	for i := range frames {
		bufs = append(bufs, frames[i].WSHeader(), frames[i].Data)
		whole.Write(frames[i].WSHeader())
		whole.Write(frames[i].Data)
	}
	for cut := 0; cut < whole.Len(); cut++ {
		// What a non-blocking write got out first (skip bytes, within the
		// first frame cutAt names), then a blocking write that is cut.
		frame, skip := cutAt(bufs, cut/2)
		if frame != 0 {
			continue
		}
		conn := &cutConn{limit: cut}
		conn.got.Write(whole.Bytes()[:skip])
		c := &wsConn{conn: conn}
		work := append(net.Buffers(nil), bufs...)
		rest, err := c.write(bufs, work, skip, time.Second)
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
			t.Fatalf("cut %d (skip %d): stream of %d bytes does not end on a frame boundary", cut, skip, n)
		}
	}
}

func TestCutAt(t *testing.T) {
	bufs := net.Buffers{[]byte("hh"), []byte("dddd"), []byte("hh"), []byte("dd")}
	for n, want := range map[int][2]int{0: {0, 0}, 1: {0, 1}, 5: {0, 5}, 6: {1, 0}, 9: {1, 3}, 10: {2, 0}} {
		if f, s := cutAt(bufs, n); f != want[0] || s != want[1] {
			t.Fatalf("cutAt(%d) = %d, %d; want %v", n, f, s, want)
		}
	}
}
