package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/stats"
)

// The throughput scenario: a publisher on node A, the receivers (all in one
// room) on node B. The publish rate goes up step by step (StartRate,
// ×RateFactor, … up to MaxRate), each step StepDuration long; after the
// first failing step up to Bisect steps between the last passing and the
// first failing rate narrow it down. A step passes when every receiver got
// every message of the step exactly once and in order, delivery p99 stayed
// under P99Limit, no publish failed, the publisher achieved at least 95 %
// of the offered rate and the server ended no connection. The sustained rate
// is the highest passing step's offered rate.
//
// Sequence numbers run on across steps (a receiver's order is checked over
// the whole run); per-step figures are differences of the receivers'
// cumulative counters and latency histograms taken before and after a step.

// ThroughputResult is Result.Throughput. JSON shape (one per run):
//
//	{
//	  "adapter": "redis",            // --adapter, or the --adapter of the spawn command, or ""
//	  "receivers": 1000,             // clients that joined the room on node B
//	  "payload_bytes": 100,
//	  "publish_via": "client",       // "client": a hub `publish` event over one Socket.IO connection to node A
//	  "step_seconds": 5,
//	  "p99_limit_ms": 100,
//	  "sustained_rate": 800,         // msg/s: the highest passing step's offered rate; 0 when none passed
//	  "stopped": "step 1600 msg/s failed: …",
//	  "steps": [ ThroughputStep, … ] // in the order they ran
//	}
type ThroughputResult struct {
	Adapter     string           `json:"adapter"`
	Receivers   int              `json:"receivers"`
	PayloadSize int              `json:"payload_bytes"`
	PublishVia  string           `json:"publish_via"`
	StepSeconds float64          `json:"step_seconds"`
	P99LimitMs  float64          `json:"p99_limit_ms"`
	Sustained   float64          `json:"sustained_rate"`
	Stopped     string           `json:"stopped"`
	Steps       []ThroughputStep `json:"steps"`
}

// ThroughputStep is one step at one offered rate. JSON shape:
//
//	{
//	  "offered_rate": 800,      // msg/s asked of the publisher
//	  "achieved_rate": 799.6,   // messages published / publishing time
//	  "published": 4000, "publish_failed": 0,
//	  "first_seq": 1234,        // sequence numbers first_seq … first_seq+published-1
//	  "expected": 4000000,      // receivers × published
//	  "delivered": 4000000, "lost": 0, "duplicated": 0, "misordered": 0,
//	  "dropped_conns": 0,       // receivers the server disconnected during the step
//	  "late_after_drain": 0,    // of "lost", how many arrived later (counted after failed steps only)
//	  "delivery": {"n":…, "mean_ms":…, "min_ms":…, "p50_ms":…, "p90_ms":…, "p99_ms":…, "p999_ms":…, "max_ms":…},
//	  "window_seconds": 5.3,    // publishing + draining: the CPU figures below are over this window
//	  "node_cpu_s": [0.4, 5.6], // CPU seconds of node A (publisher's) and node B (receivers') when the
//	                            // bench spawned them; with --url and --server-pid: [node B] alone
//	  "redis_cpu_s": 0.4,       // Redis used_cpu_user+used_cpu_sys delta; absent when no Redis was read
//	  "loadgen_cpu_s": 3.0, "other_cpu_s": 0.5,
//	  "pass": true,
//	  "fail": "",               // why it failed, "; "-separated
//	  "attempt": 1              // 2… : the same rate again after a failure (--retries)
//	}
type ThroughputStep struct {
	Offered       float64 `json:"offered_rate"`
	Achieved      float64 `json:"achieved_rate"`
	Published     int     `json:"published"`
	PublishFailed int     `json:"publish_failed"`
	FirstSeq      int     `json:"first_seq"`
	Expected      int64   `json:"expected"`
	Delivered     int64   `json:"delivered"`
	Lost          int64   `json:"lost"`
	Duplicated    int64   `json:"duplicated"`
	Misordered    int64   `json:"misordered"`
	Dropped       int64   `json:"dropped_conns"`
	// Late counts the deliveries that arrived after the step was measured
	// (while the bench waited for a failed step's backlog to go): Lost
	// minus Late never arrived.
	Late       int64         `json:"late_after_drain"`
	Delivery   stats.Summary `json:"delivery"`
	WindowSecs float64       `json:"window_seconds"`
	NodeCPU    []float64     `json:"node_cpu_s"`
	RedisCPU   *float64      `json:"redis_cpu_s,omitempty"`
	LoadgenCPU float64       `json:"loadgen_cpu_s"`
	OtherCPU   float64       `json:"other_cpu_s"`
	Pass       bool          `json:"pass"`
	Fail       string        `json:"fail,omitempty"`
	// Attempt is 1, or 2… when the step re-runs a rate that just failed.
	Attempt int `json:"attempt"`

	received int64 // the receivers' total when the step was measured
}

