package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/client"
	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/stats"
)

// PoolSpec describes the clients of one process. It travels as JSON to
// worker processes.
type PoolSpec struct {
	URL       string          `json:"url"`
	Path      string          `json:"path"`
	Namespace string          `json:"namespace"`
	Auth      json.RawMessage `json:"auth,omitempty"`
	Clients   int             `json:"clients"`
	// Slow of the Clients stop reading once they have joined the room.
	Slow int `json:"slow"`
	// SlowRcvBuf is the SO_RCVBUF of slow clients, bytes.
	SlowRcvBuf  int     `json:"slow_rcvbuf"`
	Rate        float64 `json:"rate"` // new connections per second
	Concurrency int     `json:"concurrency"`
	// Epoch is the run's time origin, Unix ns: payload "t" values are
	// nanoseconds since it.
	Epoch    int64  `json:"epoch"`
	Room     string `json:"room"`
	Event    string `json:"event"`
	Messages int    `json:"messages"`
	// ConnectTimeout bounds the whole connect phase of this pool.
	ConnectTimeout time.Duration `json:"connect_timeout"`
}

// Progress counts what a pool has done so far.
type Progress struct {
	Connected int64 `json:"connected"`
	Failed    int64 `json:"failed"`
	Joined    int64 `json:"joined"`
	Received  int64 `json:"received"`
	Acks      int64 `json:"acks"`
	Dropped   int64 `json:"dropped"`
}

func (p *Progress) add(o Progress) {
	p.Connected += o.Connected
	p.Failed += o.Failed
	p.Joined += o.Joined
	p.Received += o.Received
	p.Acks += o.Acks
	p.Dropped += o.Dropped
}

// ConnectReply is the outcome of the connect phase.
type ConnectReply struct {
	Connected int            `json:"connected"`
	Failed    int            `json:"failed"`
	Errors    map[string]int `json:"errors,omitempty"`
	Latency   stats.Snapshot `json:"latency"`
}

// JoinReply is the outcome of joining the room.
type JoinReply struct {
	Joined     int            `json:"joined"`
	JoinedSlow int            `json:"joined_slow"`
	Failed     int            `json:"failed"`
	Errors     map[string]int `json:"errors,omitempty"`
	Latency    stats.Snapshot `json:"latency"`
}

// EchoRequest starts the echo loop.
type EchoRequest struct {
	Warmup   time.Duration `json:"warmup"`
	Duration time.Duration `json:"duration"`
	Payload  int           `json:"payload"`
}

// EchoReply is the outcome of the echo loop.
type EchoReply struct {
	Acks       int64          `json:"acks"` // in the measured window
	Sent       int64          `json:"sent"`
	Unanswered int64          `json:"unanswered"`
	Mismatched int64          `json:"mismatched"`
	Errors     map[string]int `json:"errors,omitempty"`
	Latency    stats.Snapshot `json:"latency"`
}

// ReportReply is what the receivers of broadcasts saw.
type ReportReply struct {
	Received   int64          `json:"received"`
	Misordered int64          `json:"misordered"`
	BadPayload int64          `json:"bad_payload"`
	Other      int64          `json:"other_events"`
	Latency    stats.Snapshot `json:"latency"`
	SeqCount   []int64        `json:"seq_count"`
	SeqMax     []int64        `json:"seq_max"`
	Dropped    int64          `json:"dropped"`
	DropErrors map[string]int `json:"drop_errors,omitempty"`
}

// pool is the set of clients of one process.
type pool struct {
	spec    PoolSpec
	event   []byte
	base    time.Time // monotonic origin for echo round trips
	members []*member
	readers sync.WaitGroup

	connected, failed, joined, joinDone atomic.Int64
	received, misordered, badPayload    atomic.Int64
	other, dropped, acks, sent          atomic.Int64
	mismatched, slowDropped             atomic.Int64

	connectLat, joinLat, deliveryLat, echoLat stats.Histogram

	seqCount []atomic.Int64
	seqMax   []atomic.Int64

	echoRunning         atomic.Bool
	echoFrom, echoUntil atomic.Int64 // window, ns since base
	echoPayload         []byte

	connectErrs, joinErrs, dropErrs, echoErrs, slowErrs errorCounts
}

func newPool(spec PoolSpec) *pool {
	return &pool{
		spec:     spec,
		event:    []byte(spec.Event),
		base:     time.Now(),
		seqCount: make([]atomic.Int64, spec.Messages),
		seqMax:   make([]atomic.Int64, spec.Messages),
	}
}

func (p *pool) progress() Progress {
	return Progress{
		Connected: p.connected.Load(), Failed: p.failed.Load(), Joined: p.joined.Load(),
		Received: p.received.Load(), Acks: p.acks.Load(), Dropped: p.dropped.Load(),
	}
}

// isSlow spreads the slow clients evenly over the pool.
func (p *pool) isSlow(i int) bool {
	n, s := p.spec.Clients, p.spec.Slow
	return s > 0 && (i*s)/n != ((i+1)*s)/n
}

