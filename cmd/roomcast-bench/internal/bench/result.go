package bench

import (
	"math"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/stats"
)

// Result is one run of a scenario against one target.
type Result struct {
	Scenario string   `json:"scenario"`
	Target   string   `json:"target"`
	Run      int      `json:"run"`
	Commands []string `json:"commands,omitempty"`
	Logs     []string `json:"logs,omitempty"`
	URLs     []string `json:"urls"`
	Clients  int      `json:"clients"`
	// WorkerProcesses is 0 when the clients ran in the bench process.
	WorkerProcesses int    `json:"worker_processes"`
	Error           string `json:"error,omitempty"`

	Connect ConnectResult `json:"connect"`
	Join    *JoinResult   `json:"join,omitempty"`
	Server  *ServerResult `json:"server,omitempty"`
	Fanout  *FanoutResult `json:"fanout,omitempty"`
	Echo    *EchoResult   `json:"echo,omitempty"`
	// Throughput is the throughput scenario's steps (see throughput.go for
	// its JSON shape).
	Throughput *ThroughputResult `json:"throughput,omitempty"`

	// Dropped connections were ended by the server (or the network) during
	// the run, before the bench closed them.
	Dropped    int64          `json:"dropped"`
	DropErrors map[string]int `json:"drop_errors,omitempty"`
	// LoadgenCPU is the CPU time of the bench's own processes during the
	// measured phase, seconds.
	LoadgenCPU float64 `json:"loadgen_cpu_s"`
	// LeftOpen is what the server's /metrics says is still connected 2 s
	// after the bench closed every client (roomcast only): anything but 0
	// is a socket the server did not clean up.
	LeftOpen map[string]float64 `json:"left_open,omitempty"`
	// OtherCPU is the CPU time the rest of the machine used during the
	// measured phase (without a server pid, the server is in it), seconds.
	OtherCPU float64 `json:"other_cpu_s"`
}

// ConnectResult describes the connect phase.
type ConnectResult struct {
	Connected int            `json:"connected"`
	Failed    int            `json:"failed"`
	Seconds   float64        `json:"seconds"`
	PerSecond float64        `json:"per_second"`
	Latency   stats.Summary  `json:"latency"`
	Errors    map[string]int `json:"errors,omitempty"`
}

// JoinResult describes joining the room.
type JoinResult struct {
	Joined     int            `json:"joined"`
	JoinedSlow int            `json:"joined_slow"`
	Failed     int            `json:"failed"`
	Latency    stats.Summary  `json:"latency"`
	Errors     map[string]int `json:"errors,omitempty"`
}

