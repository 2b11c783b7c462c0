package plot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/stats"
)

// maxFile bounds how much of one JSON file is read: a --json report of a
// 100,000-client run is well under a megabyte.
const maxFile = 64 << 20

// Scenario names as roomcast-bench writes them (bench.Scenario*), and the
// throughput scenario another change adds.
const (
	scenFanout     = "fanout"
	scenEcho       = "echo"
	scenIdle       = "idle"
	scenThroughput = "throughput"
)

// report is the part of a roomcast-bench --json file the charts read: the
// whole bench.Report (an object with "results"), or a bare list of results.
// It is declared here rather than taken from package bench so that fields
// other changes add (or rename) cannot break reading older files.
type report struct {
	Path    string    `json:"-"`
	Started time.Time `json:"started"`
	Machine machine   `json:"machine"`
	Config  config    `json:"config"`
	Results []result  `json:"results"`
}

type machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
}

type config struct {
	Scenario string `json:"scenario"`
	Clients  int    `json:"clients"`
	Runs     int    `json:"runs"`
	Messages int    `json:"messages"`
	// Interval is a time.Duration: nanoseconds in the JSON.
	Interval int64  `json:"interval"`
	Payload  int    `json:"payload"`
	Adapter  string `json:"adapter"`
}

type result struct {
	Scenario   string      `json:"scenario"`
	Target     string      `json:"target"`
	Run        int         `json:"run"`
	Clients    int         `json:"clients"`
	Error      string      `json:"error"`
	Server     *server     `json:"server"`
	Fanout     *fanout     `json:"fanout"`
	Echo       *echo       `json:"echo"`
	Throughput *throughput `json:"throughput"`
	OtherCPU   float64     `json:"other_cpu_s"`
}

type server struct {
	RSSBefore int64   `json:"rss_before_kib"`
	RSSLoaded int64   `json:"rss_loaded_kib"`
	PerConn   float64 `json:"per_conn_kib"`
}

type fanout struct {
	Completion latency `json:"completion"`
}

type latency struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

type echo struct {
	PerSecond float64 `json:"per_second"`
}

// throughput is the cross-node throughput of one run: the highest publish
// rate the receiving node kept up with, per adapter. Only these two fields
// are read; the rest of the object may be anything.
type throughput struct {
	Adapter      string   `json:"adapter"`
	MaxSustained *float64 `json:"sustained_rate"`
}

// parse decodes one roomcast-bench JSON file. name is used for messages
// and, for throughput files, as the adapter when the file names none
// (throughput-<adapter>.json).
func parse(name string, b []byte) (*report, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("empty file")
	}
	rep := &report{Path: name}
	switch b[0] {
	case '{':
		if err := json.Unmarshal(b, rep); err != nil {
			return nil, err
		}
	case '[':
		if err := json.Unmarshal(b, &rep.Results); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("not a roomcast-bench report: starts with %q", b[0])
	}
	if len(rep.Results) == 0 {
		return nil, errors.New("no results")
	}
	if rep.Config.Scenario == "" {
		rep.Config.Scenario = rep.Results[0].Scenario
	}
	if rep.Config.Clients == 0 {
		rep.Config.Clients = rep.Results[0].Clients
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Scenario == "" {
			r.Scenario = rep.Config.Scenario
		}
		if r.Scenario != rep.Config.Scenario {
			return nil, fmt.Errorf("mixes scenarios %q and %q", rep.Config.Scenario, r.Scenario)
		}
		if r.Target == "" {
			return nil, fmt.Errorf("result %d has no target", i)
		}
		// roomcast-bench names a spawned target after its program, so a
		// build pinned under another name (roomcast-base) is roomcast.
		if strings.HasPrefix(r.Target, "roomcast-") {
			r.Target = "roomcast"
		}
	}
	if rep.Config.Scenario == "" {
		return nil, errors.New("no scenario")
	}
	return rep, nil
}

