package server

import (
	"errors"
	"fmt"
	"strings"

	"github.com/roomcast/roomcast/namespaces"
)

// Action is what a client asks of the hub for a room.
type Action string

// The actions HubConfig.Authorize is called for.
const (
	ActionJoin    Action = "join"
	ActionLeave   Action = "leave"
	ActionPublish Action = "publish"
)

// AuthorizeFunc decides whether socket s may do action on room (a valid,
// non-reserved room name). A nil error allows it; an error refuses it and
// its message is the `{error}` the client's ack gets. It runs on the
// socket's handler goroutine and must not block.
type AuthorizeFunc func(s *namespaces.Socket, action Action, room string) error

// RoomsClaim is the JWT claim that lists the rooms a user may join and
// publish to: an array of patterns, each a room name or a prefix ending in
// "*" ("chat:*" matches "chat:" and every room starting with it; "*" alone
// matches every room). Without the claim a user may use any non-reserved
// room; with an empty array, none. Leaving a room is always allowed by the
// claim.
const RoomsClaim = "rooms"

// roomsKey is the socket value (Socket.Set) holding the RoomsClaim patterns.
const roomsKey = "rooms"

var errRoomDenied = errors.New("not allowed in this room")

// parseRoomPatterns reads the RoomsClaim of a token: nil when absent.
func parseRoomPatterns(claims map[string]any) ([]string, error) {
	v, ok := claims[RoomsClaim]
	if !ok {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("claim %q must be an array of strings", RoomsClaim)
	}
	pats := make([]string, 0, len(list))
	for _, e := range list {
		p, ok := e.(string)
		if !ok || p == "" {
			return nil, fmt.Errorf("claim %q must be an array of non-empty strings", RoomsClaim)
		}
		if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
			return nil, fmt.Errorf("claim %q: %q may have * only at its end", RoomsClaim, p)
		}
		pats = append(pats, p)
	}
	return pats, nil
}

// roomMatches reports whether room matches one of the patterns.
func roomMatches(pats []string, room string) bool {
	for _, p := range pats {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(room, prefix) {
				return true
			}
		} else if p == room {
			return true
		}
	}
	return false
}

// authorizeRoom validates the room a client names and applies, in order,
// the reserved names, the socket's RoomsClaim (join and publish) and
// Hub.Authorize (join, leave and publish).
func (srv *Server) authorizeRoom(s *namespaces.Socket, action Action, v any) (string, error) {
	room, err := ValidRoom(v)
	if err != nil {
		return "", err
	}
	if action != ActionLeave {
		if pats, ok := s.Get(roomsKey); ok {
			if p, _ := pats.([]string); !roomMatches(p, room) {
				return "", errRoomDenied
			}
		}
	}
	if h := srv.cfg.Hub.Authorize; h != nil {
		if err := h(s, action, room); err != nil {
			return "", err
		}
	}
	return room, nil
}
