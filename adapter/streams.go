package adapter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of the streams backplane (those of Node's
// @socket.io/redis-streams-adapter).
const (
	DefaultStreamName    = "socket.io"
	DefaultStreamMaxLen  = 10000
	DefaultSessionPrefix = "sio:session:"
	streamReadCount      = 100
	streamBlock          = time.Second // bounds how long Close waits for the reader
	restoreMaxRanges     = 100
	restoreMaxFailures   = 3       // failed ranges before a recovery is refused
	restoreRangeBytes    = 4 << 20 // a recovery range above this: the next one is one entry
)

// StreamsConfig configures the Redis streams backplane.
type StreamsConfig struct {
	RedisConfig
	// Stream is the stream's key. "": "socket.io".
	Stream string
	// MaxLen trims the stream (approximately). 0: 10,000.
	MaxLen int64
	// SessionPrefix prefixes the keys of saved sessions. "": "sio:session:".
	SessionPrefix string
}

// StreamsNode is one process's connection to a Redis streams backplane,
// wire-compatible with Node's @socket.io/redis-streams-adapter: broadcasts
// and room operations go through one stream, so a node that was cut off
// catches up from where it stopped; requests and responses go through pub/sub.
// Sessions for connection state recovery live in Redis, so a client can
// recover on any node.
type StreamsNode struct {
	*node
	scfg StreamsConfig
	ps   *redis.PubSub

	routes *routes

	mu     sync.Mutex
	lastID string // newest stream entry seen

	pub *jobs
}

// NewStreamsNode starts the backplane: the stream reader and the pub/sub
// subscriber. The client is not closed by Close.
func NewStreamsNode(cfg StreamsConfig) (*StreamsNode, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStreamName
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultStreamMaxLen
	}
	if cfg.SessionPrefix == "" {
		cfg.SessionPrefix = DefaultSessionPrefix
	}
	base, err := newNode(cfg.RedisConfig, "redis-streams")
	if err != nil {
		return nil, err
	}
	n := &StreamsNode{node: base, scfg: cfg}
	n.routes = newRoutes(n.cfg.Prefix+"#", n.fail)
	n.pub = newJobs(n.fail)
	n.ps = n.client.Subscribe(n.ctx)
	n.receive(n.ps, n.onPublished, nil)
	n.wg.Add(1)
	go n.read()
	return n, nil
}

// Adapter makes the adapter of a namespace (fits namespaces.Config.Adapter).
func (n *StreamsNode) Adapter(nsp string, recv Receiver, window time.Duration) Adapter {
	c := newCluster(recv, window, nsp, n.uid, n.cfg.RequestTimeout, n.log, n.fail, n.pub.queue)
	c.stats = n.cfg.Stats
	c.logOffsets = true
	public := n.cfg.Prefix + "#" + nsp + "#"
	c.link = &streamsLink{n: n, public: public}
	a := &streamsAdapter{cluster: c, n: n, window: window}
	n.routes.add(nsp, c)
	if err := n.ps.Subscribe(n.ctx, public, public+n.uid+"#"); err != nil {
		n.fail("subscribe", err)
	}
	return a
}

// Close stops the node.
func (n *StreamsNode) Close() error {
	n.pub.stop()
	n.cancel()
	err := n.ps.Close()
	n.wg.Wait()
	return err
}