// load reads every *.json file of dir (not its subdirectories). Files that
// are not roomcast-bench reports are reported to log and skipped.
func load(dir string, log io.Writer) ([]*report, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var reps []*report
	for _, p := range paths {
		b, err := readFile(p)
		if err != nil {
			return nil, err
		}
		rep, err := parse(filepath.Base(p), b)
		if err != nil {
			fmt.Fprintf(log, "plot: skipping %s: %v\n", p, err)
			continue
		}
		reps = append(reps, rep)
	}
	return reps, nil
}

func readFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%s: larger than %d MiB", p, maxFile>>20)
	}
	return b, nil
}

// ofScenario returns the reports of one scenario.
func ofScenario(reps []*report, scen string) []*report {
	var out []*report
	for _, r := range reps {
		if r.Config.Scenario == scen {
			out = append(out, r)
		}
	}
	return out
}

// byClients keeps one report per client count: when two files measured the
// same count, the one started last, with a note.
func byClients(reps []*report, log io.Writer) []*report {
	m := map[int]*report{}
	for _, r := range reps {
		if old, ok := m[r.Config.Clients]; ok {
			keep, drop := r, old
			if old.Started.After(r.Started) {
				keep, drop = old, r
			}
			fmt.Fprintf(log, "plot: %s and %s both measured %s %d clients: using %s (started later)\n",
				old.Path, r.Path, r.Config.Scenario, r.Config.Clients, keep.Path)
			_ = drop
			m[r.Config.Clients] = keep
			continue
		}
		m[r.Config.Clients] = r
	}
	out := make([]*report, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Config.Clients < out[j].Config.Clients })
	return out
}

// adapterOf names the adapter of a throughput result: the result's own
// field, else the file's config, else the file name throughput-<adapter>.json.
func adapterOf(rep *report, r *result) string {
	if r.Throughput != nil && r.Throughput.Adapter != "" {
		return r.Throughput.Adapter
	}
	if rep.Config.Adapter != "" {
		return rep.Config.Adapter
	}
	base := strings.TrimSuffix(filepath.Base(rep.Path), ".json")
	if a, ok := strings.CutPrefix(base, "throughput-"); ok && a != "" {
		return a
	}
	return "?"
}

// spread is the median of a metric over the successful runs of one target,
// with the lowest and highest run.
type spread struct {
	Median, Min, Max float64
	N                int
}

// collect gathers a metric over the successful runs of target; get returns
// ok=false when a run lacks the metric. Values that are not finite or are
// negative are left out with a note.
func collect(rep *report, target string, get func(*result) (float64, bool), log io.Writer) (spread, bool) {
	var xs []float64
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Target != target || r.Error != "" {
			continue
		}
		v, ok := get(r)
		if !ok {
			continue
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			fmt.Fprintf(log, "plot: %s: %s run %d: ignoring value %v\n", rep.Path, target, r.Run, v)
			continue
		}
		xs = append(xs, v)
	}
	if len(xs) == 0 {
		return spread{}, false
	}
	sort.Float64s(xs)
	// stats.Median is what the bench's own summary table uses.
	return spread{Median: stats.Median(xs), Min: xs[0], Max: xs[len(xs)-1], N: len(xs)}, true
}

// targets lists the targets of reps: roomcast first, node second, any
// other (a --spawn or --url run) after them by name.
func targets(reps []*report) []string {
	seen := map[string]bool{}
	var out []string
	for _, rep := range reps {
		for _, r := range rep.Results {
			if !seen[r.Target] {
				seen[r.Target] = true
				out = append(out, r.Target)
			}
		}
	}
	rank := func(t string) int {
		switch t {
		case "roomcast":
			return 0
		case "node":
			return 1
		}
		return 2
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := rank(out[i]), rank(out[j]); ri != rj {
			return ri < rj
		}
		return out[i] < out[j]
	})
	return out
}
