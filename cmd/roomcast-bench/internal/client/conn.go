package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/wire"
)

// Defaults of Options.
const (
	DefaultPath             = "/socket.io/"
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	// DefaultReadBufferSize is the WebSocket read buffer per connection:
	// bench messages are ~150 bytes, so 1 KiB keeps 10k connections at
	// ~10 MiB of buffers.
	DefaultReadBufferSize = 1024
	writeBufferSize       = 1024
	// pingGrace is added to pingInterval+pingTimeout before the reader
	// declares a silent server dead.
	pingGrace = 5 * time.Second
)

// Errors a connection ends with.
var (
	ErrServerClose      = errors.New("client: server closed the engine.io session")
	ErrServerDisconnect = errors.New("client: server disconnected the socket")
	ErrUnexpected       = errors.New("client: unexpected packet")
)

// ConnectError is the server's refusal of the Socket.IO CONNECT.
type ConnectError struct{ Data string }

func (e *ConnectError) Error() string { return "client: connect_error " + e.Data }

// Options configure a Dialer. The zero value of each field is its default.
type Options struct {
	// URL is the server, "http://host:port" or "ws://host:port"; its path is
	// ignored in favour of Path.
	URL string
	// Path is the Engine.IO path; default DefaultPath.
	Path string
	// Namespace to CONNECT to; default "/".
	Namespace string
	// Auth is the raw JSON object sent with CONNECT, e.g. {"token":"…"};
	// nil sends none.
	Auth []byte
	// HandshakeTimeout bounds WebSocket upgrade + open + CONNECT; default
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds each write; default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// ReadBufferSize is the WebSocket read buffer; default
	// DefaultReadBufferSize.
	ReadBufferSize int
	// ReceiveBuffer, when > 0, sets the socket's SO_RCVBUF in bytes (the
	// kernel doubles it); 0 keeps the autotuned default.
	ReceiveBuffer int
}

// Dialer opens connections with shared options. Safe for concurrent use.
type Dialer struct {
	url    string
	nsp    string
	auth   []byte
	hsTO   time.Duration
	wTO    time.Duration
	ws     *websocket.Dialer
	wbPool sync.Pool
}

