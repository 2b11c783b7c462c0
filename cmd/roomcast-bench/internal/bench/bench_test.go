package bench

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/hubtest"
)

// TestMain doubles as the worker process: the bench re-executes its own
// binary (here, the test binary) with WorkerArg.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == WorkerArg {
		if err := ServeWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	settleAfterClose = 100 * time.Millisecond
	resumeWait = 300 * time.Millisecond
	goleak.VerifyTestMain(m)
}

// quick is a small, fast configuration against url.
func quick(scenario string, urls ...string) Config {
	return Config{
		Scenario: scenario, URLs: urls, Clients: 40, Rate: 2000, Messages: 8,
		// Drain only bounds a wait for every delivery (it ends as soon as
		// they are in): generous, so that a loaded machine loses nothing.
		Interval: 10 * time.Millisecond, Drain: time.Minute, Duration: 300 * time.Millisecond,
		Warmup: 100 * time.Millisecond, IdleHold: 50 * time.Millisecond, Pause: time.Millisecond, Quiet: true,
	}
}

func runBench(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a safety net
	defer cancel()
	rep, err := Run(ctx, cfg, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Results) != max(cfg.Runs, 1) {
		t.Fatalf("%d results", len(rep.Results))
	}
	r := rep.Results[0]
	if r.Error != "" || r.Connect.Connected != cfg.Clients || r.Connect.Failed != 0 || r.Dropped != 0 {
		t.Fatalf("run: error %q, connected %d/%d, failed %d, dropped %d (%v)", r.Error, r.Connect.Connected, cfg.Clients, r.Connect.Failed, r.Dropped, r.DropErrors)
	}
	return r
}

func checkFanout(t *testing.T, r *Result, receivers int) {
	t.Helper()
	f := r.Fanout
	if f == nil {
		t.Fatal("no fanout result")
	}
	want := int64(receivers) * int64(f.Messages)
	if f.Receivers != receivers || f.Expected != want || f.Delivered != want || f.Lost != 0 || f.Misordered != 0 || f.PubFailed != 0 {
		t.Fatalf("fanout: %+v", f)
	}
	if f.Delivery.N != uint64(want) || f.Delivery.P50 <= 0 || f.Delivery.Max < f.Delivery.P99 {
		t.Fatalf("delivery stats: %+v", f.Delivery)
	}
	if f.Completion.N != uint64(f.Messages) || f.Incomplete != 0 || f.Completion.Max < f.Delivery.P50 {
		t.Fatalf("completion stats: %+v (incomplete %d)", f.Completion, f.Incomplete)
	}
}

func TestFanoutThroughAPI(t *testing.T) {
	url := hubtest.New(hubtest.Options{}).Start(t)
	r := runBench(t, quick(ScenarioFanout, url))
	checkFanout(t, r, 40)
	if r.Join == nil || r.Join.Joined != 40 || r.Join.Latency.N != 40 {
		t.Fatalf("join: %+v", r.Join)
	}
	if v, ok := r.LeftOpen["roomcast_connections_open"]; !ok || v != 0 {
		t.Fatalf("left open: %v", r.LeftOpen)
	}
}

func TestFanoutThroughClientWithAuth(t *testing.T) {
	url := hubtest.New(hubtest.Options{Token: "tok"}).Start(t)
	cfg := quick(ScenarioFanout, url)
	cfg.PublishVia, cfg.Token = "client", "tok"
	checkFanout(t, runBench(t, cfg), 40)
}

func TestFanoutOverWorkerProcesses(t *testing.T) {
	url := hubtest.New(hubtest.Options{}).Start(t)
	cfg := quick(ScenarioFanout, url)
	cfg.Clients, cfg.PerProcess = 45, 20 // three worker processes of 15
	r := runBench(t, cfg)
	if r.WorkerProcesses != 3 {
		t.Fatalf("worker processes = %d", r.WorkerProcesses)
	}
	checkFanout(t, r, 45)
}

func TestCrossNode(t *testing.T) {
	hub := hubtest.New(hubtest.Options{})
	pubNode, recvNode := hub.Start(t), hub.Start(t)
	r := runBench(t, quick(ScenarioCrossNode, pubNode, recvNode))
	checkFanout(t, r, 40)
	if r.URLs[1] != recvNode {
		t.Fatalf("urls %v", r.URLs)
	}
}

func TestSlowReadersDoNotCount(t *testing.T) {
	url := hubtest.New(hubtest.Options{}).Start(t)
	cfg := quick(ScenarioSlow, url)
	cfg.Messages, cfg.Interval, cfg.SlowShare = 20, time.Millisecond, 0.25
	r := runBench(t, cfg)
	checkFanout(t, r, 30)
	if f := r.Fanout; f.SlowClients != 10 || r.Join.JoinedSlow != 10 || f.SlowCut != 0 {
		t.Fatalf("slow clients %d, joined slow %d, cut %d", f.SlowClients, r.Join.JoinedSlow, f.SlowCut)
	}
}

