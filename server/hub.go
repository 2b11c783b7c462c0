package server

import (
	"context"
	"errors"
	"strings"

	"go.uber.org/zap"

	"github.com/roomcast/roomcast/namespaces"
)

// Room names the hub accepts: 1 to maxRoomLen characters of roomChars.
const (
	maxRoomLen = 128
	roomChars  = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-:./@#"
)

// socketIDLen is the length of a socket id: 15 random bytes in unpadded
// base64url, as clients.NewID and Node's base64id make them.
const socketIDLen = 20

var (
	errRoomType     = errors.New("room must be a string")
	errRoomLength   = errors.New("room must be 1 to 128 characters")
	errRoomChars    = errors.New("room may only contain letters, digits and _ - : . / @ #")
	errRoomReserved = errors.New("rooms starting with user: are reserved")
	errRoomSocketID = errors.New("rooms of 20 letters, digits, _ and - are reserved: they are socket ids")
	errRoomLimit    = errors.New("too many rooms: leave one first")
	errPublishOff   = errors.New("publishing is disabled on this server")
	errPublishShape = errors.New("publish takes {room, event, data}")
)

// ValidRoom checks a room name a client asks for.
func ValidRoom(v any) (string, error) {
	room, ok := v.(string)
	if !ok {
		return "", errRoomType
	}
	if len(room) == 0 || len(room) > maxRoomLen {
		return "", errRoomLength
	}
	for i := 0; i < len(room); i++ {
		if strings.IndexByte(roomChars, room[i]) < 0 {
			return "", errRoomChars
		}
	}
	if strings.HasPrefix(room, "user:") {
		return "", errRoomReserved
	}
	if looksLikeSocketID(room) {
		return "", errRoomSocketID
	}
	return room, nil
}

// looksLikeSocketID reports whether room has the shape of a socket id. Every
// socket is in the room of its own id, on every node of a cluster (Node
// nodes included), so the hub reserves the shape rather than the ids it
// knows: a client must not read or inject into another socket's private
// room, nor leave its own.
func looksLikeSocketID(room string) bool {
	if len(room) != socketIDLen {
		return false
	}
	for i := 0; i < len(room); i++ {
		c := room[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// PingEvent is the server-side event every roomcast node answers with
// {"node": id, "sockets": n}.
const PingEvent = "roomcast:ping"

// installHub serves the hub protocol on "/" and on the namespaces matching
// Hub.Namespaces.
func (srv *Server) installHub() {
	main := srv.nsps.Of("/")
	srv.hubHandlers(main)
	// A cluster probe: every node answers with its id and local sockets.
	main.OnServerSideEmit(PingEvent, func(_ []any, ack func(any)) {
		ack(map[string]any{"node": srv.NodeID(), "sockets": main.Len()})
	})
	if re := srv.cfg.Hub.Namespaces; re != nil {
		srv.nsps.OfPattern(re, srv.hubHandlers)
	}
}

func ackErr(ev *namespaces.Event, err error) {
	_ = ev.Ack(map[string]any{"error": err.Error()})
}

func ackOK(ev *namespaces.Event) {
	_ = ev.Ack(map[string]any{"ok": true})
}

func arg(ev *namespaces.Event, i int) any {
	if i < len(ev.Args) {
		return ev.Args[i]
	}
	return nil
}

// roomLimit refuses a client join beyond Hub.MaxRoomsPerSocket rooms (every
// room the socket is in counts, its own id room included); joining a room
// the socket is already in always succeeds.
func (srv *Server) roomLimit(s *namespaces.Socket, room string) error {
	max := srv.cfg.Hub.MaxRoomsPerSocket
	if max < 0 {
		return nil
	}
	rooms := s.Rooms()
	if len(rooms) < max {
		return nil
	}
	for _, r := range rooms {
		if r == room {
			return nil
		}
	}
	return errRoomLimit
}

// hubHandlers registers the hub's handlers on a namespace.
func (srv *Server) hubHandlers(n *namespaces.Namespace) {
	n.On("join", func(ev *namespaces.Event) {
		s := ev.Socket
		room, err := srv.authorizeRoom(s, ActionJoin, arg(ev, 0))
		if err != nil {
			ackErr(ev, err)
			return
		}
		if err := srv.roomLimit(s, room); err != nil {
			ackErr(ev, err)
			return
		}
		if err := s.Join(room); err != nil {
			ackErr(ev, err)
			return
		}
		ackOK(ev)
	})
	n.On("leave", func(ev *namespaces.Event) {
		s := ev.Socket
		room, err := srv.authorizeRoom(s, ActionLeave, arg(ev, 0))
		if err != nil {
			ackErr(ev, err)
			return
		}
		if err := s.Leave(room); err != nil {
			ackErr(ev, err)
			return
		}
		ackOK(ev)
	})
	n.On("publish", func(ev *namespaces.Event) {
		s := ev.Socket
		if srv.cfg.Hub.DenyPublish {
			ackErr(ev, errPublishOff)
			return
		}
		req, ok := arg(ev, 0).(map[string]any)
		if !ok {
			ackErr(ev, errPublishShape)
			return
		}
		room, err := srv.authorizeRoom(s, ActionPublish, req["room"])
		if err != nil {
			ackErr(ev, err)
			return
		}
		event, ok := req["event"].(string)
		if !ok || event == "" {
			ackErr(ev, errors.New("event must be a non-empty string"))
			return
		}
		b := s.Namespace().To(room)
		if !srv.cfg.Hub.PublishSelf {
			b = s.To(room)
		}
		var args []any
		if data, ok := req["data"]; ok {
			args = append(args, data)
		}
		if err := b.Emit(context.Background(), event, args...); err != nil {
			ackErr(ev, err)
			return
		}
		ackOK(ev)
	})
	n.On("echo", func(ev *namespaces.Event) {
		if err := ev.Ack(ev.Args...); err != nil && !errors.Is(err, namespaces.ErrNoAck) {
			srv.log.Debug("echo ack failed", zap.Error(err))
		}
	})
}
