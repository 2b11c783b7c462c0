package adapter

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"
)

// MaxHistory bounds the broadcasts a Memory adapter keeps for recovery,
// whatever the window (at 1,000 broadcasts a second, 100 s of them).
const MaxHistory = 100_000

// Memory is the default adapter: rooms live in this process only. With a
// non-zero recovery window it also keeps the broadcast history and the
// sessions that connection state recovery needs.
type Memory struct {
	recv   Receiver
	window time.Duration

	mu    sync.RWMutex
	rooms map[string]map[string]struct{} // room -> socket ids
	sids  map[string]map[string]struct{} // socket id -> rooms

	hmu      sync.Mutex
	next     uint64
	history  []stored // ordered by offset
	capped   uint64   // newest offset dropped by MaxHistory, not by age
	sessions map[string]*Session
	stop     chan struct{}
	stopOnce sync.Once

	// onRoom, when set, hears of rooms created and deleted (public: the
	// room is not a socket's own), under the room lock: it must not block
	// or call back.
	onRoom func(room string, created, public bool)
}

type stored struct {
	seq  uint64
	at   time.Time
	msg  *Message
	opts Options
}

// NewMemory makes a memory adapter delivering to recv. window > 0 turns on
// the recovery store for that duration.
func NewMemory(recv Receiver, window time.Duration) *Memory {
	m := &Memory{
		recv:   recv,
		window: window,
		rooms:  make(map[string]map[string]struct{}),
		sids:   make(map[string]map[string]struct{}),
		stop:   make(chan struct{}),
	}
	if window > 0 {
		m.sessions = make(map[string]*Session)
		go m.sweep()
	}
	return m
}

func (m *Memory) Join(id string, rooms ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mine := m.sids[id]
	if mine == nil {
		mine = make(map[string]struct{}, 2)
		m.sids[id] = mine
	}
	for _, r := range rooms {
		set := m.rooms[r]
		if set == nil {
			set = make(map[string]struct{})
			m.rooms[r] = set
			if m.onRoom != nil {
				_, isSid := m.sids[r]
				m.onRoom(r, true, !isSid)
			}
		}
		set[id] = struct{}{}
		mine[r] = struct{}{}
	}
}

func (m *Memory) Leave(id, room string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leaveLocked(id, room)
}

func (m *Memory) leaveLocked(id, room string) {
	if set := m.rooms[room]; set != nil {
		delete(set, id)
		if len(set) == 0 {
			delete(m.rooms, room)
			if m.onRoom != nil {
				_, isSid := m.sids[room]
				m.onRoom(room, false, !isSid)
			}
		}
	}
	if mine := m.sids[id]; mine != nil {
		delete(mine, room)
		if len(mine) == 0 {
			delete(m.sids, id)
		}
	}
}

func (m *Memory) LeaveAll(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for r := range m.sids[id] {
		m.leaveLocked(id, r)
	}
	delete(m.sids, id)
}

