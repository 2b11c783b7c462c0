package adapter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The sessions topic holds, keyed by private id, the sessions of
// disconnected sockets (a msgpack map: sid, pid, rooms, data, base,
// expires in Unix ms) and the claims of restores (no value, a "claim"
// header naming the restore). Every node reads it into memory; a restore
// writes its claim and waits until its reader has passed it: the first
// claim after a session, in the topic's order, takes it, so a session is
// restored once even when two nodes try at the same time.

const kafkaClaimHeader = "claim"

// kafkaMaxClaim bounds a claim header: a restore's claim is randomID(8), 16
// bytes; a longer one is not ours and is skipped (counted as "decode").
const kafkaMaxClaim = 32

// onSession reads a record of the sessions topic.
func (n *KafkaNode) onSession(r *kgo.Record) {
	key := string(r.Key)
	var claim string
	for _, h := range r.Headers {
		if h.Key == kafkaClaimHeader {
			claim = string(h.Value)
		}
	}
	var s *kafkaSession
	var err error
	if len(claim) > kafkaMaxClaim {
		err = fmt.Errorf("%w: claim of %d bytes", ErrUndecodable, len(claim))
	} else if claim == "" && r.Value != nil && len(key) <= kafkaMaxPID {
		s, err = decodeKafkaSession(r.Value)
		if err == nil && s.pid != key {
			err = fmt.Errorf("%w: session record keyed %q holds %q", ErrUndecodable, key, s.pid)
		}
	}
	n.mu.Lock()
	n.sessPos = r.Offset + 1
	close(n.sessRead)
	n.sessRead = make(chan struct{})
	old := n.sessions[key]
	full := false
	switch {
	case len(key) > kafkaMaxPID || err != nil:
	case claim != "":
		if old != nil && old.claim == "" {
			old.claim = claim
			n.sessSize += len(claim)
		}
	case r.Value == nil: // a tombstone
		if old != nil {
			n.dropSession(key, old)
		}
	case time.Now().Before(s.expires):
		if old != nil {
			n.dropSession(key, old)
		}
		if len(n.sessions) >= kafkaMaxSessions || n.sessSize+len(s.raw) > kafkaMaxSessionBytes {
			full = true
			break
		}
		n.sessions[key] = s
		n.sessSize += len(s.raw)
	}
	n.mu.Unlock()
	switch {
	case len(key) > kafkaMaxPID:
		n.fail("decode", fmt.Errorf("%w: session key of %d bytes", ErrUndecodable, len(key)))
	case err != nil:
		n.fail("decode", fmt.Errorf("session record: %w", err))
	case full:
		n.fail("subscribe", fmt.Errorf("sessions past %d or %d bytes: session skipped", kafkaMaxSessions, kafkaMaxSessionBytes))
	}
}

// dropSession forgets a session; n.mu is held.
func (n *KafkaNode) dropSession(pid string, s *kafkaSession) {
	delete(n.sessions, pid)
	n.sessSize -= len(s.raw) + len(s.claim)
}

// decodeKafkaSession reads a session record within the decode limits.
// Pure, shared by the reader, restores and the fuzz target.
func decodeKafkaSession(b []byte) (*kafkaSession, error) {
	v, err := decodeKafkaSessionMap(b)
	if err != nil {
		return nil, err
	}
	ms, ok := toInt(v["expires"])
	if !ok {
		return nil, fmt.Errorf("%w: session without an end", ErrUndecodable)
	}
	pid, _ := v["pid"].(string)
	return &kafkaSession{raw: b, expires: time.UnixMilli(ms), pid: pid}, nil
}

func decodeKafkaSessionMap(b []byte) (map[string]any, error) {
	var v map[string]any
	if err := decodeMsgpack(b, &v); err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("%w: session is not a map", ErrUndecodable)
	}
	return v, nil
}

// sessionOf rebuilds a Session from its record.
func sessionOf(v map[string]any) *Session {
	s := &Session{Rooms: strings_(v["rooms"]), Data: v["data"]}
	s.ID, _ = v["sid"].(string)
	s.PID, _ = v["pid"].(string)
	s.Base, _ = v["base"].(string)
	if ms, ok := toInt(v["expires"]); ok {
		s.Expires = time.UnixMilli(ms)
	}
	return s
}

