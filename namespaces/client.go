package namespaces

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/clients"
)

// testHookConnecting, set by tests, runs when a socket is in its
// client's map but not yet ready.
var testHookConnecting func(*Client)

// Client is the socket layer of one connection: it decodes packets and
// routes them to the connection's sockets (one per namespace). It is the
// connection's clients.Receiver: its Text, Binary and Close methods are
// called by the transport, in order, one at a time.
type Client struct {
	srv          *Server
	conn         clients.Conn
	hs           Handshake
	connectTimer *time.Timer

	mu      sync.Mutex
	sockets map[string]*Socket
	closed  bool

	pending *packet // a binary packet waiting for its attachments
}

// Text handles an Engine.IO message carrying text (a socket.io packet).
// A returned error means the peer broke the protocol: the transport closes
// the connection with ReasonParseError (ReasonPayloadTooLarge for
// ErrPacketTooLarge).
func (c *Client) Text(data []byte) error {
	if c.srv.cfg.Parser == ParserMsgpack {
		return fmt.Errorf("%w: text message to the msgpack parser", errPacket)
	}
	if c.pending != nil {
		return fmt.Errorf("%w: text packet while binary attachments are pending", errPacket)
	}
	p, err := decodePacket(data)
	if err != nil {
		return err
	}
	if p.attachments > 0 {
		// Binary data is only taken from a client its namespace accepted:
		// nothing is held for a client that has not authenticated.
		c.mu.Lock()
		joined := c.sockets[p.nsp] != nil
		c.mu.Unlock()
		if !joined {
			return fmt.Errorf("%w: binary packet for a namespace the client is not connected to", errPacket)
		}
		p.size = len(p.data)
		if err := c.checkSize(p.size); err != nil {
			return err
		}
		p.data = append([]byte(nil), p.data...) // the transport reuses its buffer
		p.bins = make([][]byte, 0, p.attachments)
		c.pending = &p
		return nil
	}
	return c.dispatch(&p)
}

// Binary handles an Engine.IO message carrying a binary attachment.
func (c *Client) Binary(data []byte) error {
	if c.srv.cfg.Parser == ParserMsgpack {
		// One packet per message: the transport has bounded its size
		// (MaxPacketSize bounds it too, as a packet with attachments).
		if err := c.checkSize(len(data)); err != nil {
			return err
		}
		p, err := decodeMsgpackPacket(data)
		if err != nil {
			return err
		}
		return c.dispatch(&p)
	}
	p := c.pending
	if p == nil {
		return fmt.Errorf("%w: unexpected binary attachment", errPacket)
	}
	p.size += len(data)
	if err := c.checkSize(p.size); err != nil {
		c.pending = nil
		return err
	}
	p.bins = append(p.bins, append([]byte(nil), data...))
	if len(p.bins) < p.attachments {
		return nil
	}
	c.pending = nil
	return c.dispatch(p)
}

// checkSize bounds a packet being received: its text and attachments.
func (c *Client) checkSize(n int) error {
	if max := c.srv.cfg.MaxPacketSize; max > 0 && n > max {
		return fmt.Errorf("%w: packet with attachments over %d bytes", ErrPacketTooLarge, max)
	}
	return nil
}

func (c *Client) dispatch(p *packet) error {
	if p.typ == typeConnect {
		// The namespace is held while the CONNECT runs, so a dynamic one
		// is not removed under it; refused, it goes with the release.
		n, err := c.srv.lookup(p.nsp, true)
		if errors.Is(err, ErrTooManyNamespaces) {
			c.connectError(p.nsp, err)
			return nil
		}
		c.connect(p)
		if n != nil {
			c.srv.release(n)
		}
		return nil
	}
	c.mu.Lock()
	s := c.sockets[p.nsp]
	c.mu.Unlock()
	if s == nil {
		// A packet for a namespace this client is not in: ignored, as the
		// reference server does (it may race with a disconnect).
		return nil
	}
	switch p.typ {
	case typeDisconnect:
		c.detach(s)
		s.closeWith(ReasonClientNamespaceDisconnect)
	case typeEvent, typeBinaryEvent:
		return s.handleEvent(p)
	case typeAck, typeBinaryAck:
		args, err := p.args()
		if err != nil {
			return err
		}
		s.acks.Resolve(p.id, args)
	}
	return nil
}

func (c *Client) connectError(nsp string, err error) {
	payload := map[string]any{"message": err.Error()}
	var ce *ConnectError
	if errors.As(err, &ce) && ce.Data != nil {
		payload["data"] = ce.Data
	}
	// Counted before it is sent: whoever sees the answer sees the count.
	if h := c.srv.cfg.Hooks.ConnectError; h != nil {
		h(nsp, err)
	}
	n := &Namespace{name: nsp, srv: c.srv}
	pkt, perr := n.valuePacket(typeConnectError, -1, payload, false, "")
	if perr != nil { // Data that cannot be encoded: the message alone
		pkt, _ = n.valuePacket(typeConnectError, -1, map[string]any{"message": err.Error()}, false, "")
	}
	c.conn.Send(pkt)
}