// NewDialer checks opts and returns a Dialer.
func NewDialer(opts Options) (*Dialer, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("client: url: %w", err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("client: url %q: scheme must be http, https, ws or wss", opts.URL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("client: url %q has no host", opts.URL)
	}
	u.Path = opts.Path
	if u.Path == "" {
		u.Path = DefaultPath
	}
	u.RawQuery = "EIO=4&transport=websocket"
	d := &Dialer{
		url:  u.String(),
		nsp:  opts.Namespace,
		auth: opts.Auth,
		hsTO: opts.HandshakeTimeout,
		wTO:  opts.WriteTimeout,
	}
	if d.nsp == "" {
		d.nsp = "/"
	}
	if !strings.HasPrefix(d.nsp, "/") {
		return nil, fmt.Errorf("client: namespace %q must start with /", d.nsp)
	}
	if d.hsTO <= 0 {
		d.hsTO = DefaultHandshakeTimeout
	}
	if d.wTO <= 0 {
		d.wTO = DefaultWriteTimeout
	}
	rb := opts.ReadBufferSize
	if rb <= 0 {
		rb = DefaultReadBufferSize
	}
	nd := &net.Dialer{}
	if opts.ReceiveBuffer > 0 {
		nd.Control = setReceiveBuffer(opts.ReceiveBuffer)
	}
	d.ws = &websocket.Dialer{
		NetDialContext:   nd.DialContext,
		HandshakeTimeout: d.hsTO,
		ReadBufferSize:   rb,
		WriteBufferSize:  writeBufferSize,
		WriteBufferPool:  &d.wbPool,
	}
	return d, nil
}

// URL returns the WebSocket URL the Dialer connects to.
func (d *Dialer) URL() string { return d.url }

// Handler receives what a connection reads. Both methods run on the
// connection's reader goroutine, must not block, and must not keep name or
// args after returning (they alias a reused buffer).
type Handler interface {
	// HandleEvent gets each event of the namespace: its name and the raw
	// JSON of its arguments ("a1,a2"; empty for none).
	HandleEvent(name, args []byte)
	// HandleAck gets each ack of the namespace: the id and the raw JSON
	// array of its arguments.
	HandleAck(id int64, args []byte)
}

// Conn is one Socket.IO connection.
type Conn struct {
	ws   *websocket.Conn
	h    Handler
	nsp  string
	wTO  time.Duration
	open wire.Open
	sid  string // socket.io sid from the CONNECT ack

	wmu  sync.Mutex
	wbuf []byte

	paused  atomic.Bool
	resume  chan struct{} // one token per ResumeReading
	dropped atomic.Int64  // frames dropped because reading was stopped
	closing atomic.Bool
	once    sync.Once
	done    chan struct{}
}

// Dial connects one client and completes its CONNECT. ctx bounds the whole
// handshake together with Options.HandshakeTimeout.
func (d *Dialer) Dial(ctx context.Context, h Handler) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.hsTO)
	defer cancel()
	ws, resp, err := d.ws.DialContext(ctx, d.url, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	c := &Conn{ws: ws, h: h, nsp: d.nsp, wTO: d.wTO, done: make(chan struct{}), resume: make(chan struct{}, 1)}
	if err := c.handshake(ctx, d.auth); err != nil {
		_ = ws.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) handshake(ctx context.Context, auth []byte) error {
	deadline, _ := ctx.Deadline()
	if err := c.ws.NetConn().SetDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.ws.NetConn().SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var buf []byte
	var err error
	if buf, err = c.readFrame(buf); err != nil {
		return fmt.Errorf("client: read open: %w", err)
	}
	t, data, err := wire.DecodeEngine(buf)
	if err != nil {
		return err
	}
	if t != wire.EngineOpen {
		return fmt.Errorf("%w: engine.io type %c before open", ErrUnexpected, t)
	}
	if c.open, err = wire.DecodeOpen(data); err != nil {
		return err
	}
	if c.open.MaxPayload > 0 {
		c.ws.SetReadLimit(int64(c.open.MaxPayload) + 64)
	}
	msg := append([]byte{byte(wire.EngineMessage)}, wire.AppendHeader(nil, wire.Connect, c.nsp, wire.NoID)...)
	msg = append(msg, auth...)
	if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		return fmt.Errorf("client: write connect: %w", err)
	}
	for i := 0; ; i++ {
		if i > 100 {
			return fmt.Errorf("%w: no CONNECT ack within 100 packets", ErrUnexpected)
		}
		if buf, err = c.readFrame(buf[:0]); err != nil {
			return fmt.Errorf("client: read connect ack: %w", err)
		}
		t, data, err := wire.DecodeEngine(buf)
		if err != nil {
			return err
		}
		switch t {
		case wire.EnginePing:
			if err := c.ws.WriteMessage(websocket.TextMessage, []byte{byte(wire.EnginePong)}); err != nil {
				return err
			}
			continue
		case wire.EngineClose:
			return ErrServerClose
		case wire.EngineMessage:
		default:
			continue
		}
		p, err := wire.Decode(data)
		if err != nil {
			return err
		}
		if p.Nsp != c.nsp {
			continue
		}
		switch p.Type {
		case wire.Connect:
			var ack struct {
				SID string `json:"sid"`
			}
			_ = json.Unmarshal(p.Data, &ack)
			c.sid = ack.SID
			if err := c.ws.NetConn().SetWriteDeadline(time.Time{}); err != nil {
				return err
			}
			return c.ws.NetConn().SetReadDeadline(time.Now().Add(c.silence()))
		case wire.ConnectError:
			return &ConnectError{Data: string(p.Data)}
		default:
			return fmt.Errorf("%w: socket.io type %d before CONNECT ack", ErrUnexpected, p.Type)
		}
	}
}

// silence is how long the reader waits for any frame before giving up.
func (c *Conn) silence() time.Duration {
	return time.Duration(c.open.PingInterval+c.open.PingTimeout)*time.Millisecond + pingGrace
}