// ServerResult is what /proc says about the server (the receiving node in
// cross-node). Memory in KiB.
type ServerResult struct {
	PID int `json:"pid"`
	// RSSBefore: before any client; RSSLoaded: clients connected (and
	// joined) just before the measured phase; RSSEnd: after it;
	// RSSAfterClose: 2 s after the bench closed its clients.
	RSSBefore     int64 `json:"rss_before_kib"`
	RSSLoaded     int64 `json:"rss_loaded_kib"`
	RSSEnd        int64 `json:"rss_end_kib"`
	RSSAfterClose int64 `json:"rss_after_close_kib"`
	HWM           int64 `json:"hwm_kib"`
	// PerConn is (RSSLoaded-RSSBefore)/connected.
	PerConn float64 `json:"per_conn_kib"`
	// CPU is the server's CPU time during the measured phase (all spawned
	// nodes together), seconds.
	CPU float64 `json:"cpu_s"`
	// Metrics are a few roomcast counters scraped after a slow run.
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// FanoutResult describes the broadcasts of fanout, cross-node and slow.
type FanoutResult struct {
	Receivers   int     `json:"receivers"`
	SlowClients int     `json:"slow_clients"`
	Messages    int     `json:"messages"`
	PayloadSize int     `json:"payload_bytes"`
	IntervalMs  float64 `json:"interval_ms"`
	PublishVia  string  `json:"publish_via"`
	PublishSecs float64 `json:"publish_seconds"`
	PubFailed   int     `json:"publish_failed"`
	PubError    string  `json:"publish_error,omitempty"`
	Expected    int64   `json:"expected"`
	Delivered   int64   `json:"delivered"`
	Lost        int64   `json:"lost"`
	Misordered  int64   `json:"misordered"`
	BadPayload  int64   `json:"bad_payload,omitempty"`
	// Delivery is publish → receive for every delivery.
	Delivery stats.Summary `json:"delivery"`
	// Completion is publish → last receiver, per broadcast that reached
	// every receiver; Incomplete counts the others.
	Completion stats.Summary `json:"completion"`
	Incomplete int           `json:"incomplete"`
	// SlowCut is how many stalled clients the server had disconnected by
	// the end of the run (slow scenario; read back by resuming them).
	SlowCut       int64          `json:"slow_cut"`
	SlowCutErrors map[string]int `json:"slow_cut_errors,omitempty"`
}

// EchoResult describes the echo loop.
type EchoResult struct {
	Seconds    float64        `json:"seconds"`
	Acks       int64          `json:"acks"`
	PerSecond  float64        `json:"per_second"`
	Latency    stats.Summary  `json:"latency"`
	Unanswered int64          `json:"unanswered"`
	Mismatched int64          `json:"mismatched,omitempty"`
	Errors     map[string]int `json:"errors,omitempty"`
}

// metric is one number of a run that the summary compares across runs.
type metric struct {
	Name  string
	Unit  string
	get   func(*Result) float64
	scens []string
}

var fanoutLike = []string{ScenarioFanout, ScenarioCrossNode, ScenarioSlow}

// metrics lists the compared numbers; get returns NaN when a run lacks it.
var metrics = []metric{
	{"connect rate", "conn/s", func(r *Result) float64 { return r.Connect.PerSecond }, Scenarios},
	{"connect p99", "ms", func(r *Result) float64 { return r.Connect.Latency.P99 }, Scenarios},
	{"server RSS loaded", "MiB", func(r *Result) float64 {
		return srv(r, func(s *ServerResult) float64 { return float64(s.RSSLoaded) / 1024 })
	}, Scenarios},
	{"server RSS per conn", "KiB", func(r *Result) float64 { return srv(r, func(s *ServerResult) float64 { return s.PerConn }) }, []string{ScenarioIdle}},
	{"server RSS after close", "MiB", func(r *Result) float64 {
		return srv(r, func(s *ServerResult) float64 { return float64(s.RSSAfterClose) / 1024 })
	}, []string{ScenarioIdle}},
	{"slow clients cut", "conns", func(r *Result) float64 { return fan(r, func(f *FanoutResult) float64 { return float64(f.SlowCut) }) }, []string{ScenarioSlow}},
	{"server RSS peak", "MiB", func(r *Result) float64 { return srv(r, func(s *ServerResult) float64 { return float64(s.HWM) / 1024 }) }, []string{ScenarioSlow}},
	{"broadcast to last p50", "ms", func(r *Result) float64 { return fan(r, func(f *FanoutResult) float64 { return f.Completion.P50 }) }, fanoutLike},
	{"broadcast to last p99", "ms", func(r *Result) float64 { return fan(r, func(f *FanoutResult) float64 { return f.Completion.P99 }) }, fanoutLike},
	{"delivery p50", "ms", func(r *Result) float64 { return fan(r, func(f *FanoutResult) float64 { return f.Delivery.P50 }) }, fanoutLike},
	{"delivery p99", "ms", func(r *Result) float64 { return fan(r, func(f *FanoutResult) float64 { return f.Delivery.P99 }) }, fanoutLike},
	{"delivery max", "ms", func(r *Result) float64 { return fan(r, func(f *FanoutResult) float64 { return f.Delivery.Max }) }, fanoutLike},
	{"lost", "msgs", func(r *Result) float64 { return fan(r, func(f *FanoutResult) float64 { return float64(f.Lost) }) }, fanoutLike},
	{"echo rate", "msg/s", func(r *Result) float64 { return ech(r, func(e *EchoResult) float64 { return e.PerSecond }) }, []string{ScenarioEcho}},
	{"echo p50", "ms", func(r *Result) float64 { return ech(r, func(e *EchoResult) float64 { return e.Latency.P50 }) }, []string{ScenarioEcho}},
	{"echo p99", "ms", func(r *Result) float64 { return ech(r, func(e *EchoResult) float64 { return e.Latency.P99 }) }, []string{ScenarioEcho}},
	{"sustained rate", "msg/s", func(r *Result) float64 {
		if r.Throughput == nil {
			return math.NaN()
		}
		return r.Throughput.Sustained
	}, []string{ScenarioThroughput}},
	{"server CPU", "s", func(r *Result) float64 { return srv(r, func(s *ServerResult) float64 { return s.CPU }) }, Scenarios},
	{"loadgen CPU", "s", func(r *Result) float64 { return r.LoadgenCPU }, Scenarios},
	{"other CPU", "s", func(r *Result) float64 { return r.OtherCPU }, Scenarios},
	{"dropped conns", "conns", func(r *Result) float64 { return float64(r.Dropped) }, Scenarios},
}

func srv(r *Result, f func(*ServerResult) float64) float64 {
	if r.Server == nil {
		return math.NaN()
	}
	return f(r.Server)
}

func fan(r *Result, f func(*FanoutResult) float64) float64 {
	if r.Fanout == nil {
		return math.NaN()
	}
	return f(r.Fanout)
}

func ech(r *Result, f func(*EchoResult) float64) float64 {
	if r.Echo == nil {
		return math.NaN()
	}
	return f(r.Echo)
}

func (m metric) applies(scenario string) bool {
	for _, s := range m.scens {
		if s == scenario {
			return true
		}
	}
	return false
}

// SummaryRow is one metric's median per target over the successful runs.
type SummaryRow struct {
	Metric  string             `json:"metric"`
	Unit    string             `json:"unit"`
	Medians map[string]float64 `json:"medians"`
	// Ratio is roomcast's median over node's, in --compare.
	Ratio *float64 `json:"ratio,omitempty"`
}

func summarize(scenario string, targets []string, results []*Result, compare bool) []SummaryRow {
	var rows []SummaryRow
	for _, m := range metrics {
		if !m.applies(scenario) {
			continue
		}
		row := SummaryRow{Metric: m.Name, Unit: m.Unit, Medians: map[string]float64{}}
		for _, t := range targets {
			var xs []float64
			for _, r := range results {
				if r.Target == t && r.Error == "" {
					if v := m.get(r); !math.IsNaN(v) {
						xs = append(xs, v)
					}
				}
			}
			if len(xs) > 0 {
				row.Medians[t] = stats.Median(xs)
			}
		}
		if len(row.Medians) == 0 {
			continue
		}
		if compare {
			a, okA := row.Medians[targetRoomcast]
			b, okB := row.Medians[targetNode]
			if okA && okB && b != 0 {
				r := a / b
				row.Ratio = &r
			}
		}
		rows = append(rows, row)
	}
	return rows
}
