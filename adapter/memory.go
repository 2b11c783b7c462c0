package adapter

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"sync"
	"time"
)

// MaxHistory bounds the broadcasts a Memory adapter keeps for recovery,
// whatever the window (at 1,000 broadcasts a second, 100 s of them).
const MaxHistory = 100_000

// DefaultMaxHistoryBytes bounds the bytes of the broadcasts a Memory
// adapter keeps for recovery (an estimate of their payload sizes), per
// namespace: 64 MiB. See SetMaxHistoryBytes.
const DefaultMaxHistoryBytes = 64 << 20

// Memory is the default adapter: rooms live in this process only. With a
// non-zero recovery window it also keeps the broadcast history and the
// sessions that connection state recovery needs.
type Memory struct {
	recv   Receiver
	window time.Duration

	mu    sync.RWMutex
	rooms map[string]map[string]struct{} // room -> socket ids
	sids  map[string]map[string]struct{} // socket id -> rooms

	// held counts, per room, the saved sessions that were in it (under mu):
	// a room held by a session still counts as a room of this node (see
	// HasRoom), so backplanes keep hearing its broadcasts, and store them
	// for the session, while its socket is away.
	held map[string]int

	hmu      sync.Mutex
	next     uint64
	history  []stored // ordered by offset
	bytes    int64    // sum of the sizes in history
	maxBytes int64    // bound on bytes; 0: none
	capped   uint64   // newest offset dropped by MaxHistory or maxBytes, not by age
	aged     uint64   // newest offset dropped by age
	sessions map[string]*Session
	now      func() time.Time // the clock (tests inject theirs)
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
	size int64
	msg  *Message
	opts Options
}

// NewMemory makes a memory adapter delivering to recv. window > 0 turns on
// the recovery store for that duration.
func NewMemory(recv Receiver, window time.Duration) *Memory {
	return newMemory(recv, window, time.Now)
}