// Throughput defaults.
const (
	DefaultStartRate    = 25.0 // msg/s of the first step
	DefaultMaxRate      = 6400.0
	DefaultRateFactor   = 2.0
	DefaultStepDuration = 5 * time.Second
	DefaultBisect       = 2
	DefaultStepRetries  = 1
	DefaultP99Limit     = 100 * time.Millisecond
	// DefaultStepDrain is how long a step waits for its last deliveries
	// after publishing: anything later is lost (and far over the p99 limit).
	DefaultStepDrain = 3 * time.Second
	// maxThroughputMessages bounds the sequence space (the receivers keep
	// two counters per sequence number).
	maxThroughputMessages = 4_000_000
	// minAchieved is the share of the offered rate the publisher must reach
	// for a step to count.
	minAchieved = 0.95
)

// stepPlan chooses the rates: geometric steps up from start until one
// fails or max is passed, then up to bisect steps at the geometric middle
// of the last passing and the first failing rate.
type stepPlan struct {
	start, max, factor float64
	bisect             int

	last, pass, fail float64
	done             bool
	stop             string
}

func newStepPlan(start, maxRate, factor float64, bisect int) *stepPlan {
	return &stepPlan{start: start, max: maxRate, factor: factor, bisect: bisect}
}

// next returns the next rate to try, or 0 when the search is over (stop
// then says why).
func (p *stepPlan) next() float64 {
	if p.done {
		return 0
	}
	switch {
	case p.last == 0:
		p.last = p.start
	case p.fail == 0:
		if p.last >= p.max {
			p.end(fmt.Sprintf("every step passed up to --max-rate %g msg/s", p.max))
			return 0
		}
		p.last = math.Min(math.Round(p.last*p.factor), p.max)
	default:
		if p.pass == 0 {
			p.end(fmt.Sprintf("the first step (%g msg/s) failed: lower --start-rate", p.fail))
			return 0
		}
		mid := math.Round(math.Sqrt(p.pass * p.fail))
		if p.bisect <= 0 || mid <= p.pass || mid >= p.fail || p.fail/p.pass < 1.05 {
			p.end(fmt.Sprintf("highest pass %g msg/s, lowest fail %g msg/s", p.pass, p.fail))
			return 0
		}
		p.bisect--
		p.last = mid
	}
	return p.last
}

// record takes the outcome of the step at rate; fatal ends the search (the
// receivers are no longer all there, so later steps would mean nothing).
func (p *stepPlan) record(rate float64, pass, fatal bool, why string) {
	if pass {
		p.pass = math.Max(p.pass, rate)
	} else if p.fail == 0 || rate < p.fail {
		p.fail = rate
	}
	if fatal {
		p.end(why)
	}
}

func (p *stepPlan) end(why string) {
	if !p.done {
		p.done, p.stop = true, why
	}
}

// sustained is the highest passing rate (0: none).
func (p *stepPlan) sustained() float64 { return p.pass }

// budget is the most messages a plan can publish at duration per step
// (the size of the receivers' sequence space).
func (p *stepPlan) budget(duration time.Duration) int {
	total := 0.0
	steps := 0
	for r := p.start; ; r = math.Min(math.Round(r*p.factor), p.max) {
		total += math.Ceil(r * duration.Seconds())
		steps++
		if r >= p.max || steps > 1000 {
			break
		}
	}
	total += float64(max(p.bisect, 0)) * math.Ceil(p.max*duration.Seconds())
	return int(total) + 1
}