func TestSlowReadersCutByTheServer(t *testing.T) {
	// The stub writes broadcasts in line and closes a connection whose
	// write blocks for 2 s: 30 broadcasts of 16 KiB overflow a stalled
	// reader's socket buffers, so its write can never finish and it is cut
	// before publishing ends; a fast reader would have to fall more than
	// its socket buffers behind for 2 s to be cut.
	url := hubtest.New(hubtest.Options{WriteTimeout: 2 * time.Second, SendBuffer: 16 << 10}).Start(t)
	// The resumed readers return as soon as they saw their close: the wait
	// is only a safety net here.
	defer func(w time.Duration) { resumeWait = w }(resumeWait)
	resumeWait = time.Minute
	cfg := quick(ScenarioSlow, url)
	cfg.Clients, cfg.SlowShare, cfg.Messages, cfg.Payload, cfg.Interval = 8, 0.25, 30, 16<<10, 2*time.Millisecond
	r := runBench(t, cfg)
	checkFanout(t, r, 6)
	if f := r.Fanout; f.SlowClients != 2 || f.SlowCut != 2 || len(f.SlowCutErrors) == 0 {
		t.Fatalf("slow clients %d, cut %d (%v)", f.SlowClients, f.SlowCut, f.SlowCutErrors)
	}
}

func TestEcho(t *testing.T) {
	url := hubtest.New(hubtest.Options{}).Start(t)
	r := runBench(t, quick(ScenarioEcho, url))
	e := r.Echo
	if e == nil || e.Acks == 0 || e.PerSecond <= 0 || e.Unanswered != 0 || e.Mismatched != 0 || len(e.Errors) > 0 {
		t.Fatalf("echo: %+v", e)
	}
	if e.Latency.N != uint64(e.Acks) || e.Latency.P50 <= 0 {
		t.Fatalf("echo latency: %+v", e.Latency)
	}
}

func TestIdleReadsServerMemory(t *testing.T) {
	url := hubtest.New(hubtest.Options{}).Start(t)
	cfg := quick(ScenarioIdle, url)
	cfg.ServerPID = os.Getpid() // the stub hub runs in this process
	cfg.Runs = 2
	r := runBench(t, cfg)
	s := r.Server
	if s == nil || s.RSSBefore <= 0 || s.RSSLoaded <= 0 || s.RSSAfterClose <= 0 || s.HWM <= 0 {
		t.Fatalf("server memory: %+v", s)
	}
}

func TestRunFailsWithoutServer(t *testing.T) {
	cfg := quick(ScenarioFanout, "http://127.0.0.1:1")
	cfg.Clients = 3
	rep, err := Run(context.Background(), cfg, io.Discard, io.Discard)
	if err == nil || len(rep.Results) != 1 || !strings.Contains(rep.Results[0].Error, "no client connected") {
		t.Fatalf("err %v, results %+v", err, rep.Results)
	}
}

func TestSpawnWaitsForListeningLine(t *testing.T) {
	dir := t.TempDir()
	script := `echo starting; echo '{"level":"info","msg":"listening","addr":"127.0.0.1:{port}"}' >&2; exec sleep 30`
	s, err := startServer(context.Background(), script, 23456, filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	if s.addr != "127.0.0.1:23456" || s.pid() <= 0 {
		t.Fatalf("addr %q pid %d", s.addr, s.pid())
	}
	if _, _, err := memory(s.pid()); err != nil {
		t.Fatal(err)
	}
	s.stop()
	if s.waitErr == nil || !strings.Contains(s.waitErr.Error(), "terminated") {
		t.Fatalf("stop ended the server with %v, want SIGTERM", s.waitErr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "log")); !strings.Contains(string(b), "starting") {
		t.Fatalf("log: %q", b)
	}

	_, err = startServer(context.Background(), "echo boom; exit 3", 23457, filepath.Join(dir, "log2"))
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("early exit: %v", err)
	}
	// A server that ends when the test says so (the gate file appears).
	gate := filepath.Join(dir, "gate")
	s, err = startServer(context.Background(), `echo '{"msg":"listening","addr":"127.0.0.1:1"}'; while [ ! -e `+gate+` ]; do sleep 0.01; done`, 23458, filepath.Join(dir, "log3"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.exitedEarly(); err != nil {
		t.Fatalf("exited early at once: %v", err)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		t.Fatal("the server did not end within a minute of its gate opening")
	}
	if err := s.exitedEarly(); err == nil {
		t.Fatal("a server that ended is not reported")
	}
	s.stop()
	if shellLine("bin/roomcast serve") != "exec bin/roomcast serve" || shellLine("a; exec b") != "a; exec b" {
		t.Fatal("shellLine")
	}
}
