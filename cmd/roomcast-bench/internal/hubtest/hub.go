// Package hubtest is a tiny in-process Engine.IO / Socket.IO hub for the
// tests of roomcast-bench: WebSocket transport only, the hub protocol of
// README.md (join, leave, publish, echo) on namespace "/", POST
// /api/v1/emit, and server pings. It exists so that the bench's tests do not
// depend on the real server; it is not a reference for behaviour.
//
// Servers started on the same Hub share rooms, which stands in for two nodes
// joined by a backplane (the cross-node scenario).
package hubtest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/wire"
)

// Options configure a Hub.
type Options struct {
	// PingInterval between server pings; default 25 s.
	PingInterval time.Duration
	// PingTimeout announced in the handshake; default 20 s.
	PingTimeout time.Duration
	// Token, when set, is the auth.token a CONNECT must carry.
	Token string
	// WriteTimeout closes a connection whose write takes longer; default 5 s.
	WriteTimeout time.Duration
	// SendBuffer, when > 0, sets SO_SNDBUF of accepted connections, bytes,
	// so that a stalled reader blocks the hub's writes early.
	SendBuffer int
}

// Hub is the shared state of one or more stub servers.
type Hub struct {
	opts  Options
	mu    sync.Mutex
	rooms map[string]map[*conn]struct{}
	conns map[*conn]struct{}
	seq   atomic.Int64
	pongs atomic.Int64
	wg    sync.WaitGroup
}

// New returns a Hub; start servers on it with Start.
func New(opts Options) *Hub {
	if opts.PingInterval <= 0 {
		opts.PingInterval = 25 * time.Second
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 20 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	return &Hub{opts: opts, rooms: map[string]map[*conn]struct{}{}, conns: map[*conn]struct{}{}}
}

// Start runs one server of h on 127.0.0.1 and returns its base URL
// ("http://127.0.0.1:port"). The server and every connection are closed by
// tb's Cleanup, which waits for all of the hub's goroutines.
func (h *Hub) Start(tb testing.TB) string {
	tb.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/socket.io/", h.serveWS)
	mux.HandleFunc("POST /api/v1/emit", h.serveEmit)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE roomcast_connections_open gauge\nroomcast_connections_open %d\n", h.Conns())
	})
	srv := httptest.NewUnstartedServer(mux)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	tb.Cleanup(func() {
		srv.Close()
		h.CloseAll()
		h.wg.Wait()
	})
	return srv.URL
}

// Pongs returns how many pongs the hub has received.
func (h *Hub) Pongs() int64 { return h.pongs.Load() }

// Conns returns the number of connected sockets.
func (h *Hub) Conns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// CloseAll closes every connection.
func (h *Hub) CloseAll() {
	h.mu.Lock()
	cs := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
}

type conn struct {
	h    *Hub
	ws   *websocket.Conn
	wmu  sync.Mutex
	done chan struct{}
	once sync.Once
}

func (c *conn) write(msg []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.h.opts.WriteTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		c.close()
	}
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.ws.Close()
		c.h.mu.Lock()
		delete(c.h.conns, c)
		for r, m := range c.h.rooms {
			delete(m, c)
			if len(m) == 0 {
				delete(c.h.rooms, r)
			}
		}
		c.h.mu.Unlock()
	})
}

var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}

func (h *Hub) serveWS(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("EIO") != "4" || r.URL.Query().Get("transport") != "websocket" {
		http.Error(w, `{"code":0,"message":"Transport unknown"}`, http.StatusBadRequest)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if tc, ok := ws.NetConn().(*net.TCPConn); ok && h.opts.SendBuffer > 0 {
		_ = tc.SetWriteBuffer(h.opts.SendBuffer)
	}
	c := &conn{h: h, ws: ws, done: make(chan struct{})}
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	// The open packet goes out before the pinger starts: a ping must never
	// precede it, however late this goroutine runs.
	sid := "s" + strconv.FormatInt(h.seq.Add(1), 10)
	open, _ := json.Marshal(wire.Open{SID: sid, Upgrades: []string{}, MaxPayload: 1000000,
		PingInterval: int(h.opts.PingInterval / time.Millisecond), PingTimeout: int(h.opts.PingTimeout / time.Millisecond)})
	c.write(wire.AppendEngine(nil, wire.EngineOpen, open))
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		h.ping(c)
	}()
	go func() {
		defer h.wg.Done()
		defer c.close()
		h.read(c, sid)
	}()
}