// judge fills the pass verdict of a step.
func judge(s *ThroughputStep, p99Limit time.Duration) {
	var why []string
	if s.Published == 0 {
		why = append(why, "nothing published")
	}
	if s.Achieved < minAchieved*s.Offered {
		why = append(why, fmt.Sprintf("publisher reached %.0f of %.0f msg/s", s.Achieved, s.Offered))
	}
	if s.PublishFailed > 0 {
		why = append(why, fmt.Sprintf("%d publishes failed", s.PublishFailed))
	}
	if s.Lost > 0 {
		why = append(why, fmt.Sprintf("%d lost", s.Lost))
	}
	if s.Duplicated > 0 {
		why = append(why, fmt.Sprintf("%d duplicated", s.Duplicated))
	}
	if s.Misordered > 0 {
		why = append(why, fmt.Sprintf("%d misordered", s.Misordered))
	}
	if s.Dropped > 0 {
		why = append(why, fmt.Sprintf("%d receivers disconnected", s.Dropped))
	}
	if limit := float64(p99Limit) / 1e6; !(s.Delivery.P99 < limit) {
		why = append(why, fmt.Sprintf("delivery p99 %.1f ms ≥ %.0f ms", s.Delivery.P99, limit))
	}
	s.Pass = len(why) == 0
	s.Fail = strings.Join(why, "; ")
}

// seqTally counts, over sequence numbers [from, to), the deliveries
// missing and the extra ones, given each sequence number's delivery count
// and the number of receivers.
func seqTally(counts []int64, from, to int, receivers int64) (lost, dup int64) {
	for i := from; i < to && i < len(counts); i++ {
		c := counts[i]
		if c < receivers {
			lost += receivers - c
		} else {
			dup += c - receivers
		}
	}
	for i := max(from, len(counts)); i < to; i++ {
		lost += receivers
	}
	return lost, dup
}

// snapshotDiff is what b (later) recorded beyond a (earlier) of the same
// cumulative histogram. Min and Max are the bounds of the buckets left.
func snapshotDiff(b, a stats.Snapshot) stats.Snapshot {
	prev := make(map[uint64]uint64, len(a.Buckets))
	for _, x := range a.Buckets {
		prev[x[0]] = x[1]
	}
	var d stats.Snapshot
	for _, x := range b.Buckets {
		c := x[1] - min(x[1], prev[x[0]])
		if c == 0 {
			continue
		}
		d.Buckets = append(d.Buckets, [2]uint64{x[0], c})
		d.N += c
	}
	d.Sum = b.Sum - a.Sum
	if d.N > 0 {
		d.Min = bucketLow(d.Buckets[0][0])
		d.Max = min(b.Max, bucketHigh(d.Buckets[len(d.Buckets)-1][0]))
	}
	return d
}

// bucketLow and bucketHigh are the bounds of a stats histogram bucket (its
// layout: 64 exact values, then 64 linear buckets per power of two).
func bucketLow(i uint64) int64 {
	const sub = 64
	if i < sub {
		return int64(i)
	}
	e := (i - sub) / sub
	m := int64((i-sub)%sub + sub)
	return m << e
}

func bucketHigh(i uint64) int64 {
	const sub = 64
	if i < sub {
		return int64(i)
	}
	e := (i - sub) / sub
	return bucketLow(i) + int64(1)<<e - 1
}

// runEnv is what a run's command lines may refer to: {prefix} (a fresh
// channel prefix / stream name), {redis-url}, {adapter}.
type runEnv struct {
	prefix   string
	redisURL string
	adapter  string
	redis    *exec.Cmd // --private-redis
}

// prepareRun picks a fresh prefix and starts a private Redis when asked.
func prepareRun(ctx context.Context, cfg *Config, cmd, logDir, target string, runNo int) (*runEnv, error) {
	env := &runEnv{
		prefix:   fmt.Sprintf("rcbench-%d-%s-%d", time.Now().UnixNano(), target, runNo),
		redisURL: cfg.RedisURL,
		adapter:  cfg.Adapter,
	}
	if env.adapter == "" {
		env.adapter = adapterOf(cmd)
	}
	if !cfg.PrivateRedis {
		return env, nil
	}
	port, err := pickPort(cfg.PortMin, cfg.PortMax)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, fmt.Sprintf("redis-%s-run%d.log", target, runNo))
	rc := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--logfile", logPath)
	if err := rc.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	env.redis = rc
	env.redisURL = fmt.Sprintf("redis://127.0.0.1:%d", port)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if !waitFor(ctx, 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}) {
		env.close()
		return nil, fmt.Errorf("private redis-server on %s did not come up (log %s)", addr, logPath)
	}
	return env, nil
}