// read follows the stream from its end, resuming after an outage from the
// last entry it saw, so nothing published meanwhile is skipped (while the
// stream still holds it).
func (n *StreamsNode) read() {
	defer n.wg.Done()
	last := "$"
	backoff := time.Duration(0)
	for {
		res, err := n.client.XRead(n.ctx, &redis.XReadArgs{
			Streams: []string{n.scfg.Stream, last}, Count: streamReadCount, Block: streamBlock,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			if n.ctx.Err() != nil {
				return
			}
			n.fail("subscribe", err)
			backoff = min(max(2*backoff, 100*time.Millisecond), time.Second)
			if !sleepCtx(n.ctx, backoff) {
				return
			}
			continue
		}
		backoff = 0
		for _, s := range res {
			for _, e := range s.Messages {
				last = e.ID
				n.cfg.Stats.received()
				n.mu.Lock()
				n.lastID = e.ID
				n.mu.Unlock()
				n.onEntry(e)
			}
		}
	}
}

func (n *StreamsNode) onEntry(e redis.XMessage) {
	nsp, _ := e.Values["nsp"].(string)
	c := n.routes.get(nsp)
	if c == nil {
		return
	}
	m, err := decodeStreamEntry(e.Values)
	if err != nil {
		n.fail("decode", err)
		return
	}
	c.onMessage(m, e.ID)
}

// onPublished handles the pub/sub side: ephemeral requests and responses.
func (n *StreamsNode) onPublished(channel string, payload []byte) {
	n.routes.dispatch(channel, payload, "")
}

// streamsLink: durable messages go through the stream (XADD), ephemeral
// ones (requests with answers) through pub/sub, as in the Node adapter.
type streamsLink struct {
	n      *StreamsNode
	public string
}

func ephemeral(m clusterMsg) bool {
	if m.Type == cmBroadcast {
		_, withAck := m.Data["requestId"]
		return withAck
	}
	return m.Type == cmServerSideEmit || m.Type == cmFetchSockets
}

func (l *streamsLink) publish(ctx context.Context, m clusterMsg) (string, error) {
	return streamsPublish(ctx, l.n.client, l.n.scfg.Stream, l.n.scfg.MaxLen, l.public, m)
}

// streamsPublish appends m to the stream, or publishes it on the
// namespace's channel public when it is ephemeral; it returns the entry's
// id ("" when published).
func streamsPublish(ctx context.Context, client redis.UniversalClient, stream string, maxLen int64, public string, m clusterMsg) (string, error) {
	if ephemeral(m) {
		b, err := encodeMsgpack(map[string]any{"uid": m.UID, "nsp": m.Nsp, "type": m.Type, "data": m.Data})
		if err != nil {
			return "", err
		}
		return "", client.Publish(ctx, public, b).Err()
	}
	values, err := encodeStreamEntry(m)
	if err != nil {
		return "", err
	}
	return client.XAdd(ctx, &redis.XAddArgs{
		Stream: stream, MaxLen: maxLen, Approx: true, Values: values,
	}).Result()
}

func (l *streamsLink) respond(ctx context.Context, uid string, m clusterMsg) error {
	b, err := encodeMsgpack(map[string]any{"uid": m.UID, "nsp": m.Nsp, "type": m.Type, "data": m.Data})
	if err != nil {
		return err
	}
	return l.n.client.Publish(ctx, l.public+uid+"#", b).Err()
}

func (l *streamsLink) serverCount(ctx context.Context) int {
	n, err := numSub(ctx, l.n.client, false, l.public)
	if err != nil {
		l.n.fail("request", err)
		return 1
	}
	return max(n, 1)
}

// encodeStreamEntry renders a message as the Node adapter's stream fields:
// type as a string, data as JSON or base64 msgpack when binary.
func encodeStreamEntry(m clusterMsg) (map[string]any, error) {
	v := map[string]any{"uid": m.UID, "nsp": m.Nsp, "type": strconv.Itoa(m.Type)}
	if m.Data != nil {
		if HasBinary(m.Data) {
			b, err := encodeMsgpack(m.Data)
			if err != nil {
				return nil, err
			}
			v["data"] = base64.StdEncoding.EncodeToString(b)
		} else {
			b, err := json.Marshal(m.Data)
			if err != nil {
				return nil, err
			}
			v["data"] = string(b)
		}
	}
	return v, nil
}

// decodeStreamEntry reads the fields of a stream entry (type as a string,
// data as JSON or base64 msgpack). Pure, shared by the stream reader,
// recovery and the fuzz target.
func decodeStreamEntry(values map[string]any) (clusterMsg, error) {
	m := clusterMsg{}
	m.UID, _ = values["uid"].(string)
	m.Nsp, _ = values["nsp"].(string)
	ts, _ := values["type"].(string)
	t, err := strconv.Atoi(ts)
	if err != nil {
		return m, fmt.Errorf("%w: stream entry without a type", ErrUndecodable)
	}
	m.Type = t
	if raw, ok := values["data"].(string); ok && raw != "" {
		if raw[0] == '{' {
			err = decodeJSON([]byte(raw), &m.Data)
		} else if len(raw) > base64.StdEncoding.EncodedLen(maxDecodeBytes) {
			err = fmt.Errorf("%w: data of %d bytes", ErrUndecodable, len(raw))
		} else {
			var b []byte
			if b, err = base64.StdEncoding.DecodeString(raw); err != nil {
				err = fmt.Errorf("%w: data: %v", ErrUndecodable, err)
			} else {
				err = decodeMsgpack(b, &m.Data)
			}
		}
	}
	if err != nil {
		return m, fmt.Errorf("stream entry: %w", err)
	}
	return m, nil
}

// streamsAdapter keeps recovery sessions in Redis and replays missed
// packets from the stream.
type streamsAdapter struct {
	*cluster
	n      *StreamsNode
	window time.Duration
}

var streamID = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// Offset is the newest stream entry this node has seen.
func (a *streamsAdapter) Offset() string {
	a.n.mu.Lock()
	defer a.n.mu.Unlock()
	return a.n.lastID
}

// SaveSession stores the session in Redis for the recovery window (until
// s.Expires when set: a session put back after a refused restore).
func (a *streamsAdapter) SaveSession(s *Session) {
	if a.window <= 0 {
		return
	}
	b, err := encodeMsgpack(map[string]any{"sid": s.ID, "pid": s.PID, "rooms": s.Rooms, "data": plain1(s.Data), "base": s.Base})
	if err != nil {
		a.n.fail("publish", err)
		return
	}
	ttl := a.window
	if !s.Expires.IsZero() {
		// A session put back after a refused restore keeps its end.
		if ttl = time.Until(s.Expires); ttl <= 0 {
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.n.cfg.RequestTimeout)
	defer cancel()
	key := a.n.scfg.SessionPrefix + s.PID
	if err := a.n.client.Set(ctx, key, base64.StdEncoding.EncodeToString(b), ttl).Err(); err != nil {
		a.n.fail("publish", err)
	}
}

// RestoreSession takes the session from Redis, reads what it missed from
// the stream, then rejoins the socket to its rooms once the live reader
// has not passed the end of what was read: what comes later is delivered
// live (a message both read and delivered live is dropped by the receiver
// by offset). A failed or incomplete read (a timeout on a loaded machine)
// puts the session back and refuses the recovery: nothing is attached, so
// it never yields a recovered socket that silently missed messages.
func (a *streamsAdapter) RestoreSession(pid, offset string, attach func(*Session)) *Session {
	if a.window <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.n.cfg.RequestTimeout)
	defer cancel()
	key := a.n.scfg.SessionPrefix + pid
	var ttl *redis.DurationCmd
	var get *redis.StringCmd
	_, err := a.n.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ttl = p.PTTL(ctx, key)
		get = p.GetDel(ctx, key)
		return nil
	})
	raw, gerr := get.Result()
	if err != nil || gerr != nil {
		if !errors.Is(gerr, redis.Nil) {
			a.n.fail("request", err)
		}
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	var v map[string]any
	if err == nil {
		err = decodeMsgpack(b, &v)
	}
	if err != nil {
		a.n.fail("decode", fmt.Errorf("session: %w", err))
		return nil
	}
	s := &Session{PID: pid, Rooms: strings_(v["rooms"]), Data: v["data"]}
	if d := ttl.Val(); d > 0 {
		s.Expires = time.Now().Add(d) // kept if the session is put back
	}
	s.ID, _ = v["sid"].(string)
	s.Base, _ = v["base"].(string)
	if offset == "" {
		offset = s.Base
	}
	if !streamID.MatchString(offset) {
		return nil
	}
	if got, err := a.n.client.XRange(ctx, a.n.scfg.Stream, offset, offset).Result(); err != nil || len(got) == 0 {
		if err != nil {
			a.n.fail("request", err)
			a.SaveSession(s) // unknown for now, not gone
		}
		return nil // the offset was trimmed away: no exact catch-up
	}
	rooms := make(map[string]struct{}, len(s.Rooms))
	for _, r := range s.Rooms {
		rooms[r] = struct{}{}
	}
	for i := 0; i < restoreMaxRanges; i++ {
		end, err := a.readMissed(s, rooms, offset)
		if err != nil {
			a.n.fail("request", err)
			break
		}
		offset = end
		a.n.mu.Lock()
		if !OffsetAfter(a.n.lastID, offset) {
			// The live reader delivers everything after offset to the
			// rejoined socket: it takes n.mu before each entry.
			attach(s)
			a.Memory.Join(s.ID, s.Rooms...)
			a.n.mu.Unlock()
			return s
		}
		a.n.mu.Unlock()
	}
	s.Missed = nil
	a.SaveSession(s)
	return nil
}