// readFrame reads one text frame into buf[:0] (grown as needed); binary
// frames come back empty.
func (c *Conn) readFrame(buf []byte) ([]byte, error) {
	mt, r, err := c.ws.NextReader()
	if err != nil {
		return buf[:0], err
	}
	buf = buf[:0]
	if mt != websocket.TextMessage {
		_, err = io.Copy(io.Discard, r)
		return buf, err
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Open returns the server's Engine.IO handshake.
func (c *Conn) Open() wire.Open { return c.open }

// SID returns the Socket.IO session id from the CONNECT ack.
func (c *Conn) SID() string { return c.sid }

// ReadLoop reads until the connection ends: it answers pings and passes
// events and acks of the namespace to the Handler. It returns nil after
// Close, otherwise why the connection ended.
func (c *Conn) ReadLoop() error {
	err := c.readLoop()
	if c.closing.Load() {
		return nil
	}
	_ = c.ws.Close()
	return err
}

func (c *Conn) readLoop() error {
	buf := make([]byte, 0, 256)
	var err error
	for {
		if c.paused.Load() {
			select {
			case <-c.done:
				return nil
			case <-c.resume:
				continue // paused again in the meantime? then wait again
			}
		}
		if buf, err = c.readFrame(buf); err != nil {
			return err
		}
		if c.paused.Load() {
			c.dropped.Add(1)
			continue // stopped while waiting for this frame: drop it
		}
		if len(buf) == 0 {
			continue // binary attachment: not used by the bench
		}
		t, data, err := wire.DecodeEngine(buf)
		if err != nil {
			return err
		}
		switch t {
		case wire.EnginePing:
			if err := c.ws.NetConn().SetReadDeadline(time.Now().Add(c.silence())); err != nil {
				return err
			}
			if err := c.write([]byte{byte(wire.EnginePong)}); err != nil {
				return err
			}
		case wire.EngineClose:
			return ErrServerClose
		case wire.EngineMessage:
			p, err := wire.Decode(data)
			if err != nil {
				return fmt.Errorf("client: decode %.64q: %w", data, err)
			}
			if p.Nsp != c.nsp {
				continue
			}
			switch p.Type {
			case wire.Event:
				name, args, err := wire.EventName(p.Data)
				if err != nil {
					return fmt.Errorf("client: event %.64q: %w", p.Data, err)
				}
				c.h.HandleEvent(name, args)
			case wire.Ack:
				c.h.HandleAck(p.ID, p.Data)
			case wire.Disconnect:
				return ErrServerDisconnect
			}
		}
	}
}

func (c *Conn) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(msg)
}

func (c *Conn) writeLocked(msg []byte) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.wTO)); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, msg)
}

// Emit sends event with args (each valid JSON) and no ack.
func (c *Conn) Emit(event string, args ...[]byte) error {
	return c.emit(wire.NoID, event, args)
}

// EmitAck sends event with args asking for an ack with the caller's id
// (>= 0); the ack reaches Handler.HandleAck. The caller picks ids so that it
// can record what an id stands for before the ack can arrive.
func (c *Conn) EmitAck(id int64, event string, args ...[]byte) error {
	if id < 0 {
		return fmt.Errorf("client: negative ack id %d", id)
	}
	return c.emit(id, event, args)
}

func (c *Conn) emit(id int64, event string, args [][]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], byte(wire.EngineMessage))
	b = wire.AppendHeader(b, wire.Event, c.nsp, id)
	b = wire.AppendEvent(b, event, args...)
	c.wbuf = b
	return c.writeLocked(b)
}

// StopReading makes the reader stop reading at its next frame (which it
// drops): the client then looks like a stalled consumer (it neither reads
// nor answers pings) until ResumeReading or Close.
func (c *Conn) StopReading() { c.paused.Store(true) }

// Dropped is the number of frames the reader dropped because reading was
// stopped when they arrived.
func (c *Conn) Dropped() int64 { return c.dropped.Load() }

// ResumeReading undoes StopReading: the reader reads on, and sees the
// server's close if the server gave up on the stalled client meanwhile.
func (c *Conn) ResumeReading() {
	if c.paused.CompareAndSwap(true, false) {
		select {
		case c.resume <- struct{}{}:
		default:
		}
	}
}

// Close ends the connection with a WebSocket close frame (best effort,
// 100 ms) and closes the socket. Idempotent.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		c.closing.Store(true)
		close(c.done)
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(100*time.Millisecond))
		err = c.ws.Close()
	})
	return err
}
