package bench

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/hubtest"
	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/stats"
)

// drive runs a plan against a server that passes every rate up to limit.
func drive(p *stepPlan, limit float64) []float64 {
	var tried []float64
	for r := p.next(); r > 0; r = p.next() {
		tried = append(tried, r)
		p.record(r, r <= limit, false, "")
		if len(tried) > 100 {
			break
		}
	}
	return tried
}

func TestStepPlan(t *testing.T) {
	for _, tc := range []struct {
		name      string
		plan      *stepPlan
		limit     float64
		tried     []float64
		sustained float64
		stop      string
	}{
		{"all pass up to max", newStepPlan(100, 800, 2, 2), 1e9, []float64{100, 200, 400, 800}, 800, "every step passed up to --max-rate 800"},
		{"max not a power of the factor", newStepPlan(100, 500, 2, 2), 1e9, []float64{100, 200, 400, 500}, 500, "--max-rate 500"},
		{"bisect after the first fail", newStepPlan(100, 6400, 2, 2), 500, []float64{100, 200, 400, 800, 566, 476}, 476, "highest pass 476 msg/s, lowest fail 566"},
		{"bisect down", newStepPlan(100, 6400, 2, 2), 300, []float64{100, 200, 400, 283, 336}, 283, "highest pass 283 msg/s, lowest fail 336"},
		{"no bisection", newStepPlan(100, 6400, 2, -1), 300, []float64{100, 200, 400}, 200, "highest pass 200 msg/s, lowest fail 400"},
		{"first step fails", newStepPlan(100, 6400, 2, 2), 50, []float64{100}, 0, "the first step (100 msg/s) failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tried := drive(tc.plan, tc.limit)
			if !equalFloats(tried, tc.tried) {
				t.Fatalf("tried %v, want %v", tried, tc.tried)
			}
			if got := tc.plan.sustained(); got != tc.sustained {
				t.Fatalf("sustained %g, want %g", got, tc.sustained)
			}
			if !strings.Contains(tc.plan.stop, tc.stop) {
				t.Fatalf("stop %q, want it to contain %q", tc.plan.stop, tc.stop)
			}
		})
	}
}

func TestStepPlanFatalStops(t *testing.T) {
	p := newStepPlan(100, 6400, 2, 2)
	p.record(p.next(), true, false, "")
	r := p.next()
	p.record(r, false, true, "receivers gone")
	if got := p.next(); got != 0 || p.stop != "receivers gone" || p.sustained() != 100 {
		t.Fatalf("next %g, stop %q, sustained %g", got, p.stop, p.sustained())
	}
}