func (m *Memory) Rooms(id string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.sids[id]))
	for r := range m.sids[id] {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Broadcast stores msg for recovery (when on and the message qualifies) and
// delivers it to the matching local sockets.
func (m *Memory) Broadcast(msg *Message, opts Options) {
	m.Store(msg, opts)
	m.ForEach(opts, func(id string) { m.recv.Deliver(id, msg) })
}

// BroadcastWithAck delivers msg to the matching local sockets and reports
// how many there were.
func (m *Memory) BroadcastWithAck(msg *Message, opts Options, onCount func(int)) {
	msg.AckID = m.recv.NextAckID()
	n := 0
	m.ForEach(opts, func(id string) {
		n++
		m.recv.Deliver(id, msg)
	})
	onCount(n)
}

// AddSockets makes the matching local sockets join rooms.
func (m *Memory) AddSockets(opts Options, rooms []string) {
	for _, id := range m.Sockets(opts) {
		m.Join(id, rooms...)
	}
}

// DelSockets makes the matching local sockets leave rooms.
func (m *Memory) DelSockets(opts Options, rooms []string) {
	for _, id := range m.Sockets(opts) {
		for _, r := range rooms {
			m.Leave(id, r)
		}
	}
}

// DisconnectSockets disconnects the matching local sockets.
func (m *Memory) DisconnectSockets(opts Options, close bool) {
	for _, id := range m.Sockets(opts) {
		m.recv.Disconnect(id, close)
	}
}

// FetchSockets describes the matching local sockets.
func (m *Memory) FetchSockets(_ context.Context, opts Options) ([]SocketInfo, error) {
	var out []SocketInfo
	for _, id := range m.Sockets(opts) {
		if info, ok := m.recv.Describe(id); ok {
			out = append(out, info)
		}
	}
	return out, nil
}

// ServerSideEmit has no other node to reach.
func (m *Memory) ServerSideEmit(context.Context, []any, bool) ([]any, error) { return nil, nil }

// ServerCount is 1: this node.
func (m *Memory) ServerCount(context.Context) int { return 1 }

// Store gives msg a recovery offset and keeps it, when recovery is on and
// the message is a plain event. Backplanes call it for messages they
// deliver locally.
func (m *Memory) Store(msg *Message, opts Options) {
	if m.window <= 0 || opts.Volatile || opts.WithAck || msg.Type != 2 {
		return
	}
	m.hmu.Lock()
	m.next++
	msg.Offset = strconv.FormatUint(m.next, 36)
	m.history = append(m.history, stored{seq: m.next, at: time.Now(), msg: msg, opts: opts})
	if len(m.history) > MaxHistory {
		// Bound the memory of a busy node: the oldest go early. A client
		// whose offset is older than what went this way is not recovered.
		drop := len(m.history) - MaxHistory*9/10
		m.capped = m.history[drop-1].seq
		m.history = append(m.history[:0:0], m.history[drop:]...)
	}
	m.hmu.Unlock()
}

// ForEach calls fn for every local socket matching opts, once each. fn runs
// under the adapter's read lock and must not call back into the adapter.
func (m *Memory) ForEach(opts Options, fn func(id string)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	excluded := func(id string) bool {
		for _, r := range opts.Except {
			if _, ok := m.rooms[r][id]; ok {
				return true
			}
		}
		return false
	}
	if len(opts.Rooms) == 0 {
		for id := range m.sids {
			if !excluded(id) {
				fn(id)
			}
		}
		return
	}
	if len(opts.Rooms) == 1 {
		for id := range m.rooms[opts.Rooms[0]] {
			if !excluded(id) {
				fn(id)
			}
		}
		return
	}
	seen := make(map[string]struct{})
	for _, r := range opts.Rooms {
		for id := range m.rooms[r] {
			if _, ok := seen[id]; ok || excluded(id) {
				continue
			}
			seen[id] = struct{}{}
			fn(id)
		}
	}
}

func (m *Memory) Sockets(opts Options) []string {
	var out []string
	m.ForEach(opts, func(id string) { out = append(out, id) })
	sort.Strings(out)
	return out
}

// SaveSession keeps s until the recovery window ends.
func (m *Memory) SaveSession(s *Session) {
	if m.window <= 0 {
		return
	}
	s.Expires = time.Now().Add(m.window)
	m.hmu.Lock()
	m.sessions[s.PID] = s
	m.hmu.Unlock()
}

// RestoreSession returns the session with this private id and the messages
// it missed after offset, or nil.
func (m *Memory) RestoreSession(pid, offset string, attach func(*Session)) *Session {
	if m.window <= 0 {
		return nil
	}
	m.hmu.Lock()
	defer m.hmu.Unlock()
	s := m.sessions[pid]
	if s == nil {
		return nil
	}
	delete(m.sessions, pid)
	if time.Now().After(s.Expires) {
		return nil
	}
	exact := offset != ""
	if !exact {
		// The client received nothing: everything stored after the socket
		// connected and addressed to it was missed.
		offset = s.Base
	}
	seq, err := strconv.ParseUint(offset, 36, 64)
	if err != nil {
		return nil
	}
	i := sort.Search(len(m.history), func(i int) bool { return m.history[i].seq >= seq })
	if exact && (i == len(m.history) || m.history[i].seq != seq) {
		// Not retained. Older than everything retained means it aged out
		// of the window: whatever came between it and the oldest retained
		// message was sent before the socket dropped (the session is still
		// within the window), so replaying the retained ones is exact.
		// Otherwise it is unknown (another server's): no recovery.
		issued := seq >= 1 && seq <= m.next
		agedOut := len(m.history) == 0 || seq < m.history[0].seq
		if !issued || !agedOut || seq < m.capped {
			return nil
		}
		i = 0
	}
	if i < len(m.history) && m.history[i].seq == seq {
		i++
	}
	rooms := make(map[string]struct{}, len(s.Rooms))
	for _, r := range s.Rooms {
		rooms[r] = struct{}{}
	}
	restored := *s
	for _, st := range m.history[i:] {
		if matches(rooms, st.opts) {
			restored.Missed = append(restored.Missed, st.msg)
		}
	}
	// Still under hmu, so no message is stored between the snapshot above
	// and the join below.
	attach(&restored)
	m.Join(restored.ID, restored.Rooms...)
	return &restored
}

// matches tells whether a socket in rooms is a recipient under opts.
func matches(rooms map[string]struct{}, opts Options) bool {
	for _, r := range opts.Except {
		if _, ok := rooms[r]; ok {
			return false
		}
	}
	if len(opts.Rooms) == 0 {
		return true
	}
	for _, r := range opts.Rooms {
		if _, ok := rooms[r]; ok {
			return true
		}
	}
	return false
}

// sweep drops expired sessions and history older than the window.
func (m *Memory) sweep() {
	t := time.NewTicker(min(m.window, 10*time.Second))
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.expire(now)
		}
	}
}

func (m *Memory) expire(now time.Time) {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	for pid, s := range m.sessions {
		if now.After(s.Expires) {
			delete(m.sessions, pid)
		}
	}
	cut := sort.Search(len(m.history), func(i int) bool { return now.Sub(m.history[i].at) <= m.window })
	if cut > 0 {
		m.history = append(m.history[:0:0], m.history[cut:]...)
	}
}

// Offset returns the offset of the newest stored message, "0" when none.
func (m *Memory) Offset() string {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	return strconv.FormatUint(m.next, 36)
}

func (m *Memory) Close() error {
	m.stopOnce.Do(func() { close(m.stop) })
	return nil
}