func (e *runEnv) close() {
	if e == nil || e.redis == nil {
		return
	}
	_ = e.redis.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = e.redis.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = e.redis.Process.Kill()
		<-done
	}
}

// expand fills the run's placeholders in a command line.
func (e *runEnv) expand(cmd string) string {
	return strings.NewReplacer("{prefix}", e.prefix, "{redis-url}", e.redisURL, "{adapter}", e.adapter).Replace(cmd)
}

// adapterArgs is appended to the server commands of --adapter that do not
// name an adapter themselves. Recovery is off on both servers: the
// scenario measures room throughput, and a recovery history per broadcast
// costs differently per adapter (Node's pub/sub adapter keeps none).
const adapterArgs = " --adapter {adapter} --redis-url {redis-url} --redis-prefix {prefix} --nats-prefix {prefix} --recovery-window 0 --log-level warn"

// withAdapter adds adapterArgs to a command without --adapter.
func withAdapter(cmd, adapter string) string {
	if adapter == "" || strings.Contains(cmd, "--adapter") {
		return cmd
	}
	return cmd + adapterArgs
}

// adapterOf is the --adapter value of a command line ("" when none).
func adapterOf(cmd string) string {
	f := strings.Fields(cmd)
	for i, a := range f {
		if v, ok := strings.CutPrefix(a, "--adapter="); ok {
			return v
		}
		if a == "--adapter" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// redisCPU reads used_cpu_user + used_cpu_sys from INFO cpu.
func redisCPU(ctx context.Context, redisURL string) (float64, error) {
	u, err := url.Parse(redisURL)
	if err != nil || u.Host == "" {
		return 0, fmt.Errorf("bad redis url %q", redisURL)
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if pw, ok := u.User.Password(); ok {
		if _, err := fmt.Fprintf(c, "AUTH %s\r\n", pw); err != nil {
			return 0, err
		}
	}
	if _, err := c.Write([]byte("INFO cpu\r\n")); err != nil {
		return 0, err
	}
	return parseRedisCPU(bufio.NewReader(c))
}

// parseRedisCPU reads (skipping +OK of an AUTH) the bulk reply of INFO cpu.
func parseRedisCPU(br *bufio.Reader) (float64, error) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "+"):
			continue
		case strings.HasPrefix(line, "-"):
			return 0, errors.New("redis: " + line[1:])
		case strings.HasPrefix(line, "$"):
			n, err := strconv.Atoi(line[1:])
			if err != nil || n < 0 || n > 1<<16 {
				return 0, fmt.Errorf("redis: bad INFO reply %q", line)
			}
			body := make([]byte, n+2)
			if _, err := io.ReadFull(br, body); err != nil {
				return 0, err
			}
			var sum float64
			found := 0
			for _, l := range strings.Split(string(body), "\n") {
				k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
				if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
					x, err := strconv.ParseFloat(v, 64)
					if err != nil {
						return 0, fmt.Errorf("redis: bad %s %q", k, v)
					}
					sum += x
					found++
				}
			}
			if found != 2 {
				return 0, errors.New("redis: INFO cpu without used_cpu_user/used_cpu_sys")
			}
			return sum, nil
		default:
			return 0, fmt.Errorf("redis: unexpected reply %q", line)
		}
	}
}

// tpMark is the state of the receivers, the CPU clocks and Redis at a
// step's boundary.
type tpMark struct {
	at         time.Time
	lat        stats.Snapshot
	misordered int64
	received   int64
	dropped    int64
	nodes      []time.Duration
	loadgen    time.Duration
	machine    time.Duration
	redis      float64
	redisOK    bool
	counts     []int64
}

func (r *run) tpMark(ctx context.Context, env *runEnv, withCounts bool) (tpMark, error) {
	m := tpMark{at: time.Now()}
	reps, err := r.reports(ctx)
	if err != nil {
		return m, err
	}
	for _, x := range reps {
		m.lat.Merge(x.Latency)
		m.misordered += x.Misordered
		m.received += x.Received
		m.dropped += x.Dropped
		if withCounts {
			if m.counts == nil {
				m.counts = make([]int64, len(x.SeqCount))
			}
			for i := range min(len(m.counts), len(x.SeqCount)) {
				m.counts[i] += x.SeqCount[i]
			}
		}
	}
	for _, pid := range r.cpuPIDs {
		d, _ := cpuTime(pid)
		m.nodes = append(m.nodes, d)
	}
	c := r.cpuMark()
	m.loadgen, m.machine = c.loadgen, c.machine
	if env != nil && env.usesRedis() {
		m.redis, err = redisCPU(ctx, env.redisURL)
		m.redisOK = err == nil
	}
	return m, nil
}

