package bench

import (
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/hubtest"
)

func TestIdleNodesFromSpawnOrURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want int
	}{
		{"one spawn", Config{Scenario: ScenarioIdle, Spawn: []string{"a"}}, 1},
		{"three spawns", Config{Scenario: ScenarioIdle, Spawn: []string{"a", "b", "c"}}, 3},
		{"two urls", Config{Scenario: ScenarioIdle, URLs: []string{"http://a", "http://b"}}, 2},
		{"cross-node", Config{Scenario: ScenarioCrossNode, Spawn: []string{"a"}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Normalize(); err != nil {
				t.Fatal(err)
			}
			if got := tc.cfg.nodes(); got != tc.want {
				t.Fatalf("nodes = %d, want %d", got, tc.want)
			}
		})
	}
	bad := Config{Scenario: ScenarioFanout, Spawn: []string{"a", "b"}}
	if err := bad.Normalize(); err == nil {
		t.Fatal("fanout took two --spawn")
	}
}

// TestIdleSpreadsOverNodes: idle against three servers spreads the clients
// over worker processes, a multiple of the nodes, so that each server holds
// the same share at once.
func TestIdleSpreadsOverNodes(t *testing.T) {
	hubs := []*hubtest.Hub{hubtest.New(hubtest.Options{}), hubtest.New(hubtest.Options{}), hubtest.New(hubtest.Options{})}
	var urls []string
	for _, h := range hubs {
		urls = append(urls, h.Start(t))
	}
	cfg := quick(ScenarioIdle, urls...)
	cfg.Clients = 45
	cfg.IdleHold = 2 * time.Second

	// Each hub's peak of open connections, sampled while the run goes on.
	peaks := make([]int, len(hubs))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			for i, h := range hubs {
				peaks[i] = max(peaks[i], h.Conns())
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	r := runBench(t, cfg)
	close(stop)
	wg.Wait()
	if r.WorkerProcesses != 3 || len(r.URLs) != 3 {
		t.Fatalf("worker processes %d, urls %v", r.WorkerProcesses, r.URLs)
	}
	for i, p := range peaks {
		if p != 15 {
			t.Fatalf("hub %d held %d connections at most, want 15 (peaks %v)", i, p, peaks)
		}
	}
}
