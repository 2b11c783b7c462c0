package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/clients"
	"github.com/roomcast/roomcast/namespaces"
)

// The HTTP API for backends in other languages: emit (with acks), fetch
// sockets, make sockets join, leave or disconnect, server-side emit.
// Operations reach every node of the cluster through the adapter.
//
// Safe by default: every route takes the bearer key when Config.APIKey is
// set, and New refuses a non-loopback Addr without a key (unless
// Config.APIInsecure); POSTs must be application/json, so a cross-site
// form or text/plain POST never reaches a handler; handshake secrets are
// redacted in /api/v1/sockets; every error is a JSON body.

// Bounds of POST /api/v1/emit's "timeout" (milliseconds) for acks.
const (
	DefaultAPIAckTimeout = 5 * time.Second
	MaxAPIAckTimeout     = 5 * time.Minute
)

// apiRoute is one route of the HTTP API.
type apiRoute struct {
	method string
	h      http.HandlerFunc
}

// apiHandler serves /api/: key check, route, method and content type, in
// that order, each refusal a JSON error.
func (srv *Server) apiHandler() http.Handler {
	routes := map[string]apiRoute{
		"/api/v1/emit":        {http.MethodPost, api(srv, srv.serveEmit)},
		"/api/v1/sockets":     {http.MethodGet, api(srv, srv.serveSockets)},
		"/api/v1/rooms":       {http.MethodPost, api(srv, srv.serveRooms)},
		"/api/v1/disconnect":  {http.MethodPost, api(srv, srv.serveDisconnect)},
		"/api/v1/server-emit": {http.MethodPost, api(srv, srv.serveServerEmit)},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if srv.cfg.APIKey != "" && !bearerOK(r.Header.Get("Authorization"), srv.cfg.APIKey) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="roomcast"`)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "missing or wrong bearer key"})
			return
		}
		rt, ok := routes[r.URL.Path]
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "no such API route " + r.URL.Path})
			return
		}
		allowed := rt.method
		if rt.method == http.MethodGet {
			allowed += ", HEAD"
		}
		if r.Method != rt.method && !(r.Method == http.MethodHead && rt.method == http.MethodGet) {
			w.Header().Set("Allow", allowed)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method " + r.Method + " not allowed; use " + rt.method})
			return
		}
		if r.Method == http.MethodPost {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{"error": "Content-Type must be application/json"})
				return
			}
		}
		rt.h(w, r)
	})
}

// bearerOK checks an Authorization header: scheme Bearer (any case), then
// the key.
func bearerOK(header, key string) bool {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(header), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && constantTimeEqual(strings.TrimSpace(cred), key)
}

// selector picks sockets: a namespace, rooms (all when empty), except.
type selector struct {
	Namespace string   `json:"namespace"`
	Rooms     []string `json:"rooms"`
	Except    []string `json:"except"`
}

func (srv *Server) broadcastFor(w http.ResponseWriter, sel selector) (*namespaces.Broadcast, func()) {
	nsp, done := srv.namespaceFor(w, sel.Namespace)
	if nsp == nil {
		return nil, nil
	}
	return nsp.To(sel.Rooms...).Except(sel.Except...), done
}

// namespaceFor finds the namespace a request names ("/" when empty),
// answering 400 when there is none. The namespace is held until done is
// called: a dynamic one made for the request goes again when it has no
// socket.
func (srv *Server) namespaceFor(w http.ResponseWriter, name string) (*namespaces.Namespace, func()) {
	if name == "" {
		name = "/"
	}
	nsp, done, err := srv.nsps.Hold(name)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": fmt.Sprintf("namespace %s: %v", name, err)})
		return nil, nil
	}
	return nsp, done
}

// api wraps a JSON API handler: body decoding into T (one JSON object, no
// unknown fields, nothing after it).
func api[T any](srv *Server, h func(w http.ResponseWriter, r *http.Request, req *T)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req := new(T)
		if r.Method == http.MethodPost {
			body, err := clients.ReadBody(w, r, srv.cfg.MaxPayload, srv.cfg.ReadTimeout)
			if err == nil {
				dec := json.NewDecoder(bytes.NewReader(body))
				dec.DisallowUnknownFields()
				err = dec.Decode(req)
				if err == nil && dec.Decode(new(json.RawMessage)) != io.EOF {
					err = errors.New("data after the JSON object")
				}
			}
			if err != nil {
				var tooBig *http.MaxBytesError
				if clients.IsTimeout(err) {
					w.Header().Set("Connection", "close")
					writeJSON(w, http.StatusRequestTimeout, map[string]any{"error": "body not received in time"})
					return
				}
				if errors.As(err, &tooBig) {
					writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": fmt.Sprintf("body larger than %d bytes", tooBig.Limit)})
					return
				}
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": fmt.Sprintf("bad JSON: %v", err)})
				return
			}
		}
		h(w, r, req)
	}
}

// emitRequest is the body of POST /api/v1/emit.
type emitRequest struct {
	selector
	Event    string          `json:"event"`
	Data     json.RawMessage `json:"data"`
	Volatile bool            `json:"volatile"`
	Coalesce string          `json:"coalesce"`
	// Ack waits for every recipient's answer (up to TimeoutMS: 0 means
	// DefaultAPIAckTimeout, at most MaxAPIAckTimeout).
	Ack       bool `json:"ack"`
	TimeoutMS int  `json:"timeout"`
}

func (srv *Server) serveEmit(w http.ResponseWriter, r *http.Request, req *emitRequest) {
	if req.Event == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "event is required"})
		return
	}
	if req.TimeoutMS < 0 || int64(req.TimeoutMS) > MaxAPIAckTimeout.Milliseconds() {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": fmt.Sprintf("timeout must be 0 (default) to %d ms", MaxAPIAckTimeout.Milliseconds())})
		return
	}
	b, done := srv.broadcastFor(w, req.selector)
	if b == nil {
		return
	}
	defer done()
	if req.Volatile {
		b = b.Volatile()
	}
	if req.Coalesce != "" {
		b = b.Coalesce(req.Coalesce)
	}
	var args []any
	if len(req.Data) > 0 {
		args = append(args, req.Data)
	}
	if req.Ack {
		timeout := DefaultAPIAckTimeout
		if req.TimeoutMS > 0 {
			timeout = time.Duration(req.TimeoutMS) * time.Millisecond
		}
		acks, err := b.Timeout(timeout).EmitWithAck(r.Context(), req.Event, args...)
		if acks == nil {
			acks = []any{}
		}
		switch {
		case errors.Is(err, namespaces.ErrAckTimeout):
			writeJSON(w, http.StatusGatewayTimeout, map[string]any{"ok": false, "error": err.Error(), "acks": acks})
		case err != nil:
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		default:
			writeJSON(w, http.StatusOK, map[string]any{"ok": true, "acks": acks})
		}
		return
	}
	if err := b.Emit(r.Context(), req.Event, args...); err != nil {
		writeJSON(w, errStatus(err), map[string]any{"error": err.Error()})
		return
	}
	// 200 once the broadcast is on the backplane, not only queued for it:
	// a client that publishes through several nodes in turn (behind a
	// balancer) then has its broadcasts in its order.
	if err := srv.flush(r.Context(), req.Namespace); err != nil {
		writeJSON(w, errStatus(err), map[string]any{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// flush waits until the namespace's adapter has published what it was
// handed so far, bounded by apiFlushTimeout.
func (srv *Server) flush(ctx context.Context, name string) error {
	if name == "" {
		name = "/"
	}
	nsp, done, err := srv.nsps.Hold(name)
	if err != nil {
		return nil // the emit found it; nothing to wait for without it
	}
	defer done()
	f, ok := nsp.Adapter().(adapter.Flusher)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, apiFlushTimeout)
	defer cancel()
	if err := f.Flush(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: the backplane has not taken the broadcast within %v", ErrBackplaneDown, apiFlushTimeout)
		}
		return err
	}
	return nil
}

// apiFlushTimeout bounds how long an emit of the HTTP API waits for its
// broadcast to reach the backplane.
const apiFlushTimeout = 10 * time.Second

// errStatus is the status of a failed API call: 503 when the backplane
// could not publish (the local sockets were served, the other nodes not),
// else 400.
func errStatus(err error) int {
	if isBackplaneErr(err) {
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

func isBackplaneErr(err error) bool {
	return errors.Is(err, ErrPublishQueueFull) || errors.Is(err, ErrBackplaneDown) || errors.Is(err, ErrBackplaneClosed)
}

// serveSockets answers GET /api/v1/sockets?namespace=/&room=a&room=b&except=c.
func (srv *Server) serveSockets(w http.ResponseWriter, r *http.Request, _ *struct{}) {
	q := r.URL.Query()
	b, done := srv.broadcastFor(w, selector{Namespace: q.Get("namespace"), Rooms: q["room"], Except: q["except"]})
	if b == nil {
		return
	}
	defer done()
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	socks, err := b.FetchSockets(ctx)
	for i := range socks {
		socks[i].Handshake = redactHandshake(socks[i].Handshake)
	}
	out := map[string]any{"sockets": socks}
	if socks == nil {
		out["sockets"] = []any{}
	}
	if err != nil {
		out["error"] = err.Error()
		writeJSON(w, http.StatusGatewayTimeout, out)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// roomsRequest is the body of POST /api/v1/rooms: the selected sockets
// join and leave rooms.
type roomsRequest struct {
	selector
	Join  []string `json:"join"`
	Leave []string `json:"leave"`
}

func (srv *Server) serveRooms(w http.ResponseWriter, _ *http.Request, req *roomsRequest) {
	b, done := srv.broadcastFor(w, req.selector)
	if b == nil {
		return
	}
	defer done()
	var err error
	if len(req.Join) > 0 {
		err = b.Join(req.Join...)
	}
	if len(req.Leave) > 0 {
		err = errors.Join(err, b.Leave(req.Leave...))
	}
	if err != nil {
		writeJSON(w, errStatus(err), map[string]any{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// disconnectRequest is the body of POST /api/v1/disconnect.
type disconnectRequest struct {
	selector
	Close bool `json:"close"`
}

func (srv *Server) serveDisconnect(w http.ResponseWriter, _ *http.Request, req *disconnectRequest) {
	b, done := srv.broadcastFor(w, req.selector)
	if b == nil {
		return
	}
	defer done()
	if err := b.Disconnect(req.Close); err != nil {
		writeJSON(w, errStatus(err), map[string]any{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// serverEmitRequest is the body of POST /api/v1/server-emit.
type serverEmitRequest struct {
	Namespace string          `json:"namespace"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Ack       bool            `json:"ack"`
}

func (srv *Server) serveServerEmit(w http.ResponseWriter, r *http.Request, req *serverEmitRequest) {
	nsp, done := srv.namespaceFor(w, req.Namespace)
	if nsp == nil {
		return
	}
	defer done()
	var args []any
	if len(req.Data) > 0 {
		args = append(args, req.Data)
	}
	if !req.Ack {
		if err := nsp.ServerSideEmit(r.Context(), req.Event, args...); err != nil {
			writeJSON(w, errStatus(err), map[string]any{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
		return
	}
	res, err := nsp.ServerSideEmitWithAck(r.Context(), req.Event, args...)
	if res == nil {
		res = []any{}
	}
	if err != nil {
		writeJSON(w, http.StatusGatewayTimeout, map[string]any{"ok": false, "error": err.Error(), "responses": res})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "responses": res})
}