// usesRedis tells whether the run's servers talk to Redis (by adapter).
func (e *runEnv) usesRedis() bool { return strings.HasPrefix(e.adapter, "redis") }

// throughput runs the scenario once the receivers are connected.
func (r *run) throughput(ctx context.Context, pubURL string, env *runEnv) error {
	cfg := r.cfg
	j, pub, err := r.joinAndPublisher(ctx, pubURL)
	if err != nil {
		return err
	}
	defer pub.close()

	tp := &ThroughputResult{
		Adapter: env.adapter, Receivers: j.Joined, PayloadSize: cfg.Payload, PublishVia: cfg.PublishVia,
		StepSeconds: cfg.StepDuration.Seconds(), P99LimitMs: float64(cfg.P99Limit) / 1e6,
	}
	r.res.Throughput = tp
	plan := newStepPlan(cfg.StartRate, cfg.MaxRate, cfg.RateFactor, cfg.Bisect)
	cpu0 := r.cpuMark()
	seq := 0
	failedBefore := 0
	for rate := plan.next(); rate > 0 && ctx.Err() == nil; rate = plan.next() {
		// A failed step runs again up to StepRetries times (the machine
		// is shared: a burst of foreign load fails a step the servers
		// would pass); it counts as failed when every attempt failed.
		var st ThroughputStep
		for attempt := 0; ; attempt++ {
			n := int(math.Ceil(rate * cfg.StepDuration.Seconds()))
			if seq+n > cfg.Messages {
				plan.end(fmt.Sprintf("sequence space of %d messages used up", cfg.Messages))
				break
			}
			r.ui.phase(fmt.Sprintf("step %g msg/s", rate))
			var failed int
			var err error
			st, failed, err = r.tpStep(ctx, env, pub, rate, seq, n, int64(j.Joined), failedBefore)
			if err != nil {
				return err
			}
			st.Attempt = attempt + 1
			failedBefore = failed
			seq += st.Published
			tp.Steps = append(tp.Steps, st)
			r.ui.logf("  %s: %g msg/s offered, %.0f achieved, p99 %.1f ms, lost %d: %s", r.res.Target, rate, st.Achieved, st.Delivery.P99, st.Lost, passWord(st))
			if !st.Pass {
				// Let the backlog of a failed step go before the next one.
				r.settle(ctx)
				tp.Steps[len(tp.Steps)-1].Late = r.received() - st.received
			}
			if st.Pass || st.Dropped > 0 || attempt >= cfg.StepRetries || ctx.Err() != nil {
				break
			}
		}
		if st.Attempt == 0 { // the sequence space ran out
			break
		}
		plan.record(rate, st.Pass, st.Dropped > 0, fmt.Sprintf("step %g msg/s: %s (later steps would not have every receiver)", rate, st.Fail))
	}
	r.cpuSince(cpu0)
	tp.Sustained = plan.sustained()
	tp.Stopped = plan.stop
	if ctx.Err() != nil {
		tp.Stopped = "interrupted"
	}
	if s := r.res.Server; s != nil {
		s.RSSEnd, _ = r.memory()
	}
	return ctx.Err()
}

func passWord(s ThroughputStep) string {
	if s.Pass {
		return "pass"
	}
	return "FAIL (" + s.Fail + ")"
}

// settle waits until no delivery has arrived for a second (at most 15 s).
func (r *run) settle(ctx context.Context) {
	last, since := r.received(), time.Now()
	waitFor(ctx, 15*time.Second, func() bool {
		if n := r.received(); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) >= time.Second
	})
}

