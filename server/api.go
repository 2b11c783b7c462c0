package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/roomcast/roomcast/namespaces"
)

// The HTTP API for backends in other languages: emit (with acks), fetch
// sockets, make sockets join, leave or disconnect, server-side emit. Every
// route takes the bearer key when Config.APIKey is set. Operations reach
// every node of the cluster through the adapter.

// selector picks sockets: a namespace, rooms (all when empty), except.
type selector struct {
	Namespace string   `json:"namespace"`
	Rooms     []string `json:"rooms"`
	Except    []string `json:"except"`
}

func (srv *Server) broadcastFor(w http.ResponseWriter, sel selector) *namespaces.Broadcast {
	if sel.Namespace == "" {
		sel.Namespace = "/"
	}
	nsp := srv.nsps.Lookup(sel.Namespace)
	if nsp == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unknown namespace " + sel.Namespace})
		return nil
	}
	return nsp.To(sel.Rooms...).Except(sel.Except...)
}

// api wraps a JSON API handler: key check, body decoding into T.
func api[T any](srv *Server, h func(w http.ResponseWriter, r *http.Request, req *T)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if srv.cfg.APIKey != "" {
			auth := r.Header.Get("Authorization")
			if !strings.HasPrefix(auth, "Bearer ") || !constantTimeEqual(auth[len("Bearer "):], srv.cfg.APIKey) {
				writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "missing or wrong bearer key"})
				return
			}
		}
		req := new(T)
		if r.Method == http.MethodPost {
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(srv.cfg.MaxPayload)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(req); err != nil {
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
	// Ack waits for every recipient's answer (up to TimeoutMS, default 5 s).
	Ack       bool `json:"ack"`
	TimeoutMS int  `json:"timeout"`
}

func (srv *Server) serveEmit(w http.ResponseWriter, r *http.Request, req *emitRequest) {
	if req.Event == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "event is required"})
		return
	}
	b := srv.broadcastFor(w, req.selector)
	if b == nil {
		return
	}
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
		timeout := 5 * time.Second
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
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// serveSockets answers GET /api/v1/sockets?namespace=/&room=a&room=b&except=c.
func (srv *Server) serveSockets(w http.ResponseWriter, r *http.Request, _ *struct{}) {
	q := r.URL.Query()
	b := srv.broadcastFor(w, selector{Namespace: q.Get("namespace"), Rooms: q["room"], Except: q["except"]})
	if b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	socks, err := b.FetchSockets(ctx)
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
	b := srv.broadcastFor(w, req.selector)
	if b == nil {
		return
	}
	if len(req.Join) > 0 {
		b.Join(req.Join...)
	}
	if len(req.Leave) > 0 {
		b.Leave(req.Leave...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// disconnectRequest is the body of POST /api/v1/disconnect.
type disconnectRequest struct {
	selector
	Close bool `json:"close"`
}

func (srv *Server) serveDisconnect(w http.ResponseWriter, _ *http.Request, req *disconnectRequest) {
	b := srv.broadcastFor(w, req.selector)
	if b == nil {
		return
	}
	b.Disconnect(req.Close)
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
	b := srv.broadcastFor(w, selector{Namespace: req.Namespace})
	if b == nil {
		return
	}
	nsp := srv.nsps.Lookup(req.Namespace)
	if nsp == nil {
		nsp = srv.nsps.Of("/")
	}
	var args []any
	if len(req.Data) > 0 {
		args = append(args, req.Data)
	}
	if !req.Ack {
		if err := nsp.ServerSideEmit(r.Context(), req.Event, args...); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
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