// newMemory is NewMemory on the clock now.
func newMemory(recv Receiver, window time.Duration, now func() time.Time) *Memory {
	m := &Memory{
		recv:     recv,
		window:   window,
		rooms:    make(map[string]map[string]struct{}),
		sids:     make(map[string]map[string]struct{}),
		held:     make(map[string]int),
		maxBytes: DefaultMaxHistoryBytes,
		now:      now,
		stop:     make(chan struct{}),
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
			if m.onRoom != nil && m.held[r] == 0 {
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
			if m.onRoom != nil && m.held[room] == 0 {
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
func (m *Memory) Broadcast(msg *Message, opts Options) error {
	m.Store(msg, opts)
	m.ForEach(opts, func(id string) { m.recv.Deliver(id, msg) })
	return nil
}

// BroadcastWithAck delivers msg to the matching local sockets and reports
// how many there were.
func (m *Memory) BroadcastWithAck(msg *Message, opts Options, onCount func(int)) error {
	msg.AckID = m.recv.NextAckID()
	n := 0
	m.ForEach(opts, func(id string) {
		n++
		m.recv.Deliver(id, msg)
	})
	onCount(n)
	return nil
}

// AddSockets makes the matching local sockets join rooms.
func (m *Memory) AddSockets(opts Options, rooms []string) error {
	for _, id := range m.Sockets(opts) {
		m.Join(id, rooms...)
	}
	return nil
}

// DelSockets makes the matching local sockets leave rooms.
func (m *Memory) DelSockets(opts Options, rooms []string) error {
	for _, id := range m.Sockets(opts) {
		for _, r := range rooms {
			m.Leave(id, r)
		}
	}
	return nil
}

// DisconnectSockets disconnects the matching local sockets.
func (m *Memory) DisconnectSockets(opts Options, close bool) error {
	for _, id := range m.Sockets(opts) {
		m.recv.Disconnect(id, close)
	}
	return nil
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
// deliver locally, whatever their origin, so a client that comes back to
// this node gets everything it missed.
func (m *Memory) Store(msg *Message, opts Options) {
	if m.window <= 0 || opts.Volatile || opts.WithAck || msg.Type != PacketEvent {
		return
	}
	size := sizeOf(msg)
	m.hmu.Lock()
	m.next++
	msg.Offset = strconv.FormatUint(m.next, 36)
	m.history = append(m.history, stored{seq: m.next, at: m.now(), size: size, msg: msg, opts: opts})
	m.bytes += size
	if len(m.history) > MaxHistory || (m.maxBytes > 0 && m.bytes > m.maxBytes) {
		// Bound the memory of a busy node: the oldest go early, down to
		// 90% of the bound so that this copy is not paid on every store.
		// A client whose offset is older than what went this way is not
		// recovered.
		drop, left := 0, m.bytes
		for drop < len(m.history) && (len(m.history)-drop > MaxHistory*9/10 || (m.maxBytes > 0 && left > m.maxBytes*9/10)) {
			left -= m.history[drop].size
			drop++
		}
		m.capped = m.history[drop-1].seq
		m.dropOldest(drop)
	}
	m.hmu.Unlock()
}

// dropOldest forgets the n oldest stored messages. The rest move to a new
// array, so the old one, and the messages it points to, can be collected
// (a zero-length slice of it would keep all of them). Called with hmu held.
func (m *Memory) dropOldest(n int) {
	for _, st := range m.history[:n] {
		m.bytes -= st.size
	}
	if n == len(m.history) {
		m.history = nil
		m.bytes = 0
		return
	}
	rest := make([]stored, len(m.history)-n, max(len(m.history)-n, 16))
	copy(rest, m.history[n:])
	m.history = rest
}

// SetMaxHistoryBytes bounds the bytes of the recovery history (estimated
// from the payloads: strings and binary by their length, numbers 8 bytes).
// 0: DefaultMaxHistoryBytes (64 MiB); negative: no bound in bytes (the
// MaxHistory count still holds). A client whose offset fell to this bound
// is not recovered. The bound applies from the next broadcast stored.
func (m *Memory) SetMaxHistoryBytes(n int64) {
	switch {
	case n == 0:
		n = DefaultMaxHistoryBytes
	case n < 0:
		n = 0
	}
	m.hmu.Lock()
	m.maxBytes = n
	m.hmu.Unlock()
}

// HistoryBytes is the estimated size of the recovery history, bytes.
func (m *Memory) HistoryBytes() int64 {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	return m.bytes
}

// HistoryLen is the number of broadcasts in the recovery history.
func (m *Memory) HistoryLen() int {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	return len(m.history)
}

// sizeOf estimates the bytes a message holds.
func sizeOf(msg *Message) int64 {
	n := int64(64)
	for _, v := range msg.Data {
		n += valueSize(v, 0)
	}
	return n
}

func valueSize(v any, depth int) int64 {
	if depth > 64 {
		return 8
	}
	switch t := v.(type) {
	case string:
		return int64(len(t)) + 16
	case []byte:
		return int64(len(t)) + 24
	case json.RawMessage:
		return int64(len(t)) + 24
	case []any:
		n := int64(24)
		for _, e := range t {
			n += valueSize(e, depth+1)
		}
		return n
	case map[string]any:
		n := int64(48)
		for k, e := range t {
			n += int64(len(k)) + 16 + valueSize(e, depth+1)
		}
		return n
	case map[any]any:
		n := int64(48)
		for k, e := range t {
			n += valueSize(k, depth+1) + valueSize(e, depth+1)
		}
		return n
	default:
		return 16
	}
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

// SaveSession keeps s until the recovery window ends: until s.Expires when
// it is set (a session put back after a refused restore keeps its end),
// else for the window from now. While it is kept, its rooms stay rooms of
// this node (HasRoom), so what other nodes send to them is stored.
func (m *Memory) SaveSession(s *Session) {
	if m.window <= 0 {
		return
	}
	saved := *s
	saved.Missed = nil
	m.hmu.Lock()
	defer m.hmu.Unlock()
	if saved.Expires.IsZero() {
		// Saved now, not put back: what ages out from here on may have
		// been queued for the socket and not written when it dropped.
		saved.Expires = m.now().Add(m.window)
		saved.aged = m.aged
	}
	if !m.now().Before(saved.Expires) {
		return
	}
	if old := m.sessions[saved.PID]; old != nil {
		m.release(old)
	}
	m.sessions[saved.PID] = &saved
	m.mu.Lock()
	for _, r := range saved.Rooms {
		m.held[r]++
		if m.held[r] == 1 && len(m.rooms[r]) == 0 && m.onRoom != nil {
			_, isSid := m.sids[r]
			m.onRoom(r, true, !isSid && r != saved.ID)
		}
	}
	m.mu.Unlock()
}

// release lets go of the rooms a saved session held. Called with hmu held.
func (m *Memory) release(s *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range s.Rooms {
		if m.held[r] <= 0 {
			continue
		}
		m.held[r]--
		if m.held[r] > 0 {
			continue
		}
		delete(m.held, r)
		if len(m.rooms[r]) == 0 && m.onRoom != nil {
			_, isSid := m.sids[r]
			m.onRoom(r, false, !isSid && r != s.ID)
		}
	}
}

// HasRoom tells whether room has a local member or a saved session in it:
// a backplane delivers and stores its broadcasts.
func (m *Memory) HasRoom(room string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.rooms[room]
	return ok || m.held[room] > 0
}

// RestoreSession returns the session with this private id and the messages
// it missed after offset, or nil. It refuses (nil) when it cannot replay
// everything the socket missed: unknown or expired session, an offset this
// node did not issue, or one older than a message the history had to drop.
// The returned session (Missed aside) may be given back to SaveSession when
// the connection is refused after all.
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
	if !m.now().Before(s.Expires) {
		m.release(s)
		return nil
	}
	exact := offset != ""
	if !exact {
		// The client received nothing: everything stored after the socket
		// connected and addressed to it was missed.
		offset = s.Base
	}
	seq, err := strconv.ParseUint(offset, 36, 64)
	if err != nil || seq > m.next || seq < m.capped || (m.aged > s.aged && m.aged > seq) {
		// Not issued here, or messages after it were dropped by the
		// history's bounds, or aged out while the socket was away (it may
		// have dropped before they were written to it): they may have
		// been for this socket.
		m.release(s)
		return nil
	}
	i := sort.Search(len(m.history), func(i int) bool { return m.history[i].seq >= seq })
	if exact && (i == len(m.history) || m.history[i].seq != seq) {
		// Not retained. Older than everything retained means it aged out
		// before the socket dropped (checked above): whatever came between
		// it and the oldest retained message was sent a whole window
		// before the socket dropped, so it was written or the connection
		// was cut (heartbeats and write timeouts end a stalled one long
		// before), and replaying the retained ones is exact.
		// Otherwise it is unknown (another server's): no recovery.
		agedOut := len(m.history) == 0 || seq < m.history[0].seq
		if seq < 1 || !agedOut {
			m.release(s)
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
	// and the join below; the session's rooms are held until the socket is
	// back in them.
	attach(&restored)
	m.Join(restored.ID, restored.Rooms...)
	m.release(s)
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
		case <-t.C:
			m.expire(m.now())
		}
	}
}

func (m *Memory) expire(now time.Time) {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	for pid, s := range m.sessions {
		if !now.Before(s.Expires) {
			delete(m.sessions, pid)
			m.release(s)
		}
	}
	cut := sort.Search(len(m.history), func(i int) bool { return now.Sub(m.history[i].at) <= m.window })
	if cut > 0 {
		m.aged = m.history[cut-1].seq
		m.dropOldest(cut)
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