// tpStep publishes n messages (seq … seq+n-1) at rate and measures them.
func (r *run) tpStep(ctx context.Context, env *runEnv, pub publisher, rate float64, seq, n int, receivers int64, failedBefore int) (ThroughputStep, int, error) {
	cfg := r.cfg
	st := ThroughputStep{Offered: rate, FirstSeq: seq, Expected: receivers * int64(n)}
	m0, err := r.tpMark(ctx, env, false)
	if err != nil {
		return st, failedBefore, err
	}
	r.ui.expect(m0.received + st.Expected)
	start := time.Now()
	published := 0
	for i := range n {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(due); d > 200*time.Microsecond && !sleep(ctx, d) {
			break
		}
		if err := pub.publish(ctx, seq+i); err != nil {
			return st, failedBefore, err
		}
		published++
	}
	pubSecs := time.Since(start).Seconds()
	st.Published = published
	// The last message is due at (n-1)/rate: measure the rate over n/rate
	// worth of time or the real time, whichever is longer.
	if pubSecs > 0 {
		st.Achieved = float64(st.Published) / math.Max(pubSecs, float64(st.Published)/rate)
	}
	st.Expected = receivers * int64(st.Published)
	waitFor(ctx, cfg.StepDrain, func() bool { return r.received()-m0.received >= st.Expected })
	failed, _ := pub.settle(ctx, cfg.StepDrain)
	st.PublishFailed = failed - failedBefore
	m1, err := r.tpMark(ctx, env, true)
	if err != nil {
		return st, failed, err
	}
	st.WindowSecs = m1.at.Sub(m0.at).Seconds()
	st.Delivered = m1.received - m0.received
	st.received = m1.received
	st.Lost, st.Duplicated = seqTally(m1.counts, seq, seq+st.Published, receivers)
	st.Misordered = m1.misordered - m0.misordered
	st.Dropped = m1.dropped - m0.dropped
	st.Delivery = snapshotDiff(m1.lat, m0.lat).Summarize()
	for i := range min(len(m0.nodes), len(m1.nodes)) {
		st.NodeCPU = append(st.NodeCPU, (m1.nodes[i] - m0.nodes[i]).Seconds())
	}
	if m0.redisOK && m1.redisOK {
		v := m1.redis - m0.redis
		st.RedisCPU = &v
	}
	st.LoadgenCPU = (m1.loadgen - m0.loadgen).Seconds()
	other := (m1.machine - m0.machine) - (m1.loadgen - m0.loadgen)
	for _, c := range st.NodeCPU {
		other -= time.Duration(c * float64(time.Second))
	}
	st.OtherCPU = max(0, other.Seconds())
	judge(&st, cfg.P99Limit)
	return st, failed, nil
}

// printSteps prints every throughput run's steps.
func printSteps(out io.Writer, rep *Report) {
	for _, r := range rep.Results {
		tp := r.Throughput
		if tp == nil {
			continue
		}
		fmt.Fprintf(out, "\n%s run %d, adapter %q: sustained %g msg/s (%s)\n", r.Target, r.Run, tp.Adapter, tp.Sustained, tp.Stopped)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "offered msg/s\ttry\tachieved\tdelivered\tlost\tlate\tdup\tmisord\tp50 ms\tp99 ms\tmax ms\tnode A CPU %\tnode B CPU %\tRedis CPU %\tgen CPU %\tother CPU %\tresult\t")
		for _, s := range tp.Steps {
			pct := func(v float64) string {
				if s.WindowSecs <= 0 {
					return "-"
				}
				return f0(100 * v / s.WindowSecs)
			}
			node := func(i int) string { // [A, B], or [B] alone (--url --server-pid)
				if len(s.NodeCPU) == 1 && i == 1 {
					return pct(s.NodeCPU[0])
				}
				if len(s.NodeCPU) == 2 {
					return pct(s.NodeCPU[i])
				}
				return "-"
			}
			rc := "-"
			if s.RedisCPU != nil {
				rc = pct(*s.RedisCPU)
			}
			res := "pass"
			if !s.Pass {
				res = "FAIL: " + s.Fail
			}
			fmt.Fprintf(tw, "%g\t%d\t%.0f\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Offered, s.Attempt, s.Achieved, s.Delivered, s.Lost, s.Late, s.Duplicated, s.Misordered,
				f2(s.Delivery.P50), f2(s.Delivery.P99), f2(s.Delivery.Max), node(0), node(1), rc, pct(s.LoadgenCPU), pct(s.OtherCPU), res)
		}
		_ = tw.Flush()
	}
}