// readMissed appends to s.Missed what the stream holds after offset for the
// session's rooms, up to its end, and returns the last entry id read. Each
// range has its own deadline, and its size follows the entries' size: it
// starts at one entry, doubles while ranges stay small and falls back to
// one entry after a large range or a failed one, so a few huge entries (tens
// of MB, hostile or not) are not read in one reply that cannot arrive within
// the client's read timeout on a loaded machine.
func (a *streamsAdapter) readMissed(s *Session, rooms map[string]struct{}, offset string) (string, error) {
	count, failures := int64(1), 0
	for i := 0; i < restoreMaxRanges*1000; {
		ctx, cancel := context.WithTimeout(context.Background(), a.n.cfg.RequestTimeout)
		entries, err := a.n.client.XRangeN(ctx, a.n.scfg.Stream, "("+offset, "+", count).Result()
		cancel()
		if err != nil {
			if failures++; failures == restoreMaxFailures {
				return offset, err
			}
			count = 1 // then again, one entry at a time
			continue
		}
		if len(entries) == 0 {
			return offset, nil
		}
		i += len(entries)
		size := 0
		for _, e := range entries {
			offset = e.ID
			for _, v := range e.Values {
				if v, ok := v.(string); ok {
					size += len(v)
				}
			}
			if e.Values["nsp"] != a.nsp || e.Values["type"] != strconv.Itoa(cmBroadcast) {
				continue
			}
			m, err := decodeStreamEntry(e.Values)
			if err != nil {
				a.n.fail("decode", err)
				continue // skipped, as the live reader skipped it
			}
			if _, withAck := m.Data["requestId"]; withAck {
				continue
			}
			msg, ok := messageOf(m.Data["packet"], a.nsp)
			opts := fromWire(m.Data["opts"])
			if ok && recoverable(msg, opts) && matches(rooms, opts) {
				msg.Offset = e.ID
				s.Missed = append(s.Missed, msg)
			}
		}
		switch {
		case size > restoreRangeBytes:
			count = 1
		case size < restoreRangeBytes/4:
			count = min(2*count, 1000)
		}
	}
	return offset, fmt.Errorf("more than %d entries to replay", restoreMaxRanges*1000)
}