func (h *Hub) ping(c *conn) {
	t := time.NewTicker(h.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.write([]byte{byte(wire.EnginePing)})
		}
	}
}

func (h *Hub) read(c *conn, sid string) {
	connected := false
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		t, data, err := wire.DecodeEngine(msg)
		if err != nil {
			return
		}
		switch t {
		case wire.EnginePong:
			h.pongs.Add(1)
			continue
		case wire.EngineClose:
			return
		case wire.EngineMessage:
		default:
			continue
		}
		p, err := wire.Decode(data)
		if err != nil {
			return
		}
		if p.Nsp != "/" {
			c.write(append(wire.AppendHeader([]byte{'4'}, wire.ConnectError, p.Nsp, wire.NoID), `{"message":"Invalid namespace"}`...))
			continue
		}
		switch {
		case p.Type == wire.Connect:
			if h.opts.Token != "" {
				var auth struct {
					Token string `json:"token"`
				}
				_ = json.Unmarshal(p.Data, &auth)
				if auth.Token != h.opts.Token {
					c.write([]byte(`44{"message":"unauthorized"}`))
					continue
				}
			}
			connected = true
			c.write([]byte(`40{"sid":"` + sid + `"}`))
		case p.Type == wire.Event && connected:
			h.event(c, p)
		}
	}
}

func (h *Hub) event(c *conn, p wire.Packet) {
	var args []json.RawMessage
	if err := json.Unmarshal(p.Data, &args); err != nil || len(args) == 0 {
		return
	}
	var name string
	_ = json.Unmarshal(args[0], &name)
	var reply []byte
	switch name {
	case "echo":
		reply = []byte("[]")
		if len(args) > 1 {
			reply = append(append([]byte{'['}, args[1]...), ']')
		}
	case "join", "leave":
		var room string
		if len(args) < 2 || json.Unmarshal(args[1], &room) != nil || room == "" {
			reply = []byte(`[{"error":"invalid room"}]`)
			break
		}
		h.mu.Lock()
		if name == "join" {
			if h.rooms[room] == nil {
				h.rooms[room] = map[*conn]struct{}{}
			}
			h.rooms[room][c] = struct{}{}
		} else {
			delete(h.rooms[room], c)
		}
		h.mu.Unlock()
		reply = []byte(`[{"ok":true}]`)
	case "publish":
		var pub struct {
			Room  string          `json:"room"`
			Event string          `json:"event"`
			Data  json.RawMessage `json:"data"`
		}
		if len(args) < 2 || json.Unmarshal(args[1], &pub) != nil || pub.Room == "" || pub.Event == "" {
			reply = []byte(`[{"error":"invalid publish"}]`)
			break
		}
		h.broadcast([]string{pub.Room}, c, pub.Event, pub.Data)
		reply = []byte(`[{"ok":true}]`)
	default:
		return
	}
	if p.ID >= 0 {
		c.write(append(wire.AppendHeader([]byte{'4'}, wire.Ack, "/", p.ID), reply...))
	}
}

// broadcast sends event with data to the rooms (all sockets when none),
// except the sender.
func (h *Hub) broadcast(rooms []string, except *conn, event string, data json.RawMessage) {
	msg := wire.AppendHeader([]byte{'4'}, wire.Event, "/", wire.NoID)
	if len(data) > 0 {
		msg = wire.AppendEvent(msg, event, data)
	} else {
		msg = wire.AppendEvent(msg, event)
	}
	h.mu.Lock()
	targets := map[*conn]struct{}{}
	if len(rooms) == 0 {
		targets = h.conns
	}
	for _, r := range rooms {
		for c := range h.rooms[r] {
			targets[c] = struct{}{}
		}
	}
	list := make([]*conn, 0, len(targets))
	for c := range targets {
		if c != except {
			list = append(list, c)
		}
	}
	h.mu.Unlock()
	for _, c := range list {
		c.write(msg)
	}
}

func (h *Hub) serveEmit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Namespace string          `json:"namespace"`
		Rooms     []string        `json:"rooms"`
		Event     string          `json:"event"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Event == "" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"bad request"}`)
		return
	}
	h.broadcast(req.Rooms, nil, req.Event, req.Data)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"ok":true}`)
}