func TestStepPlanBudget(t *testing.T) {
	// 100+200+400+800 msg/s for 2 s each, plus 2 bisection steps at most 800 msg/s.
	if got, want := newStepPlan(100, 800, 2, 2).budget(2*time.Second), 2*(100+200+400+800)+2*1600+1; got != want {
		t.Fatalf("budget %d, want %d", got, want)
	}
	if got, want := newStepPlan(100, 800, 2, -1).budget(time.Second), 1500+1; got != want {
		t.Fatalf("budget without bisection %d, want %d", got, want)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestJudge(t *testing.T) {
	ok := ThroughputStep{Offered: 100, Achieved: 99, Published: 500, Delivery: stats.Summary{P99: 20}}
	for _, tc := range []struct {
		name string
		edit func(*ThroughputStep)
		fail string
	}{
		{"pass", func(*ThroughputStep) {}, ""},
		{"lost", func(s *ThroughputStep) { s.Lost = 1 }, "1 lost"},
		{"duplicated", func(s *ThroughputStep) { s.Duplicated = 2 }, "2 duplicated"},
		{"misordered", func(s *ThroughputStep) { s.Misordered = 3 }, "3 misordered"},
		{"p99 at the limit", func(s *ThroughputStep) { s.Delivery.P99 = 100 }, "delivery p99 100.0 ms ≥ 100 ms"},
		{"publisher behind", func(s *ThroughputStep) { s.Achieved = 90 }, "publisher reached 90 of 100 msg/s"},
		{"publish failed", func(s *ThroughputStep) { s.PublishFailed = 1 }, "1 publishes failed"},
		{"dropped", func(s *ThroughputStep) { s.Dropped = 4 }, "4 receivers disconnected"},
		{"nothing published", func(s *ThroughputStep) { s.Published, s.Achieved = 0, 0 }, "nothing published"},
		{"two reasons", func(s *ThroughputStep) { s.Lost, s.Delivery.P99 = 5, 250 }, "5 lost; delivery p99 250.0 ms ≥ 100 ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.edit(&s)
			judge(&s, 100*time.Millisecond)
			if s.Pass != (tc.fail == "") || !strings.Contains(s.Fail, tc.fail) {
				t.Fatalf("pass %v, fail %q; want fail %q", s.Pass, s.Fail, tc.fail)
			}
		})
	}
}

func TestSeqTally(t *testing.T) {
	counts := []int64{3, 3, 2, 4, 3, 0}
	for _, tc := range []struct {
		from, to  int
		lost, dup int64
	}{
		{0, 2, 0, 0},
		{0, 4, 1, 1},
		{2, 3, 1, 0},
		{4, 6, 3, 0},
		{5, 8, 9, 0}, // beyond the counts: nobody got them
	} {
		lost, dup := seqTally(counts, tc.from, tc.to, 3)
		if lost != tc.lost || dup != tc.dup {
			t.Errorf("[%d,%d): lost %d dup %d, want %d %d", tc.from, tc.to, lost, dup, tc.lost, tc.dup)
		}
	}
}

func TestSnapshotDiff(t *testing.T) {
	var h stats.Histogram
	for _, v := range []int64{1e6, 2e6, 3e6} {
		h.Record(v)
	}
	before := h.Snapshot()
	for range 99 {
		h.Record(50e6)
	}
	h.Record(90e6)
	d := snapshotDiff(h.Snapshot(), before)
	s := d.Summarize()
	if d.N != 100 {
		t.Fatalf("n %d", d.N)
	}
	// 1.6 % bucket precision.
	if s.P50 < 49 || s.P50 > 51 || s.P99 < 49 || s.P99 > 51 || s.Max < 88 || s.Max > 90 || s.Min < 49 {
		t.Fatalf("summary of the difference: %+v", s)
	}
	if e := snapshotDiff(before, before); e.N != 0 || len(e.Buckets) != 0 {
		t.Fatalf("empty difference: %+v", e)
	}
	for i := uint64(0); i < 2000; i += 37 {
		if lo, hi := bucketLow(i), bucketHigh(i); hi < lo || (i > 0 && bucketHigh(i-1)+1 != lo) {
			t.Fatalf("bucket %d: [%d, %d], previous ends at %d", i, lo, hi, bucketHigh(i-1))
		}
	}
}

func TestParseRedisCPU(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\nused_cpu_sys_children:0.000000\r\n"
	for _, tc := range []struct {
		name, reply string
		want        float64
		err         string
	}{
		{"info", "$" + strconv.Itoa(len(info)) + "\r\n" + info + "\r\n", 3.75, ""},
		{"after AUTH", "+OK\r\n$" + strconv.Itoa(len(info)) + "\r\n" + info + "\r\n", 3.75, ""},
		{"error", "-NOAUTH Authentication required.\r\n", 0, "NOAUTH"},
		{"no cpu fields", "$5\r\nhello\r\n", 0, "without used_cpu"},
		{"huge length", "$999999999\r\n", 0, "bad INFO reply"},
		{"short", "$100\r\nabc", 0, "EOF"},
		{"garbage", ":1\r\n", 0, "unexpected reply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRedisCPU(bufio.NewReader(strings.NewReader(tc.reply)))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestAdapterCommands(t *testing.T) {
	c := withAdapter("bin/roomcast serve --addr {addr}", "redis")
	if !strings.Contains(c, " --adapter {adapter} ") || !strings.Contains(c, "--redis-prefix {prefix}") {
		t.Fatalf("withAdapter: %q", c)
	}
	if c2 := withAdapter(c, "nats"); c2 != c {
		t.Fatalf("withAdapter twice: %q", c2)
	}
	if c := withAdapter("x --addr {addr}", ""); c != "x --addr {addr}" {
		t.Fatalf("withAdapter without adapter: %q", c)
	}
	env := &runEnv{prefix: "p1", redisURL: "redis://127.0.0.1:1", adapter: "redis-streams"}
	got := env.expand(c)
	if !strings.Contains(got, "--adapter redis-streams --redis-url redis://127.0.0.1:1 --redis-prefix p1") {
		t.Fatalf("expand: %q", got)
	}
	for cmd, want := range map[string]string{
		"bin/roomcast serve --adapter nats --addr {addr}": "nats",
		"node s.mjs --adapter=redis":                      "redis",
		"bin/roomcast serve":                              "",
	} {
		if got := adapterOf(cmd); got != want {
			t.Errorf("adapterOf(%q) = %q, want %q", cmd, got, want)
		}
	}
}

func TestNormalizeThroughput(t *testing.T) {
	c := Config{Scenario: ScenarioThroughput, Compare: true, Adapter: "redis", StartRate: 100, MaxRate: 800, StepDuration: time.Second}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if c.PublishVia != "client" || c.Messages != 2*(100+200+400+800+2*800+1) || c.nodes() != 2 {
		t.Fatalf("publish via %q, messages %d, nodes %d", c.PublishVia, c.Messages, c.nodes())
	}
	if adapterOf(c.RoomcastCmd) != "{adapter}" || adapterOf(c.NodeCmd) != "{adapter}" {
		t.Fatalf("commands %q, %q", c.RoomcastCmd, c.NodeCmd)
	}
	// Normalize runs twice (flags, then Run): nothing doubles.
	cmd := c.RoomcastCmd
	if err := c.Normalize(); err != nil || c.RoomcastCmd != cmd {
		t.Fatalf("second Normalize: %v, %q", err, c.RoomcastCmd)
	}
	for _, bad := range []Config{
		{Scenario: ScenarioThroughput, Compare: true, StartRate: 100, MaxRate: 50},
		{Scenario: ScenarioThroughput, Compare: true, RateFactor: 1},
		{Scenario: ScenarioThroughput, Compare: true, MaxRate: 1e7, StepDuration: time.Minute},
	} {
		if err := bad.Normalize(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// TestThroughputEndToEnd runs three short steps against the in-process hub
// (two nodes on one memory adapter). The p99 limit is generous so that the
// verdict does not depend on the machine's load; what is checked is the
// accounting.
func TestThroughputEndToEnd(t *testing.T) {
	hub := hubtest.New(hubtest.Options{})
	pubNode, recvNode := hub.Start(t), hub.Start(t)
	cfg := quick(ScenarioThroughput, pubNode, recvNode)
	cfg.StartRate, cfg.MaxRate, cfg.StepDuration, cfg.StepDrain, cfg.P99Limit = 20, 80, 250*time.Millisecond, time.Minute, time.Minute
	r := runBench(t, cfg)
	tp := r.Throughput
	if tp == nil || tp.Receivers != 40 || len(tp.Steps) == 0 {
		t.Fatalf("throughput: %+v", tp)
	}
	seq := 0
	best := 0.0
	for _, s := range tp.Steps {
		if s.Attempt < 1 {
			t.Fatalf("step %+v: attempt %d", s, s.Attempt)
		}
		want := int(s.Offered*0.25 + 0.999)
		if s.Published != want || s.FirstSeq != seq || s.Expected != int64(40*want) || s.Delivered != s.Expected ||
			s.Lost != 0 || s.Duplicated != 0 || s.Misordered != 0 || s.Delivery.N != uint64(s.Expected) || len(s.NodeCPU) != 0 {
			t.Fatalf("step %+v (want %d published from %d)", s, want, seq)
		}
		seq += s.Published
		if s.Pass {
			best = max(best, s.Offered)
		}
	}
	if tp.Sustained != best || tp.Stopped == "" {
		t.Fatalf("sustained %g (best pass %g), stopped %q", tp.Sustained, best, tp.Stopped)
	}
}

// TestThroughputFirstStepFails: an impossible p99 limit fails the first
// step; the search stops there with nothing sustained and nothing lost.
func TestThroughputFirstStepFails(t *testing.T) {
	hub := hubtest.New(hubtest.Options{})
	pubNode, recvNode := hub.Start(t), hub.Start(t)
	cfg := quick(ScenarioThroughput, pubNode, recvNode)
	cfg.StartRate, cfg.MaxRate, cfg.StepDuration, cfg.StepDrain, cfg.P99Limit = 20, 80, 250*time.Millisecond, time.Minute, time.Nanosecond
	tp := runBench(t, cfg).Throughput
	// The first step and its one retry (--retries 1 by default).
	if tp == nil || len(tp.Steps) != 2 || tp.Sustained != 0 || !strings.Contains(tp.Stopped, "the first step (20 msg/s) failed") {
		t.Fatalf("throughput: %+v", tp)
	}
	for i, s := range tp.Steps {
		if s.Pass || s.Attempt != i+1 || s.Offered != 20 || !strings.Contains(s.Fail, "delivery p99") || s.Lost != 0 || s.Late != 0 || s.Delivered != s.Expected {
			t.Fatalf("step %d: %+v", i, s)
		}
	}
}
