package server

import (
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMaxConnectionsRefusesHandshakes(t *testing.T) {
	srv, addr := startServer(t, Config{MaxConnections: 2, CORSOrigins: []string{"https://app.example"}})
	if v := testutil.ToFloat64(srv.metrics.maxConns); v != 2 {
		t.Fatalf("roomcast_connections_max = %v, want 2", v)
	}
	a := dialRaw(t, addr, 0)
	dialRaw(t, addr, 0)
	for _, transport := range []string{"polling", "websocket"} {
		req, _ := http.NewRequest("GET", "http://"+addr+"/socket.io/?EIO=4&transport="+transport, nil)
		req.Header.Set("Origin", "https://app.example")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Code    int
			Message string
		}
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != 503 || body.Code != codeAtCapacity || body.Message != capacityMessage || res.Header.Get("Retry-After") == "" {
			t.Fatalf("%s handshake at capacity: %d %+v", transport, res.StatusCode, body)
		}
		if res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Fatalf("%s: a browser cannot read the refusal: no CORS header", transport)
		}
	}
	if v := testutil.ToFloat64(srv.metrics.rejected.WithLabelValues(rejectMaxConnections)); v != 2 {
		t.Fatalf("rejected{reason=max connections} = %v, want 2", v)
	}
	// Existing sessions keep working: a's requests carry its sid.
	a.write("40")
	if got := a.read(); got[:2] != "40" {
		t.Fatalf("existing session refused: %q", got)
	}
	// One leaves, one more may come.
	a.ws.Close()
	waitFor(t, func() bool { return srv.engine.Len() < 2 })
	dialRaw(t, addr, 0)
}

func TestMaxConnectionsZeroIsUnbounded(t *testing.T) {
	srv, addr := startServer(t, Config{})
	for range 3 {
		dialRaw(t, addr, 0)
	}
	if v := testutil.ToFloat64(srv.metrics.rejected.WithLabelValues(rejectMaxConnections)); v != 0 {
		t.Fatalf("refused %v handshakes without a bound", v)
	}
}

func TestConnectionsOpenedCounts(t *testing.T) {
	srv, addr := startServer(t, Config{})
	for range 3 {
		c := dialRaw(t, addr, 0)
		c.ws.Close()
	}
	// A connection may be counted open a moment after its client has the
	// handshake: wait for all three to be counted and closed.
	waitFor(t, func() bool {
		return testutil.ToFloat64(srv.metrics.connOpen.opened) >= 3 && testutil.ToFloat64(srv.metrics.connOpen.open) == 0
	})
	if v := testutil.ToFloat64(srv.metrics.connOpen.opened); v != 3 {
		t.Fatalf("roomcast_connections_opened_total = %v, want 3", v)
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"512MiB", 512 << 20, true}, {"2GiB", 2 << 30, true}, {"1.5GiB", 3 << 29, true},
		{"1000000", 1e6, true}, {"1GB", 1e9, true}, {"64 KiB", 64 << 10, true}, {"10B", 10, true},
		{"", 0, false}, {"-1GiB", 0, false}, {"lots", 0, false}, {"1e30", 0, false}, {"NaN", 0, false},
	} {
		got, err := ParseBytes(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	v2, v1, max, huge := write("v2", "1073741824\n"), write("v1", "536870912\n"), write("max", "max\n"), write("huge", "9223372036854771712\n")
	for _, tc := range []struct {
		name  string
		files []string
		want  int64
	}{
		{"v2 first", []string{v2, v1}, 1 << 30},
		{"v1 when no v2", []string{filepath.Join(dir, "absent"), v1}, 512 << 20},
		{"v2 max", []string{max, v1}, 0},
		{"v1 unlimited", []string{huge}, 0},
		{"none", nil, 0},
	} {
		if got := cgroupMemoryLimit(tc.files); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	gib := float64(1 << 30)
	for _, tc := range []struct {
		name, spec, env string
		cgroup          int64
		want            int64
		source          string
	}{
		{"flag", "256MiB", "", 0, 256 << 20, MemoryLimitFlag},
		{"flag under cgroup", "256MiB", "", 1 << 30, 256 << 20, MemoryLimitFlag},
		{"flag over cgroup is capped", "2GiB", "", 1 << 30, 1 << 30, MemoryLimitCgroup},
		{"auto from cgroup", "auto", "", 1 << 30, int64(gib * CgroupMemoryFraction), MemoryLimitCgroup},
		{"off", "off", "", 1 << 30, 0, MemoryLimitNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, source, err := setMemoryLimit(tc.spec, tc.env, tc.cgroup)
			if err != nil || got != tc.want || source != tc.source {
				t.Fatalf("= %d %s %v; want %d %s", got, source, err, tc.want, tc.source)
			}
			if tc.want > 0 && memoryLimit() != tc.want {
				t.Fatalf("runtime limit %d, want %d", memoryLimit(), tc.want)
			}
			if tc.want == 0 && debug.SetMemoryLimit(-1) != math.MaxInt64 {
				t.Fatalf("off left a limit")
			}
		})
	}
	// GOMEMLIMIT set: auto keeps what the runtime read from it.
	debug.SetMemoryLimit(300 << 20)
	if got, source, _ := setMemoryLimit("auto", "300MiB", 1<<30); got != 300<<20 || source != MemoryLimitEnv {
		t.Fatalf("auto with GOMEMLIMIT: %d %s", got, source)
	}
	if _, _, err := setMemoryLimit("0", "", 0); err == nil {
		t.Fatal("--memory-limit 0 accepted")
	}
	if _, _, err := setMemoryLimit("big", "", 0); err == nil {
		t.Fatal("--memory-limit big accepted")
	}
}

func TestMemoryLimitGauge(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	debug.SetMemoryLimit(123 << 20)
	_, addr := startServer(t, Config{})
	if _, body := get(t, "http://"+addr+"/metrics"); !containsLine(body, "roomcast_memory_limit_bytes 1.28974848e+08") {
		t.Fatalf("memory limit gauge missing:\n%s", body)
	}
}

// containsLine reports whether text has line as one of its lines.
func containsLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// The connection rate limit refuses through the same path as the capacity
// bound: 503, Retry-After, an Engine.IO error body a client can read.
func TestConnectRateRefusesWithEngineIOError(t *testing.T) {
	srv, addr := startServer(t, Config{ConnectRate: 0.001, ConnectBurst: 1})
	dialRaw(t, addr, 0) // takes the one token
	res, err := http.Get("http://" + addr + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Code    int
		Message string
	}
	json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != 503 || body.Code != codeAtCapacity || !strings.Contains(body.Message, "too many new connections") || res.Header.Get("Retry-After") == "" {
		t.Fatalf("handshake over the rate: %d %+v", res.StatusCode, body)
	}
	if v := testutil.ToFloat64(srv.metrics.rejected.WithLabelValues(rejectRateLimit)); v != 1 {
		t.Fatalf("rejected{reason=rate limit} = %v, want 1", v)
	}
}
