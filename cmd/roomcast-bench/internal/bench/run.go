package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/stats"
)

// Target names in --compare.
const (
	targetRoomcast = "roomcast"
	targetNode     = "node"
)

// settleBefore is how long a freshly spawned server idles before its
// baseline memory is read; settleAfterClose how long after the bench closed
// its clients the memory is read again. Variables for the tests.
var (
	settleBefore     = time.Second
	settleAfterClose = 2 * time.Second
)

// resumeWait is how long resumed stalled readers get to find the server's
// close (a variable for the tests).
var resumeWait = 3 * time.Second

// target is a server (or node pair) to run against.
type target struct {
	name string
	cmds []string // spawn these, or
	urls []string // use these,
	pid  int      // with this pid for /proc
}

func (c *Config) targets() []target {
	switch {
	case c.Compare:
		return []target{{name: targetRoomcast, cmds: []string{c.RoomcastCmd}}, {name: targetNode, cmds: []string{c.NodeCmd}}}
	case len(c.Spawn) > 0:
		name := filepath.Base(strings.Fields(c.Spawn[0] + " server")[0])
		return []target{{name: name, cmds: c.Spawn}}
	default:
		return []target{{name: "server", urls: c.URLs, pid: c.ServerPID}}
	}
}

// Report is everything one invocation measured.
type Report struct {
	Tool     string       `json:"tool"`
	Started  time.Time    `json:"started"`
	Machine  Machine      `json:"machine"`
	Config   Config       `json:"config"`
	Argv     []string     `json:"argv"`
	Results  []*Result    `json:"results"`
	Summary  []SummaryRow `json:"summary"`
	Targets  []string     `json:"targets"`
	LogDir   string       `json:"log_dir,omitempty"`
	Finished time.Time    `json:"finished"`
}