// connect opens the pool's clients at the spec's rate with at most
// Concurrency handshakes in flight.
func (p *pool) connect(ctx context.Context) (ConnectReply, error) {
	opts := client.Options{URL: p.spec.URL, Path: p.spec.Path, Namespace: p.spec.Namespace, Auth: p.spec.Auth}
	fast, err := client.NewDialer(opts)
	if err != nil {
		return ConnectReply{}, err
	}
	opts.ReceiveBuffer = p.spec.SlowRcvBuf
	slow, err := client.NewDialer(opts)
	if err != nil {
		return ConnectReply{}, err
	}
	if p.spec.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.spec.ConnectTimeout)
		defer cancel()
	}
	conc := max(p.spec.Concurrency, 1)
	lim := rate.NewLimiter(rate.Limit(p.spec.Rate), max(1, min(conc, int(p.spec.Rate/20))))
	if p.spec.Rate <= 0 {
		lim = rate.NewLimiter(rate.Inf, 1)
	}
	p.members = make([]*member, p.spec.Clients)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := range p.spec.Clients {
		if err := lim.Wait(ctx); err != nil {
			p.failed.Add(int64(p.spec.Clients - i))
			p.connectErrs.add(fmt.Errorf("not attempted: %w", err))
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m := &member{p: p, slow: p.isSlow(i), lastSeq: -1}
			d := fast
			if m.slow {
				d = slow
			}
			start := time.Now()
			c, err := d.Dial(ctx, m)
			if err != nil {
				p.failed.Add(1)
				p.connectErrs.add(err)
				return
			}
			p.connectLat.Record(int64(time.Since(start)))
			m.c = c
			p.members[i] = m
			p.connected.Add(1)
			p.readers.Add(1)
			go m.read()
		}()
	}
	wg.Wait()
	return ConnectReply{
		Connected: int(p.connected.Load()), Failed: int(p.failed.Load()),
		Errors: p.connectErrs.snapshot(), Latency: p.connectLat.Snapshot(),
	}, nil
}

// joinAckID is the ack id of the join; echo acks count up from 1.
const joinAckID = 0

// join makes every client join the room and waits for the acks (at most
// timeout). Slow clients then stop reading.
func (p *pool) join(ctx context.Context, timeout time.Duration) JoinReply {
	room, _ := json.Marshal(p.spec.Room)
	var sent int64
	for _, m := range p.members {
		if m == nil {
			continue
		}
		m.joinSent.Store(int64(time.Since(p.base)))
		if err := m.c.EmitAck(joinAckID, "join", room); err != nil {
			p.joinErrs.add(err)
			continue
		}
		sent++
	}
	waitFor(ctx, timeout, func() bool { return p.joinDone.Load() >= sent })
	r := JoinReply{Latency: p.joinLat.Snapshot(), Errors: p.joinErrs.snapshot()}
	for _, m := range p.members {
		if m == nil {
			continue
		}
		switch {
		case !m.joinedOK.Load():
			r.Failed++
		case m.slow:
			r.JoinedSlow++
			m.c.StopReading()
		default:
			r.Joined++
		}
	}
	if missing := sent - p.joinDone.Load(); missing > 0 {
		p.joinErrs.add(fmt.Errorf("no join ack within %v", timeout))
		r.Errors = p.joinErrs.snapshot()
	}
	return r
}

// echo keeps one echo in flight per (fast) client for warmup+duration and
// counts the acks that arrive inside the window after the warmup.
func (p *pool) echo(ctx context.Context, req EchoRequest) EchoReply {
	p.echoPayload = echoPayload(req.Payload)
	start := time.Since(p.base)
	p.echoFrom.Store(int64(start + req.Warmup))
	p.echoUntil.Store(int64(start + req.Warmup + req.Duration))
	p.echoRunning.Store(true)
	for _, m := range p.members {
		if m != nil && !m.slow {
			m.sendEcho()
		}
	}
	timer := time.NewTimer(req.Warmup + req.Duration)
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
	timer.Stop()
	p.echoRunning.Store(false)
	// Let the last round trips come back (they are not counted) so that the
	// connections are quiet before the next phase.
	waitFor(ctx, 5*time.Second, func() bool { return p.sent.Load() <= p.acks.Load()+p.mismatched.Load() })
	return EchoReply{
		Acks:       int64(p.echoLat.Count()),
		Sent:       p.sent.Load(),
		Unanswered: p.sent.Load() - p.acks.Load() - p.mismatched.Load(),
		Mismatched: p.mismatched.Load(),
		Errors:     p.echoErrs.snapshot(),
		Latency:    p.echoLat.Snapshot(),
	}
}

func (p *pool) report() ReportReply {
	r := ReportReply{
		Received:   p.received.Load(),
		Misordered: p.misordered.Load(),
		BadPayload: p.badPayload.Load(),
		Other:      p.other.Load(),
		Latency:    p.deliveryLat.Snapshot(),
		SeqCount:   make([]int64, len(p.seqCount)),
		SeqMax:     make([]int64, len(p.seqMax)),
		Dropped:    p.dropped.Load(),
		DropErrors: p.dropErrs.snapshot(),
	}
	for i := range p.seqCount {
		r.SeqCount[i] = p.seqCount[i].Load()
		r.SeqMax[i] = p.seqMax[i].Load()
	}
	return r
}

