package clients

import (
	"sync"
	"time"
)

// Defaults of a queue's bounds.
const (
	DefaultMaxBytes   = 1 << 20
	DefaultMaxPackets = 1024
)

// QueueConfig bounds a queue. Zero fields take the defaults; a negative
// bound means unbounded.
type QueueConfig struct {
	MaxBytes   int    // default DefaultMaxBytes
	MaxPackets int    // default DefaultMaxPackets
	Policy     Policy // default DefaultPolicy
}

func (c QueueConfig) withDefaults() QueueConfig {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxPackets == 0 {
		c.MaxPackets = DefaultMaxPackets
	}
	if c.Policy == policyDefault {
		c.Policy = DefaultPolicy
	}
	return c
}

// PushResult tells the caller what happened to a pushed packet.
type PushResult uint8

const (
	Queued   PushResult = iota // the packet is queued
	Replaced                   // it replaced a queued packet with the same key
	Dropped                    // it (volatile) or older packets were dropped to make room
	Full                       // the queue is full and the policy is Disconnect: close the connection
	Closed                     // the queue is closed or cut; the packet was discarded
)

// Entry is a queued packet with the time it was queued.
type Entry struct {
	Packet *Packet
	At     time.Time
}

// Stats observes what connections and their queues do; any field may be
// nil. The functions run on the connections' goroutines and must not block.
type Stats struct {
	Dropped   func(n int, p Policy) // packets dropped by a policy
	Coalesced func()                // a packet replaced by a newer one
	Opened    func()                // a connection opened
	Closed    func(r Reason)        // a connection closed
	Taken     func(entries []Entry) // a writer took these from a queue
	Sent      func(entries []Entry) // a writer wrote these
}

func (st *Stats) taken(entries []Entry) {
	if st.Taken != nil {
		st.Taken(entries)
	}
}

func (st *Stats) sent(entries []Entry) {
	if st.Sent != nil {
		st.Sent(entries)
	}
}

// Queue is a bounded FIFO of packets with a single drainer. See the package
// documentation for the concurrency contract.
type Queue struct {
	mu      sync.Mutex
	cfg     QueueConfig
	buf     []Entry // ring
	head    int
	n       int
	bytes   int
	writing bool
	closed  bool
	// cut is set by the first push a Disconnect policy refuses: from then
	// on every push is refused, so what the writer delivers is a gap-free
	// prefix of the stream (no later packet can slip in before the close).
	cut   bool
	keys  map[string]int // coalesce key -> absolute position (seq)
	seq   int            // absolute position of buf[head]
	wake  func()
	stats Stats
}

// NewQueue makes a queue. wake is called, outside the lock, each time data
// arrives while no writer is active; it must start or signal the writer and
// must not block.
func NewQueue(cfg QueueConfig, wake func(), stats Stats) *Queue {
	return &Queue{cfg: cfg.withDefaults(), wake: wake, stats: stats, buf: make([]Entry, 4)}
}

// SetWake replaces the wake function when a connection changes transport:
// the previous writer is gone, so the new one is woken if data is waiting.
func (q *Queue) SetWake(wake func()) {
	q.mu.Lock()
	q.wake = wake
	call := q.n > 0 && !q.closed
	q.writing = call
	q.mu.Unlock()
	if call {
		wake()
	}
}

// Push queues p. It never blocks. Full means the Disconnect policy refused
// p: the queue is then cut, and every later push (control packets too)
// returns Closed, so the stream ends with a gap-free prefix; what is queued
// stays for the writer until Close.
func (q *Queue) Push(p *Packet) PushResult {
	now := time.Now()
	q.mu.Lock()
	if q.closed || q.cut {
		q.mu.Unlock()
		return Closed
	}
	res := Queued
	if p.Kind == Volatile && (q.n > 0 || q.writing) {
		q.mu.Unlock()
		if q.stats.Dropped != nil {
			q.stats.Dropped(1, q.cfg.Policy)
		}
		return Dropped
	}
	policy := p.Policy
	if policy == policyDefault {
		policy = q.cfg.Policy
	}
	if policy == Coalesce && p.Key != "" && p.Kind != Control && q.over(p.size) {
		if pos, ok := q.keys[p.Key]; ok {
			e := &q.buf[(q.head+pos-q.seq)%len(q.buf)]
			q.bytes += p.size - e.Packet.size
			e.Packet = p // keep its place and its queued time
			q.mu.Unlock()
			if q.stats.Coalesced != nil {
				q.stats.Coalesced()
			}
			return Replaced
		}
	}
	dropped := 0
	if p.Kind != Control && q.over(p.size) {
		if policy == Disconnect {
			q.cut = true
			q.mu.Unlock()
			return Full
		}
		dropped = q.dropOldest(p.size)
		if q.over(p.size) {
			// Only control packets are left; the new one goes instead.
			q.mu.Unlock()
			if q.stats.Dropped != nil {
				q.stats.Dropped(dropped+1, policy)
			}
			return Dropped
		}
		res = Dropped
	}
	if policy == Coalesce {
		q.pushEntry(Entry{Packet: p, At: now})
	} else {
		q.push(Entry{Packet: p, At: now})
	}
	wake := q.wakeLocked()
	q.mu.Unlock()
	if dropped > 0 && q.stats.Dropped != nil {
		q.stats.Dropped(dropped, policy)
	}
	if wake != nil {
		wake()
	}
	return res
}

