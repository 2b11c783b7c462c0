package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Machine describes where the bench ran.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model,omitempty"`
	MemTotal string `json:"mem_total,omitempty"`
	Kernel   string `json:"kernel,omitempty"`
	Go       string `json:"go"`
	NOFILE   string `json:"nofile,omitempty"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/self/limits"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Max open files") {
				f := strings.Fields(l)
				if len(f) >= 5 {
					m.NOFILE = f[3] + "/" + f[4]
				}
			}
		}
	}
	return m
}

func writeJSON(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// headline is a one-line digest of a run for the progress log.
func headline(r *Result) string {
	if r.Error != "" {
		return "error: " + r.Error
	}
	s := fmt.Sprintf("%d/%d connected", r.Connect.Connected, r.Clients)
	switch {
	case r.Fanout != nil:
		f := r.Fanout
		s += fmt.Sprintf(", to last p50 %.1f ms p99 %.1f ms, delivery p99 %.1f ms, lost %d", f.Completion.P50, f.Completion.P99, f.Delivery.P99, f.Lost)
	case r.Echo != nil:
		s += fmt.Sprintf(", %.0f msg/s, p99 %.2f ms", r.Echo.PerSecond, r.Echo.Latency.P99)
	case r.Throughput != nil:
		s += fmt.Sprintf(", sustained %g msg/s to %d receivers (%s)", r.Throughput.Sustained, r.Throughput.Receivers, r.Throughput.Stopped)
	case r.Server != nil:
		s += fmt.Sprintf(", %.1f KiB/conn", r.Server.PerConn)
	}
	if r.Dropped > 0 {
		s += fmt.Sprintf(", %d dropped by server", r.Dropped)
	}
	return s
}

func printReport(out io.Writer, rep *Report) {
	cfg := rep.Config
	fmt.Fprintf(out, "\nroomcast-bench %s: %d clients", cfg.Scenario, cfg.Clients)
	switch cfg.Scenario {
	case ScenarioFanout, ScenarioCrossNode, ScenarioSlow:
		fmt.Fprintf(out, ", %d broadcasts of %d B every %v via %s", cfg.Messages, cfg.Payload, cfg.Interval, cfg.PublishVia)
		if cfg.Scenario == ScenarioSlow {
			fmt.Fprintf(out, ", %d stalled readers", cfg.slowClients())
		}
	case ScenarioEcho:
		fmt.Fprintf(out, ", 1 echo of %d B in flight each, %v after %v warmup", cfg.Payload, cfg.Duration, cfg.Warmup)
	case ScenarioIdle:
		fmt.Fprintf(out, ", held %v", cfg.IdleHold)
	case ScenarioThroughput:
		fmt.Fprintf(out, " in one room on node B, %d B messages via %s on node A, steps of %v from %g msg/s (×%g, ≤ %g, %d bisections), pass: all delivered once in order, p99 < %v",
			cfg.Payload, cfg.PublishVia, cfg.StepDuration, cfg.StartRate, cfg.RateFactor, cfg.MaxRate, max(cfg.Bisect, 0), cfg.P99Limit)
		if cfg.Adapter != "" {
			fmt.Fprintf(out, ", adapter %s", cfg.Adapter)
		}
	}
	fmt.Fprintf(out, "; %d CPUs, %s", rep.Machine.CPUs, rep.Machine.MemTotal)
	if len(rep.Results) > 0 && rep.Results[0].WorkerProcesses > 0 {
		fmt.Fprintf(out, "; clients in %d worker processes", rep.Results[0].WorkerProcesses)
	}
	fmt.Fprint(out, "\n\n")

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	cols := []string{"target", "run", "connected", "failed", "conn/s", "conn p99 ms"}
	switch cfg.Scenario {
	case ScenarioIdle:
		cols = append(cols, "RSS before MiB", "RSS loaded MiB", "KiB/conn", "RSS closed MiB", "srv CPU s", "other CPU s")
	case ScenarioThroughput:
		cols = append(cols, "receivers", "sustained msg/s", "steps", "srv CPU s", "gen CPU s", "other CPU s")
	case ScenarioEcho:
		cols = append(cols, "msg/s", "p50 ms", "p99 ms", "max ms", "unanswered", "srv CPU s", "gen CPU s", "other CPU s")
	default:
		cols = append(cols, "receivers", "delivered", "lost", "misordered", "last p50 ms", "last p99 ms", "deliv p50 ms", "deliv p99 ms", "deliv max ms", "srv CPU s", "gen CPU s", "other CPU s", "RSS end MiB")
	}
	cols = append(cols, "dropped")
	fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
	for _, r := range rep.Results {
		c := r.Connect
		row := []string{r.Target, fmt.Sprint(r.Run), fmt.Sprint(c.Connected), fmt.Sprint(c.Failed), f0(c.PerSecond), f2(c.Latency.P99)}
		switch cfg.Scenario {
		case ScenarioIdle:
			row = append(row, mib(r.Server, func(s *ServerResult) int64 { return s.RSSBefore }), mib(r.Server, func(s *ServerResult) int64 { return s.RSSLoaded }),
				srvF(r.Server, func(s *ServerResult) float64 { return s.PerConn }), mib(r.Server, func(s *ServerResult) int64 { return s.RSSAfterClose }),
				srvF(r.Server, func(s *ServerResult) float64 { return s.CPU }), f2(r.OtherCPU))
		case ScenarioEcho:
			if e := r.Echo; e != nil {
				row = append(row, f0(e.PerSecond), f2(e.Latency.P50), f2(e.Latency.P99), f2(e.Latency.Max), fmt.Sprint(e.Unanswered))
			} else {
				row = append(row, "-", "-", "-", "-", "-")
			}
			row = append(row, srvF(r.Server, func(s *ServerResult) float64 { return s.CPU }), f2(r.LoadgenCPU), f2(r.OtherCPU))
		case ScenarioThroughput:
			if tp := r.Throughput; tp != nil {
				row = append(row, fmt.Sprint(tp.Receivers), num(tp.Sustained), fmt.Sprint(len(tp.Steps)))
			} else {
				row = append(row, "-", "-", "-")
			}
			row = append(row, srvF(r.Server, func(s *ServerResult) float64 { return s.CPU }), f2(r.LoadgenCPU), f2(r.OtherCPU))
		default:
			if f := r.Fanout; f != nil {
				row = append(row, fmt.Sprint(f.Receivers), fmt.Sprint(f.Delivered), fmt.Sprint(f.Lost), fmt.Sprint(f.Misordered),
					f2(f.Completion.P50), f2(f.Completion.P99), f2(f.Delivery.P50), f2(f.Delivery.P99), f2(f.Delivery.Max))
			} else {
				row = append(row, "-", "-", "-", "-", "-", "-", "-", "-", "-")
			}
			row = append(row, srvF(r.Server, func(s *ServerResult) float64 { return s.CPU }), f2(r.LoadgenCPU), f2(r.OtherCPU), mib(r.Server, func(s *ServerResult) int64 { return s.RSSEnd }))
		}
		row = append(row, fmt.Sprint(r.Dropped))
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	_ = tw.Flush()

	printSteps(out, rep)

	if len(rep.Results) > 1 {
		fmt.Fprintln(out)
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		hdr := []string{"median", "unit"}
		hdr = append(hdr, rep.Targets...)
		if cfg.Compare {
			hdr = append(hdr, "roomcast/node")
		}
		fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
		for _, row := range rep.Summary {
			cells := []string{row.Metric, row.Unit}
			for _, t := range rep.Targets {
				if v, ok := row.Medians[t]; ok {
					cells = append(cells, num(v))
				} else {
					cells = append(cells, "-")
				}
			}
			if cfg.Compare {
				if row.Ratio != nil {
					cells = append(cells, fmt.Sprintf("%.2f", *row.Ratio))
				} else {
					cells = append(cells, "-")
				}
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
		}
		_ = tw.Flush()
	}

	var notes []string
	for _, r := range rep.Results {
		who := fmt.Sprintf("%s run %d", r.Target, r.Run)
		if r.Error != "" {
			notes = append(notes, fmt.Sprintf("%s failed: %s", who, r.Error))
		}
		if len(r.Connect.Errors) > 0 {
			notes = append(notes, fmt.Sprintf("%s connect errors: %s", who, topErrors(r.Connect.Errors)))
		}
		if r.Join != nil && (r.Join.Failed > 0 || len(r.Join.Errors) > 0) {
			notes = append(notes, fmt.Sprintf("%s join: %d failed; %s", who, r.Join.Failed, topErrors(r.Join.Errors)))
		}
		if len(r.DropErrors) > 0 {
			notes = append(notes, fmt.Sprintf("%s connections ended by the server: %s", who, topErrors(r.DropErrors)))
		}
		if f := r.Fanout; f != nil {
			if f.PubFailed > 0 {
				notes = append(notes, fmt.Sprintf("%s: %d publishes failed: %s", who, f.PubFailed, f.PubError))
			}
			if f.Incomplete > 0 {
				notes = append(notes, fmt.Sprintf("%s: %d of %d broadcasts did not reach every receiver", who, f.Incomplete, f.Messages))
			}
			if f.SlowClients > 0 {
				notes = append(notes, fmt.Sprintf("%s: the server had cut %d of %d stalled readers (%s)", who, f.SlowCut, f.SlowClients, topErrors(f.SlowCutErrors)))
			}
			if f.BadPayload > 0 {
				notes = append(notes, fmt.Sprintf("%s: %d deliveries with an unreadable payload", who, f.BadPayload))
			}
			if f.IntervalMs > 0 && f.Completion.P50 > f.IntervalMs {
				notes = append(notes, fmt.Sprintf("%s: broadcasts overlapped (to-last p50 %.1f ms > interval %.0f ms)", who, f.Completion.P50, f.IntervalMs))
			}
		}
		if e := r.Echo; e != nil && (len(e.Errors) > 0 || e.Mismatched > 0) {
			notes = append(notes, fmt.Sprintf("%s echo: %d mismatched acks; %s", who, e.Mismatched, topErrors(e.Errors)))
		}
		for _, k := range sortedKeys(r.LeftOpen) {
			if v := r.LeftOpen[k]; v != 0 {
				notes = append(notes, fmt.Sprintf("%s: after every client left, the server still reports %s %g", who, k, v))
			}
		}
		if r.Server != nil && len(r.Server.Metrics) > 0 {
			notes = append(notes, fmt.Sprintf("%s server counters: %s", who, metricsLine(r.Server.Metrics)))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(out)
		for _, n := range notes {
			fmt.Fprintln(out, "- "+n)
		}
	}
	if rep.LogDir != "" {
		fmt.Fprintf(out, "\nserver logs: %s\n", rep.LogDir)
	}
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func mib(s *ServerResult, f func(*ServerResult) int64) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(f(s))/1024)
}

func srvF(s *ServerResult, f func(*ServerResult) float64) string {
	if s == nil {
		return "-"
	}
	return f2(f(s))
}

// topErrors lists error kinds, most frequent first.
func topErrors(m map[string]int) string {
	if len(m) == 0 {
		return "no error recorded"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		if m[keys[a]] != m[keys[b]] {
			return m[keys[a]] > m[keys[b]]
		}
		return keys[a] < keys[b]
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%d× %s", m[k], k)
	}
	return b.String()
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func metricsLine(m map[string]float64) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %g", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// progressUI prints a status line on stderr while a run goes on: in place
// on a terminal, one line every few seconds otherwise.
type progressUI struct {
	w     io.Writer
	quiet bool
	tty   bool

	mu       sync.Mutex
	label    string
	phaseStr string
	phaseAt  time.Time
	workers  []worker
	total    int
	expected int64
	stopCh   chan struct{}
	done     chan struct{}
	shown    bool
}

func newProgressUI(w io.Writer, quiet bool) *progressUI {
	u := &progressUI{w: w, quiet: quiet}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			u.tty = true
		}
	}
	return u
}

// setLabel starts the status line of a run.
func (u *progressUI) setLabel(label string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.label, u.workers, u.total, u.expected = label, nil, 0, 0
	u.phaseStr, u.phaseAt = "starting", time.Now()
	if u.quiet || u.stopCh != nil {
		return
	}
	u.stopCh, u.done = make(chan struct{}), make(chan struct{})
	go u.loop(u.stopCh, u.done)
}

func (u *progressUI) loop(stop, done chan struct{}) {
	defer close(done)
	every := 5 * time.Second
	if u.tty {
		every = 500 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			u.print()
		}
	}
}

func (u *progressUI) phase(p string) {
	u.mu.Lock()
	u.phaseStr, u.phaseAt = p, time.Now()
	u.mu.Unlock()
	if !u.tty {
		u.print()
	}
}

func (u *progressUI) track(ws []worker, total int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.workers, u.total = ws, total
}

func (u *progressUI) expect(n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.expected = n
}

func (u *progressUI) line() string {
	var p Progress
	for _, w := range u.workers {
		p.add(w.progress())
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "[%s] %s %.0fs: connected %d/%d", u.label, u.phaseStr, time.Since(u.phaseAt).Seconds(), p.Connected, u.total)
	if p.Failed > 0 {
		fmt.Fprintf(&b, " failed %d", p.Failed)
	}
	if p.Joined > 0 {
		fmt.Fprintf(&b, " joined %d", p.Joined)
	}
	if p.Received > 0 || u.expected > 0 {
		fmt.Fprintf(&b, " received %d/%d", p.Received, u.expected)
	}
	if p.Acks > 0 {
		fmt.Fprintf(&b, " acks %d", p.Acks)
	}
	if p.Dropped > 0 {
		fmt.Fprintf(&b, " dropped %d", p.Dropped)
	}
	return b.String()
}

func (u *progressUI) print() {
	if u.quiet {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.label == "" {
		return
	}
	if u.tty {
		fmt.Fprintf(u.w, "\r\033[K%s", u.line())
		u.shown = true
	} else {
		fmt.Fprintln(u.w, u.line())
	}
}

// logf prints a message line, above the status line on a terminal.
func (u *progressUI) logf(format string, args ...any) {
	if u.quiet {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.shown {
		fmt.Fprint(u.w, "\r\033[K")
		u.shown = false
	}
	fmt.Fprintf(u.w, format+"\n", args...)
}

// stop ends the status line of the current run.
func (u *progressUI) stop() {
	u.mu.Lock()
	stop, done := u.stopCh, u.done
	u.stopCh, u.done = nil, nil
	u.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.shown {
		fmt.Fprint(u.w, "\r\033[K")
		u.shown = false
	}
	u.label = ""
}