// ResumeReply tells how many stalled clients the server had cut off.
type ResumeReply struct {
	Slow    int            `json:"slow"`
	Dropped int64          `json:"dropped"`
	Errors  map[string]int `json:"errors,omitempty"`
}

// resume makes the stalled clients read again and waits (at most timeout)
// for the server's close of each one that the server gave up on: reading
// the backlog takes milliseconds, so what is still open after timeout was
// not cut off.
func (p *pool) resume(ctx context.Context, timeout time.Duration) ResumeReply {
	slow := 0
	for _, m := range p.members {
		if m != nil && m.slow {
			slow++
			m.c.ResumeReading()
		}
	}
	waitFor(ctx, timeout, func() bool { return p.slowDropped.Load() >= int64(slow) })
	return ResumeReply{Slow: slow, Dropped: p.slowDropped.Load(), Errors: p.slowErrs.snapshot()}
}

// close closes every client and waits (at most timeout) for the readers.
func (p *pool) close(ctx context.Context, timeout time.Duration) {
	for _, m := range p.members {
		if m != nil {
			_ = m.c.Close()
		}
	}
	done := make(chan struct{})
	go func() {
		p.readers.Wait()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// member is one client and the Handler of its connection.
type member struct {
	p    *pool
	c    *client.Conn
	slow bool

	lastSeq  int64 // reader goroutine only
	joinSent atomic.Int64
	joinedOK atomic.Bool
	echoID   atomic.Int64
	echoSent atomic.Int64 // ns since pool base
}

func (m *member) read() {
	defer m.p.readers.Done()
	if err := m.c.ReadLoop(); err != nil {
		if m.slow {
			m.p.slowDropped.Add(1)
			m.p.slowErrs.add(err)
			return
		}
		m.p.dropped.Add(1)
		m.p.dropErrs.add(err)
	}
}

// HandleEvent records a broadcast delivery.
func (m *member) HandleEvent(name, args []byte) {
	p := m.p
	if m.slow {
		return // a stalled reader's last frames do not count
	}
	if !bytes.Equal(name, p.event) {
		p.other.Add(1)
		return
	}
	now := time.Now().UnixNano() - p.spec.Epoch
	t, s, ok := parsePayload(args)
	if !ok {
		p.badPayload.Add(1)
		return
	}
	lat := now - t
	p.deliveryLat.Record(lat)
	if s >= 0 && s < int64(len(p.seqCount)) {
		p.seqCount[s].Add(1)
		for {
			cur := p.seqMax[s].Load()
			if cur >= lat || p.seqMax[s].CompareAndSwap(cur, lat) {
				break
			}
		}
	}
	if s <= m.lastSeq {
		p.misordered.Add(1)
	} else {
		m.lastSeq = s
	}
	p.received.Add(1)
}

// HandleAck takes the join ack and echo acks; an echo ack sends the next
// echo from this (the reader) goroutine while the loop runs.
func (m *member) HandleAck(id int64, args []byte) {
	p := m.p
	now := int64(time.Since(p.base))
	if id == joinAckID {
		if bytes.Contains(args, []byte(`"ok":true`)) {
			p.joinLat.Record(now - m.joinSent.Load())
			m.joinedOK.Store(true)
			p.joined.Add(1)
		} else {
			p.joinErrs.add(fmt.Errorf("join refused: %.80s", args))
		}
		p.joinDone.Add(1)
		return
	}
	if id != m.echoID.Load() {
		p.mismatched.Add(1)
		return
	}
	p.acks.Add(1)
	if now >= p.echoFrom.Load() && now <= p.echoUntil.Load() {
		p.echoLat.Record(now - m.echoSent.Load())
	}
	if p.echoRunning.Load() {
		m.sendEcho()
	}
}

func (m *member) sendEcho() {
	id := m.echoID.Add(1)
	m.echoSent.Store(int64(time.Since(m.p.base)))
	m.p.sent.Add(1)
	if err := m.c.EmitAck(id, "echo", m.p.echoPayload); err != nil {
		m.p.sent.Add(-1)
		m.p.echoErrs.add(err)
	}
}

// waitFor polls cond every 5 ms until it holds, timeout passes or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// errorCounts counts errors by message with ports and ids masked, keeping
// at most maxErrorKinds kinds.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int
}

const maxErrorKinds = 12

var errDigits = regexp.MustCompile(`:\d+|\b\d{3,}\b`)

func (e *errorCounts) add(err error) {
	key := errDigits.ReplaceAllString(err.Error(), ":N")
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	if _, ok := e.m[key]; !ok && len(e.m) >= maxErrorKinds {
		key = "(other)"
	}
	e.m[key]++
}

func (e *errorCounts) snapshot() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.m) == 0 {
		return nil
	}
	out := make(map[string]int, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

func mergeCounts(dst, src map[string]int) map[string]int {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = map[string]int{}
	}
	for k, v := range src {
		dst[k] += v
	}
	return dst
}