func (q *Queue) over(size int) bool {
	return (q.cfg.MaxPackets > 0 && q.n+1 > q.cfg.MaxPackets) ||
		(q.cfg.MaxBytes > 0 && q.bytes+size > q.cfg.MaxBytes)
}

func (q *Queue) wakeLocked() func() {
	if q.writing || q.wake == nil {
		return nil
	}
	q.writing = true
	return q.wake
}

func (q *Queue) push(e Entry) {
	if q.n == len(q.buf) {
		nb := make([]Entry, len(q.buf)*2)
		for i := 0; i < q.n; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = e
	q.n++
	q.bytes += e.Packet.size
}

// dropOldest removes droppable entries, oldest first, until size fits,
// keeping control packets in their order. It returns how many it dropped.
func (q *Queue) dropOldest(size int) int {
	dropped := 0
	// Fast path: droppable packets at the head go one by one.
	for q.n > 0 && q.over(size) && q.buf[q.head].Packet.Kind != Control {
		q.popHead()
		dropped++
	}
	if q.n == 0 || !q.over(size) {
		return dropped
	}
	// A control packet is at the head: rebuild, skipping the oldest
	// droppable entries.
	all := make([]Entry, 0, q.n)
	for q.n > 0 {
		all = append(all, q.popHead())
	}
	need := q.overBy(all, size)
	for _, e := range all {
		if need > 0 && e.Packet.Kind != Control {
			need--
			dropped++
			continue
		}
		q.pushEntry(e)
	}
	return dropped
}

// overBy counts how many droppable entries of all, oldest first, must go
// for size more bytes to fit.
func (q *Queue) overBy(all []Entry, size int) int {
	n, bytes := len(all), 0
	for _, e := range all {
		bytes += e.Packet.size
	}
	k := 0
	for _, e := range all {
		fits := (q.cfg.MaxPackets <= 0 || n+1 <= q.cfg.MaxPackets) && (q.cfg.MaxBytes <= 0 || bytes+size <= q.cfg.MaxBytes)
		if fits {
			break
		}
		if e.Packet.Kind != Control {
			n--
			bytes -= e.Packet.size
			k++
		}
	}
	return k
}

func (q *Queue) popHead() Entry {
	e := q.buf[q.head]
	q.buf[q.head] = Entry{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	q.bytes -= e.Packet.size
	if e.Packet.Key != "" {
		q.forget(e.Packet.Key, q.seq)
	}
	q.seq++
	return e
}

// pushEntry appends e and indexes its coalesce key.
func (q *Queue) pushEntry(e Entry) {
	q.push(e)
	if e.Packet.Key != "" && e.Packet.Kind != Control {
		if q.keys == nil {
			q.keys = make(map[string]int)
		}
		q.keys[e.Packet.Key] = q.seq + q.n - 1
	}
}

func (q *Queue) forget(key string, pos int) {
	if q.keys != nil && q.keys[key] == pos {
		delete(q.keys, key)
	}
}

// Take moves every queued entry to dst (appending) and returns it. When the
// queue is empty it marks the writer inactive, so the next Push wakes one:
// a writer stops exactly when Take returns nothing.
func (q *Queue) Take(dst []Entry) []Entry {
	q.mu.Lock()
	if q.n == 0 {
		q.writing = false
		q.mu.Unlock()
		return dst
	}
	for i := 0; i < q.n; i++ {
		j := (q.head + i) % len(q.buf)
		dst = append(dst, q.buf[j])
		q.buf[j] = Entry{}
	}
	q.seq += q.n
	q.head, q.n, q.bytes = 0, 0, 0
	if len(q.keys) > 0 {
		clear(q.keys)
	}
	q.mu.Unlock()
	return dst
}

// Len reports the queued packets and bytes.
func (q *Queue) Len() (packets, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, q.bytes
}

// Writing reports whether a writer is active: woken and not yet told by
// Take that the queue is empty.
func (q *Queue) Writing() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.writing
}

// Close discards what is queued and refuses further pushes. It reports
// whether a writer was active (or the queue already closed): if not, no
// writer will run again, and the caller ends the transport itself.
func (q *Queue) Close() (writerActive bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return true
	}
	writerActive = q.writing
	q.closed = true
	q.buf, q.head, q.n, q.bytes, q.keys = nil, 0, 0, 0, nil
	return writerActive
}
