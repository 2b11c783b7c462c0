package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	c := Config{URLs: []string{"http://127.0.0.1:3000"}}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if c.Scenario != ScenarioFanout || c.Clients != DefaultClients || c.Messages != DefaultMessages || c.Interval != DefaultInterval || c.PublishVia != "api" {
		t.Fatalf("defaults: %+v", c)
	}
	s := Config{Scenario: ScenarioSlow, Compare: true}
	if err := s.Normalize(); err != nil {
		t.Fatal(err)
	}
	if s.Messages != DefaultSlowMessages || s.Interval != DefaultSlowInterval || s.SlowShare != DefaultSlowShare ||
		s.Payload != DefaultSlowPayload || s.RoomcastCmd != DefaultRoomcastCmd || s.NodeCmd != DefaultNodeCmd ||
		s.slowClients() != 20 {
		t.Fatalf("slow defaults: %+v", s)
	}

	bad := []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"no target", Config{}, "exactly one"},
		{"two targets", Config{URLs: []string{"http://a"}, Compare: true}, "exactly one"},
		{"unknown scenario", Config{Scenario: "storm", Compare: true}, "unknown scenario"},
		{"cross-node one url", Config{Scenario: ScenarioCrossNode, URLs: []string{"http://a"}}, "needs 2"},
		{"fanout two urls", Config{URLs: []string{"http://a", "http://b"}}, "needs 1"},
		{"three spawns", Config{Scenario: ScenarioCrossNode, Spawn: []string{"a", "b", "c"}}, "takes 1 or 2"},
		{"pid without url", Config{Compare: true, ServerPID: 5}, "--server-pid"},
		{"publish via", Config{Compare: true, PublishVia: "carrier pigeon"}, "publish-via"},
		{"slow share", Config{Compare: true, SlowShare: 1}, "slow-share"},
		{"ports", Config{Compare: true, PortMin: 40000, PortMax: 30000}, "ports"},
		{"negative", Config{Compare: true, Drain: -time.Second}, "negative"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Normalize()
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
		})
	}
}

func TestShare(t *testing.T) {
	for _, tc := range []struct{ total, n int }{{45, 3}, {10, 3}, {1, 4}, {25000, 2}, {0, 2}} {
		sum := 0
		for i := range tc.n {
			p := share(tc.total, tc.n, i)
			if p < tc.total/tc.n || p > tc.total/tc.n+1 {
				t.Errorf("share(%d, %d, %d) = %d", tc.total, tc.n, i, p)
			}
			sum += p
		}
		if sum != tc.total {
			t.Errorf("shares of %d over %d sum to %d", tc.total, tc.n, sum)
		}
	}
	p := newPool(PoolSpec{Clients: 10, Slow: 3})
	slow := 0
	for i := range 10 {
		if p.isSlow(i) {
			slow++
		}
	}
	if slow != 3 {
		t.Errorf("isSlow picks %d of 10, want 3", slow)
	}
}

func TestExpandCommandAndListeningLine(t *testing.T) {
	c, addr := expandCommand("bin/roomcast serve --addr {addr}", 20001)
	if c != "bin/roomcast serve --addr 127.0.0.1:20001" || addr != "127.0.0.1:20001" {
		t.Fatalf("%q %q", c, addr)
	}
	c, addr = expandCommand("srv -p {port}", 20002)
	if c != "srv -p 20002" || addr != "127.0.0.1:20002" {
		t.Fatalf("%q %q", c, addr)
	}
	if c, addr = expandCommand("srv", 20003); c != "srv" || addr != "" {
		t.Fatalf("%q %q", c, addr)
	}
	for line, want := range map[string]string{
		`{"level":"info","ts":1.5,"msg":"listening","addr":"127.0.0.1:3000"}`:    "127.0.0.1:3000",
		`{"level":"info","msg":"listening","addr":"[::1]:80","bufferutil":true}`: "[::1]:80",
		`{"msg":"not listening yet","addr":"x"}`:                                 "",
		`listening on 127.0.0.1:3000`:                                            "",
	} {
		if got := listeningAddr([]byte(line)); got != want {
			t.Errorf("listeningAddr(%s) = %q, want %q", line, got, want)
		}
	}
	p, err := pickPort(DefaultPortMin, DefaultPortMax)
	if err != nil || p < DefaultPortMin || p > DefaultPortMax {
		t.Fatalf("pickPort = %d, %v", p, err)
	}
}

func TestProcOfSelf(t *testing.T) {
	rss, hwm, err := memory(os.Getpid())
	if err != nil || rss <= 0 || hwm < rss {
		t.Fatalf("memory = %d, %d, %v", rss, hwm, err)
	}
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if b, err := machineBusy(); err != nil || b <= 0 {
		t.Fatalf("machineBusy = %v, %v", b, err)
	}
	if _, _, err := memory(-1); err == nil {
		t.Fatal("memory(-1) succeeded")
	}
}