// Run executes the runs that cfg describes, prints progress to progress
// and the tables to out, and writes the JSON report when cfg.JSON is set.
// It returns an error when cfg is invalid or no run succeeded.
func Run(ctx context.Context, cfg Config, out, progress io.Writer) (*Report, error) {
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	rep := &Report{Tool: "roomcast-bench", Started: time.Now().UTC(), Machine: machine(), Config: cfg, Argv: os.Args}
	if cfg.Compare || len(cfg.Spawn) > 0 {
		dir := cfg.LogDir
		if dir == "" {
			var err error
			if dir, err = os.MkdirTemp("", "roomcast-bench-"); err != nil {
				return nil, err
			}
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		rep.LogDir = dir
	}
	ui := newProgressUI(progress, cfg.Quiet)
	targets := cfg.targets()
	for _, t := range targets {
		rep.Targets = append(rep.Targets, t.name)
	}
	ok := 0
	for run := 1; run <= cfg.Runs; run++ {
		for _, t := range targets {
			if len(rep.Results) > 0 {
				if !sleep(ctx, cfg.Pause) {
					break
				}
			}
			res, err := runOnce(ctx, &cfg, t, run, rep.LogDir, ui)
			if err != nil {
				res.Error = err.Error()
			}
			if res.Error == "" {
				ok++
			}
			ui.logf("%s run %d/%d: %s", t.name, run, cfg.Runs, headline(res))
			rep.Results = append(rep.Results, res)
			if ctx.Err() != nil {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	rep.Summary = summarize(cfg.Scenario, rep.Targets, rep.Results, cfg.Compare)
	rep.Finished = time.Now().UTC()
	printReport(out, rep)
	if cfg.JSON != "" {
		if err := writeJSON(cfg.JSON, rep); err != nil {
			return rep, err
		}
	}
	if ok == 0 {
		return rep, errors.New("no run succeeded")
	}
	return rep, ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// run is the state of one runOnce.
type run struct {
	cfg     *Config
	res     *Result
	ui      *progressUI
	workers []worker
	srvPID  int   // memory is read here (the receiving node)
	cpuPIDs []int // CPU is summed over these (every node)
	epoch   int64
}

func runOnce(ctx context.Context, cfg *Config, t target, runNo int, logDir string, ui *progressUI) (*Result, error) {
	res := &Result{Scenario: cfg.Scenario, Target: t.name, Run: runNo, Clients: cfg.Clients}
	r := &run{cfg: cfg, res: res, ui: ui, srvPID: t.pid, epoch: time.Now().UnixNano()}
	ui.setLabel(fmt.Sprintf("%s %s run %d/%d", cfg.Scenario, t.name, runNo, cfg.Runs))
	defer ui.stop()

	urls := t.urls
	var env *runEnv
	if len(t.cmds) > 0 {
		var err error
		if env, err = prepareRun(ctx, cfg, t.cmds[0], logDir, t.name, runNo); err != nil {
			return res, err
		}
		defer env.close()
		urls = nil
		for node := range cfg.nodes() {
			port, err := pickPort(cfg.PortMin, cfg.PortMax)
			if err != nil {
				return res, err
			}
			s, err := startServer(ctx, env.expand(t.cmds[min(node, len(t.cmds)-1)]), port, serverLogPath(logDir, t.name, runNo, node))
			if err != nil {
				return res, err
			}
			defer func() {
				if err := s.exitedEarly(); err != nil && res.Error == "" {
					res.Error = err.Error()
				}
				s.stop()
			}()
			res.Commands = append(res.Commands, s.command)
			res.Logs = append(res.Logs, s.logPath)
			urls = append(urls, s.url())
			r.srvPID = s.pid() // the last node is the receiving one
			r.cpuPIDs = append(r.cpuPIDs, s.pid())
		}
		sleep(ctx, settleBefore)
	}
	res.URLs = urls
	pubURL, recvURL := urls[0], urls[len(urls)-1]
	if r.srvPID > 0 {
		if len(r.cpuPIDs) == 0 {
			r.cpuPIDs = []int{r.srvPID}
		}
		res.Server = &ServerResult{PID: r.srvPID}
		res.Server.RSSBefore, _ = r.memory()
	}

	workerURLs := []string{recvURL}
	if cfg.Scenario == ScenarioIdle {
		workerURLs = urls // spread over every node
	}
	if err := r.startWorkers(workerURLs); err != nil {
		return res, err
	}
	closed := false
	closeWorkers := func() {
		if closed {
			return
		}
		closed = true
		ui.phase("closing")
		var wg sync.WaitGroup
		for _, w := range r.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = w.close(context.Background())
			}()
		}
		wg.Wait()
	}
	defer closeWorkers()
	ui.track(r.workers, cfg.Clients)

	if err := r.connect(ctx); err != nil {
		return res, err
	}
	var err error
	switch cfg.Scenario {
	case ScenarioIdle:
		err = r.idle(ctx)
	case ScenarioEcho:
		err = r.echo(ctx)
	case ScenarioThroughput:
		if env == nil { // --url: the servers are the caller's
			env = &runEnv{redisURL: cfg.RedisURL, adapter: cfg.Adapter}
		}
		err = r.throughput(ctx, pubURL, env)
	default:
		err = r.fanout(ctx, pubURL, recvURL)
	}
	if err != nil {
		return res, err
	}
	if rep, err := r.reports(ctx); err == nil {
		for _, x := range rep {
			res.Dropped += x.Dropped
			res.DropErrors = mergeCounts(res.DropErrors, x.DropErrors)
		}
	}
	closeWorkers()
	sleep(ctx, settleAfterClose)
	if res.Server != nil {
		res.Server.RSSAfterClose, res.Server.HWM, _ = r.memoryHWM()
	}
	res.LeftOpen = sumMetrics(ctx, workerURLs, true, "roomcast_connections_open", "roomcast_sockets_connected")
	return res, ctx.Err()
}

// memPIDs are the processes whose memory is read: the receiving node, or
// in idle every spawned node (their sum).
func (r *run) memPIDs() []int {
	if r.cfg.Scenario == ScenarioIdle && len(r.cpuPIDs) > 1 {
		return r.cpuPIDs
	}
	return []int{r.srvPID}
}

func (r *run) memory() (int64, error) {
	rss, _, err := r.memoryHWM()
	return rss, err
}

func (r *run) memoryHWM() (rss, hwm int64, err error) {
	for _, pid := range r.memPIDs() {
		a, b, e := memory(pid)
		if e != nil {
			return 0, 0, e
		}
		rss, hwm = rss+a, hwm+b
	}
	return rss, hwm, nil
}

// sumMetrics is scrapeMetrics over several servers, each sample summed.
func sumMetrics(ctx context.Context, urls []string, zeros bool, names ...string) map[string]float64 {
	var out map[string]float64
	for _, u := range urls {
		for k, v := range scrapeMetrics(ctx, u, zeros, names...) {
			if out == nil {
				out = map[string]float64{}
			}
			out[k] += v
		}
	}
	return out
}

// startWorkers splits the clients over the bench process (when they fit)
// or over worker processes. With several urls (idle on several nodes),
// there are worker processes, a multiple of the nodes, and worker i
// connects to urls[i % nodes]: every node gets the same share.
func (r *run) startWorkers(urls []string) error {
	cfg := r.cfg
	url := urls[0]
	n := cfg.Workers
	if n == 0 && cfg.Clients > cfg.PerProcess {
		n = (cfg.Clients + cfg.PerProcess - 1) / cfg.PerProcess
	}
	if nodes := len(urls); nodes > 1 {
		n = (max(n, 1) + nodes - 1) / nodes * nodes
	}
	slow := cfg.slowClients()
	spec := PoolSpec{
		URL: url, Path: cfg.Path, Namespace: cfg.Namespace, Auth: authJSON(cfg.Token),
		SlowRcvBuf: cfg.SlowRcvBuf, Concurrency: cfg.Concurrency, Epoch: r.epoch,
		Room: cfg.Room, Event: cfg.Event, Messages: cfg.Messages,
		ConnectTimeout: time.Duration(float64(cfg.Clients)/cfg.Rate*float64(time.Second))*2 + time.Minute,
	}
	if n == 0 {
		spec.Clients, spec.Slow, spec.Rate = cfg.Clients, slow, cfg.Rate
		r.workers = []worker{newLocalWorker(spec)}
		return nil
	}
	r.res.WorkerProcesses = n
	for i := range n {
		s := spec
		s.Clients = share(cfg.Clients, n, i)
		s.Slow = share(slow, n, i)
		s.Rate = cfg.Rate / float64(n)
		s.URL = urls[i%len(urls)]
		w, err := startRemoteWorker(s)
		if err != nil {
			for _, w := range r.workers {
				_ = w.close(context.Background())
			}
			r.workers = nil
			return err
		}
		r.workers = append(r.workers, w)
	}
	return nil
}

// share is part i of total split into n nearly equal parts.
func share(total, n, i int) int {
	return total*(i+1)/n - total*i/n
}

// parallel runs f on every worker at once and returns the replies in
// worker order, or the first error.
func parallel[T any](ws []worker, f func(worker) (T, error)) ([]T, error) {
	out := make([]T, len(ws))
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = f(w)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (r *run) connect(ctx context.Context) error {
	r.ui.phase("connecting")
	start := time.Now()
	replies, err := parallel(r.workers, func(w worker) (ConnectReply, error) { return w.connect(ctx) })
	if err != nil {
		return err
	}
	c := &r.res.Connect
	c.Seconds = time.Since(start).Seconds()
	var lat stats.Snapshot
	for _, x := range replies {
		c.Connected += x.Connected
		c.Failed += x.Failed
		c.Errors = mergeCounts(c.Errors, x.Errors)
		lat.Merge(x.Latency)
	}
	c.Latency = lat.Summarize()
	if c.Seconds > 0 {
		c.PerSecond = float64(c.Connected) / c.Seconds
	}
	if c.Connected == 0 {
		return fmt.Errorf("no client connected (%s)", topErrors(c.Errors))
	}
	return ctx.Err()
}

func (r *run) idle(ctx context.Context) error {
	r.ui.phase("idle")
	cpu0 := r.cpuMark()
	sleep(ctx, r.cfg.IdleHold)
	r.cpuSince(cpu0)
	if s := r.res.Server; s != nil {
		s.RSSLoaded, _ = r.memory()
		s.RSSEnd = s.RSSLoaded
		if r.res.Connect.Connected > 0 {
			s.PerConn = float64(s.RSSLoaded-s.RSSBefore) / float64(r.res.Connect.Connected)
		}
		// What the servers themselves hold open at once (roomcast only;
		// summed over the nodes).
		s.Metrics = sumMetrics(ctx, r.res.URLs, false, "roomcast_connections_open")
	}
	return ctx.Err()
}

// cpuMark reads the CPU time of the server, of the bench's processes and
// of the whole machine.
type cpuMark struct{ server, loadgen, machine time.Duration }

func (r *run) cpuMark() cpuMark {
	var m cpuMark
	for _, pid := range r.cpuPIDs {
		d, _ := cpuTime(pid)
		m.server += d
	}
	pids := map[int]bool{os.Getpid(): true}
	for _, w := range r.workers {
		pids[w.pid()] = true
	}
	for pid := range pids {
		d, _ := cpuTime(pid)
		m.loadgen += d
	}
	m.machine, _ = machineBusy()
	return m
}

// cpuSince records the CPU used since m0: by the server, by the bench and
// by everything else on the machine (other processes competing for the
// same cores, which makes a run noisy).
func (r *run) cpuSince(m0 cpuMark) {
	m1 := r.cpuMark()
	r.res.LoadgenCPU = (m1.loadgen - m0.loadgen).Seconds()
	other := m1.machine - m0.machine - (m1.loadgen - m0.loadgen)
	if r.res.Server != nil {
		r.res.Server.CPU = (m1.server - m0.server).Seconds()
		other -= m1.server - m0.server
	}
	r.res.OtherCPU = max(0, other.Seconds())
}

func (r *run) echo(ctx context.Context) error {
	cfg := r.cfg
	if s := r.res.Server; s != nil {
		s.RSSLoaded, _ = r.memory()
	}
	r.ui.phase("echo")
	cpu0 := r.cpuMark()
	req := EchoRequest{Warmup: cfg.Warmup, Duration: cfg.Duration, Payload: cfg.Payload}
	replies, err := parallel(r.workers, func(w worker) (EchoReply, error) { return w.echo(ctx, req) })
	r.cpuSince(cpu0)
	if err != nil {
		return err
	}
	if s := r.res.Server; s != nil {
		s.RSSEnd, _ = r.memory()
	}
	e := &EchoResult{Seconds: cfg.Duration.Seconds()}
	var lat stats.Snapshot
	for _, x := range replies {
		e.Acks += x.Acks
		e.Unanswered += x.Unanswered
		e.Mismatched += x.Mismatched
		e.Errors = mergeCounts(e.Errors, x.Errors)
		lat.Merge(x.Latency)
	}
	e.Latency = lat.Summarize()
	e.PerSecond = float64(e.Acks) / e.Seconds
	r.res.Echo = e
	return ctx.Err()
}

// joinAndPublisher has every client join the room, records the join in the
// result, opens the publisher on pubURL and reads the server's memory with
// everyone joined. The caller closes the publisher.
func (r *run) joinAndPublisher(ctx context.Context, pubURL string) (*JoinResult, publisher, error) {
	cfg := r.cfg
	r.ui.phase("joining")
	joinTimeout := cfg.Drain + time.Duration(cfg.Clients/1000)*time.Second
	replies, err := parallel(r.workers, func(w worker) (JoinReply, error) { return w.join(ctx, joinTimeout) })
	if err != nil {
		return nil, nil, err
	}
	j := &JoinResult{}
	var lat stats.Snapshot
	for _, x := range replies {
		j.Joined += x.Joined
		j.JoinedSlow += x.JoinedSlow
		j.Failed += x.Failed
		j.Errors = mergeCounts(j.Errors, x.Errors)
		lat.Merge(x.Latency)
	}
	j.Latency = lat.Summarize()
	r.res.Join = j
	if j.Joined == 0 {
		return nil, nil, fmt.Errorf("no client joined the room (%s)", topErrors(j.Errors))
	}
	var pub publisher
	if cfg.PublishVia == "client" {
		if pub, err = newClientPublisher(ctx, cfg, pubURL, r.epoch); err != nil {
			return nil, nil, err
		}
	} else {
		pub = newAPIPublisher(cfg, pubURL, r.epoch)
	}
	if s := r.res.Server; s != nil {
		s.RSSLoaded, _ = r.memory()
	}
	return j, pub, nil
}

func (r *run) fanout(ctx context.Context, pubURL, recvURL string) error {
	cfg := r.cfg
	j, pub, err := r.joinAndPublisher(ctx, pubURL)
	if err != nil {
		return err
	}
	defer pub.close()
	f := &FanoutResult{
		Receivers: j.Joined, SlowClients: j.JoinedSlow, Messages: cfg.Messages, PayloadSize: cfg.Payload,
		IntervalMs: float64(cfg.Interval) / 1e6, PublishVia: cfg.PublishVia,
	}
	r.res.Fanout = f
	f.Expected = int64(j.Joined) * int64(cfg.Messages)
	r.ui.phase("publishing")
	r.ui.expect(f.Expected)
	cpu0 := r.cpuMark()
	start := time.Now()
	for seq := range cfg.Messages {
		if d := time.Until(start.Add(time.Duration(seq) * cfg.Interval)); d > 0 && !sleep(ctx, d) {
			break
		}
		if err := pub.publish(ctx, seq); err != nil {
			return err
		}
	}
	f.PublishSecs = time.Since(start).Seconds()
	r.ui.phase("draining")
	waitFor(ctx, cfg.Drain, func() bool { return r.received() >= f.Expected })
	f.PubFailed, f.PubError = pub.settle(ctx, 5*time.Second)
	r.cpuSince(cpu0)
	if s := r.res.Server; s != nil {
		s.RSSEnd, _ = r.memory()
		if cfg.Scenario == ScenarioSlow {
			s.Metrics = scrapeMetrics(ctx, recvURL, false, "roomcast_slow_client_disconnects_total",
				"roomcast_connection_closes_total", "roomcast_send_dropped_total")
		}
	}

	if f.SlowClients > 0 {
		r.ui.phase("resuming stalled readers")
		rs, err := parallel(r.workers, func(w worker) (ResumeReply, error) { return w.resume(ctx, resumeWait) })
		if err != nil {
			return err
		}
		for _, x := range rs {
			f.SlowCut += x.Dropped
			f.SlowCutErrors = mergeCounts(f.SlowCutErrors, x.Errors)
		}
	}

	reports, err := r.reports(ctx)
	if err != nil {
		return err
	}
	var del stats.Snapshot
	counts := make([]int64, cfg.Messages)
	maxes := make([]int64, cfg.Messages)
	for _, x := range reports {
		f.Delivered += x.Received
		f.Misordered += x.Misordered
		f.BadPayload += x.BadPayload
		del.Merge(x.Latency)
		for i := range min(len(counts), len(x.SeqCount), len(x.SeqMax)) {
			counts[i] += x.SeqCount[i]
			maxes[i] = max(maxes[i], x.SeqMax[i])
		}
	}
	f.Delivery = del.Summarize()
	f.Lost = max(0, f.Expected-f.Delivered)
	var comp stats.Histogram
	for i := range counts {
		if counts[i] >= int64(j.Joined) {
			comp.Record(maxes[i])
		} else {
			f.Incomplete++
		}
	}
	f.Completion = comp.Snapshot().Summarize()
	return ctx.Err()
}

func (r *run) received() int64 {
	var n int64
	for _, w := range r.workers {
		n += w.progress().Received
	}
	return n
}

func (r *run) reports(ctx context.Context) ([]ReportReply, error) {
	return parallel(r.workers, func(w worker) (ReportReply, error) { return w.report(ctx) })
}

// scrapeMetrics reads the samples of the named roomcast metrics from
// /metrics, zeros only when asked (best effort: servers without them give
// nothing).
func scrapeMetrics(ctx context.Context, base string, zeros bool, names ...string) map[string]float64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/metrics", nil)
	if err != nil {
		return nil
	}
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return nil
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	for sc.Scan() {
		line := sc.Text()
		for _, n := range names {
			if rest, ok := strings.CutPrefix(line, n); ok && rest != "" && (rest[0] == ' ' || rest[0] == '{') {
				i := strings.LastIndexByte(line, ' ')
				if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil && (zeros || v != 0) {
					out[line[:i]] = v
				}
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