// connect runs a CONNECT: namespace lookup, recovery, middleware, and the
// registration of the socket before its CONNECT is answered.
//
// As in the reference server (socket.io 4.8 Namespace._add), the session is
// restored before the middleware runs, so middleware sees the socket as it
// will be: its recovered id, data and rooms, and Recovered() true. Unlike
// the reference, a refused CONNECT does not cost the client its session: it
// goes back to the adapter, with its original end of window, before the
// socket leaves its rooms, and a later CONNECT (a refreshed token) within
// the window restores it with everything missed, including what was sent
// during the refused attempt.
func (c *Client) connect(p *packet) {
	n := c.srv.Lookup(p.nsp)
	if n == nil {
		c.connectError(p.nsp, ErrInvalidNamespace)
		return
	}
	c.mu.Lock()
	if c.closed || c.sockets[p.nsp] != nil {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	auth := map[string]any{}
	if p.decoded {
		if p.auth != nil {
			auth = p.auth
		}
	} else if len(p.data) > 0 {
		if err := json.Unmarshal(p.data, &auth); err != nil || auth == nil {
			auth = map[string]any{}
		}
	}
	hs := c.hs
	hs.Auth = auth

	var s *Socket
	var missed []*adapter.Message
	var restored *adapter.Session
	pid, _ := auth["pid"].(string)
	offset, _ := auth["offset"].(string)
	if pid != "" && c.srv.cfg.RecoveryWindow > 0 {
		restored = n.adapter.RestoreSession(pid, offset, func(sess *adapter.Session) {
			s = c.newSocket(n, sess.ID, sess.PID, hs)
			s.recovered = true
			s.base = sess.Base
			if m, ok := sess.Data.(map[string]any); ok {
				s.data = maps.Clone(m) // the session may be put back as it was
			}
			n.add(s)
		})
		if restored != nil {
			missed = restored.Missed
		}
	}
	if s == nil {
		s = c.newSocket(n, c.srv.newID(), "", hs)
		if c.srv.cfg.RecoveryWindow > 0 {
			s.pid = c.srv.newID()
			s.base = n.adapter.Offset()
		}
		n.add(s)
		n.adapter.Join(s.id, s.id)
	}

	n.mu.RLock()
	mws := n.connectMW
	n.mu.RUnlock()
	for _, mw := range mws {
		if err := mw(s); err != nil {
			s.mu.Lock()
			s.closed = true
			s.early = nil
			s.mu.Unlock()
			if restored != nil {
				n.adapter.SaveSession(restored)
			}
			n.remove(s)
			n.adapter.LeaveAll(s.id)
			c.connectError(p.nsp, err)
			return
		}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		if restored != nil {
			n.adapter.SaveSession(restored) // gone while connecting: it may come back
		}
		n.remove(s)
		n.adapter.LeaveAll(s.id)
		return
	}
	s.mu.Lock()
	s.restored = restored
	s.mu.Unlock()
	c.sockets[p.nsp] = s
	c.mu.Unlock()
	if testHookConnecting != nil {
		testHookConnecting(c)
	}
	if c.connectTimer != nil {
		c.connectTimer.Stop()
	}
	s.connected(missed, offset)
	if h := c.srv.cfg.Hooks.Connect; h != nil {
		h(n.name)
	}
	if h := c.srv.cfg.Hooks.SocketConnected; h != nil {
		h(s)
	}
	if ce := n.log.Check(zap.DebugLevel, "socket connected"); ce != nil {
		ce.Write(zap.String("sid", s.id), zap.Bool("recovered", s.recovered), zap.Int("missed", len(missed)))
	}
	n.mu.RLock()
	handlers := n.onConnect
	n.mu.RUnlock()
	for _, fn := range handlers {
		fn(s)
	}
}

func (c *Client) newSocket(n *Namespace, id, pid string, hs Handshake) *Socket {
	return &Socket{id: id, pid: pid, nsp: n, client: c, handshake: hs}
}

// detach forgets a socket that left its namespace.
func (c *Client) detach(s *Socket) {
	c.mu.Lock()
	if c.sockets[s.nsp.name] == s {
		delete(c.sockets, s.nsp.name)
	}
	c.mu.Unlock()
}

// Close ends every socket of the connection with the connection's reason.
func (c *Client) Close(r clients.Reason) {
	reason := ReasonOf(r)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	socks := c.sockets
	c.sockets = nil
	c.mu.Unlock()
	if c.connectTimer != nil {
		c.connectTimer.Stop()
	}
	for _, s := range socks {
		s.closeWith(reason)
	}
}

// Sockets lists the connection's sockets.
func (c *Client) Sockets() []*Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Socket, 0, len(c.sockets))
	for _, s := range c.sockets {
		out = append(out, s)
	}
	return out
}

// Open attaches the socket layer to a new connection: Server is the
// clients.Handler of the connection layer.
func (s *Server) Open(conn clients.Conn, r *http.Request) clients.Receiver {
	return s.NewClient(conn, r)
}