// waitSessions waits until the reader has read the sessions topic up to
// offset next (bounded by ctx).
func (n *KafkaNode) waitSessions(ctx context.Context, next int64) error {
	for {
		n.mu.Lock()
		pos, moved := n.sessPos, n.sessRead
		n.mu.Unlock()
		if pos >= next {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return fmt.Errorf("sessions topic read up to %d of %d: %w", pos, next, ctx.Err())
		}
	}
}

// SaveSession writes the session into the sessions topic for the recovery
// window (until s.Expires when set: a session put back after a refused
// restore keeps its end).
func (a *kafkaAdapter) SaveSession(s *Session) {
	if a.window <= 0 || len(s.PID) > kafkaMaxPID || s.PID == "" {
		return
	}
	expires := s.Expires
	if expires.IsZero() {
		expires = time.Now().Add(a.window)
	}
	if !time.Now().Before(expires) {
		return
	}
	if a.n.down.Load() {
		// Not worth holding the closing connection for the timeout.
		a.n.fail("publish", fmt.Errorf("save session: %w", errKafkaDown))
		return
	}
	b, err := encodeMsgpack(map[string]any{"sid": s.ID, "pid": s.PID, "rooms": s.Rooms, "data": plain1(s.Data),
		"base": s.Base, "expires": expires.UnixMilli()})
	if err != nil {
		a.n.fail("publish", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.n.cfg.RequestTimeout)
	defer cancel()
	if _, err := a.n.produce(ctx, &kgo.Record{Topic: a.n.sessTopic, Key: []byte(s.PID), Value: b}); err != nil {
		a.n.fail("publish", fmt.Errorf("save session: %w", err))
	}
}

// RestoreSession claims the session, reads what it missed from the
// namespace's topic, then rejoins the socket to its rooms once the live
// reader has not passed the end of what was read: what comes later is
// delivered live (a record both read and delivered live is dropped by the
// receiver by offset). A failed or incomplete read puts the session back
// and refuses the recovery, so a recovered socket never silently missed a
// message.
func (a *kafkaAdapter) RestoreSession(pid, offset string, attach func(*Session)) *Session {
	if a.window <= 0 || pid == "" || len(pid) > kafkaMaxPID {
		return nil
	}
	n := a.n
	if n.down.Load() {
		n.fail("request", fmt.Errorf("restore session: %w", errKafkaDown))
		return nil
	}
	if !n.following(a.topic) {
		// The live reader would start past what a replay reads: the
		// socket would miss what lies between. The session stays in the
		// sessions topic, untouched, for a later try.
		n.fail("request", fmt.Errorf("restore session: %w", errKafkaNotFollowed))
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
	defer cancel()
	claim := randomID(8)
	next, err := n.produce(ctx, &kgo.Record{Topic: n.sessTopic, Key: []byte(pid),
		Headers: []kgo.RecordHeader{{Key: kafkaClaimHeader, Value: []byte(claim)}}})
	if err == nil {
		err = n.waitSessions(ctx, next)
	}
	if err != nil {
		n.fail("request", fmt.Errorf("restore session: %w", err))
		return nil
	}
	n.mu.Lock()
	e := n.sessions[pid]
	won := e != nil && e.claim == claim
	if won {
		n.dropSession(pid, e)
	}
	n.mu.Unlock()
	if !won {
		return nil // unknown, expired, or taken by another restore
	}
	v, err := decodeKafkaSessionMap(e.raw)
	if err != nil {
		n.fail("decode", fmt.Errorf("session: %w", err))
		return nil
	}
	s := sessionOf(v)
	s.PID = pid
	if !time.Now().Before(s.Expires) {
		return nil
	}
	if offset == "" {
		offset = s.Base
	}
	from, ok := kafkaNext(offset)
	if !ok {
		return nil
	}
	start, err := kafkaListed(n.adm.ListStartOffsets(ctx, a.topic))
	var end int64
	if err == nil {
		end, err = kafkaEnd(ctx, n.adm, a.topic)
	}
	if err != nil {
		n.fail("request", fmt.Errorf("restore session: %w", err))
		a.SaveSession(s) // unknown for now, not gone
		return nil
	}
	if from < start || from > end {
		return nil // trimmed away, or never written: no exact catch-up
	}
	rooms := make(map[string]struct{}, len(s.Rooms))
	for _, r := range s.Rooms {
		rooms[r] = struct{}{}
	}
	r := &kafkaReplay{a: a, s: s, rooms: rooms, next: from}
	defer r.close()
	target := end
	for i := 0; i < restoreMaxRanges; i++ {
		if r.next < target {
			if err := r.readTo(target); err != nil {
				n.fail("request", fmt.Errorf("restore session: %w", err))
				break
			}
		}
		n.mu.Lock()
		live, read := n.pos[a.topic]
		if !read {
			// No longer read (the adapter closed): nothing would deliver
			// what comes after the replay.
			n.mu.Unlock()
			n.fail("request", fmt.Errorf("restore session: %w", errKafkaNotFollowed))
			break
		}
		if live <= r.next {
			// The live reader delivers everything from r.next on to the
			// rejoined socket: it takes n.mu before each record.
			attach(s)
			a.Memory.Join(s.ID, s.Rooms...)
			n.mu.Unlock()
			return s
		}
		n.mu.Unlock()
		target = live
	}
	s.Missed = nil
	a.SaveSession(s)
	return nil
}

// kafkaReplay reads a namespace's topic for one restore, with a client of
// its own that starts at the client's offset.
type kafkaReplay struct {
	a     *kafkaAdapter
	s     *Session
	rooms map[string]struct{}
	next  int64 // offset read next
	read  int
	cl    *kgo.Client
}

func (r *kafkaReplay) close() {
	if r.cl != nil {
		r.cl.Close()
	}
}

// readTo appends to the session's missed messages the broadcasts to its
// rooms from r.next up to at least target (excluded). Each fetch has the request
// timeout; three failed fetches, more than restoreMaxRanges*1000 records,
// or a gap (an offset trimmed away, records not one after the other)
// refuse the recovery.
func (r *kafkaReplay) readTo(target int64) error {
	n := r.a.n
	if r.cl == nil {
		// No reset: an offset trimmed away after the restore listed the
		// topic's start is an error, not a silent jump to the new start.
		cl, err := kgo.NewClient(append(n.opts, kgo.ConsumeResetOffset(kgo.NoResetOffset()),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
				r.a.topic: {0: kgo.NewOffset().At(r.next)},
			}))...)
		if err != nil {
			return err
		}
		r.cl = cl
	}
	failures := 0
	for r.next < target {
		if r.read > restoreMaxRanges*1000 {
			return fmt.Errorf("more than %d records to replay", restoreMaxRanges*1000)
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.RequestTimeout)
		fs := r.cl.PollFetches(ctx)
		cancel()
		var ferr, gap error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		fs.EachRecord(func(rec *kgo.Record) {
			// Past target too: the client reads ahead, and what it read
			// is only seen once.
			if rec.Offset < r.next || gap != nil {
				return
			}
			if rec.Offset != r.next {
				gap = fmt.Errorf("replay read offset %d where %d was next: records missing", rec.Offset, r.next)
				return
			}
			r.next = rec.Offset + 1
			r.read++
			r.add(rec)
		})
		if gap != nil {
			return gap
		}
		if errors.Is(ferr, kerr.OffsetOutOfRange) {
			return fmt.Errorf("replay from %d: trimmed meanwhile: %w", r.next, ferr)
		}
		if ferr != nil {
			if failures++; failures == restoreMaxFailures || n.ctx.Err() != nil {
				return ferr
			}
		}
	}
	return nil
}

// add keeps a record when it is a recoverable broadcast to the session's
// rooms; an undecodable one is skipped, as the live reader skipped it.
func (r *kafkaReplay) add(rec *kgo.Record) {
	m, err := decodeClusterMsg(rec.Value)
	if err != nil {
		r.a.n.fail("decode", err)
		return
	}
	if m.Type != cmBroadcast || m.Nsp != r.a.nsp {
		return
	}
	if _, withAck := m.Data["requestId"]; withAck {
		return
	}
	msg, ok := messageOf(m.Data["packet"], r.a.nsp)
	opts := fromWire(m.Data["opts"])
	if ok && recoverable(msg, opts) && matches(r.rooms, opts) {
		msg.Offset = kafkaOffset(rec.Offset + 1)
		r.s.Missed = append(r.s.Missed, msg)
	}
}
