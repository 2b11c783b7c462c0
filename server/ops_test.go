package server

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestOpsDefaultOnMainListener(t *testing.T) {
	_, addr := startServer(t, Config{})
	if status, body := get(t, "http://"+addr+"/metrics"); status != 200 || !strings.Contains(body, "roomcast_") {
		t.Fatalf("/metrics on the main listener: %d", status)
	}
	if status, _ := get(t, "http://"+addr+"/debug/pprof/"); status != 404 {
		t.Fatalf("pprof is off by default, got %d", status)
	}
}

func TestOpsOwnListeners(t *testing.T) {
	srv, addr := startServer(t, Config{MetricsAddr: "127.0.0.1:0", PprofAddr: "127.0.0.1:0"})
	m, p := srv.MetricsAddr(), srv.PprofAddr()
	if m == nil || p == nil {
		t.Fatalf("MetricsAddr %v, PprofAddr %v", m, p)
	}
	for _, tc := range []struct {
		url    string
		status int
	}{
		{"http://" + addr + "/metrics", 404},
		{"http://" + addr + "/debug/pprof/", 404},
		{"http://" + m.String() + "/metrics", 200},
		{"http://" + m.String() + "/debug/pprof/", 404},
		{"http://" + p.String() + "/debug/pprof/", 200},
		{"http://" + p.String() + "/debug/pprof/cmdline", 200},
		{"http://" + p.String() + "/metrics", 404},
	} {
		if status, _ := get(t, tc.url); status != tc.status {
			t.Errorf("GET %s: %d, want %d", tc.url, status, tc.status)
		}
	}
}

func TestOpsPprofWithMetrics(t *testing.T) {
	srv, addr := startServer(t, Config{MetricsAddr: "127.0.0.1:0", Pprof: true})
	if status, _ := get(t, "http://"+srv.MetricsAddr().String()+"/debug/pprof/"); status != 200 {
		t.Fatalf("pprof with /metrics: %d", status)
	}
	if status, _ := get(t, "http://"+addr+"/debug/pprof/"); status != 404 {
		t.Fatalf("pprof on the main listener: %d", status)
	}
}

func TestOpsPprofStaysOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"pprof on loopback main", Config{Pprof: true}, true},
		{"pprof on public main", Config{Addr: "0.0.0.0:3000", APIKey: "k", Pprof: true}, false},
		{"pprof with public metrics", Config{MetricsAddr: "0.0.0.0:9090", Pprof: true}, false},
		{"pprof with loopback metrics, public main", Config{Addr: "0.0.0.0:3000", APIKey: "k", MetricsAddr: "127.0.0.1:9090", Pprof: true}, true},
		{"explicit public pprof address", Config{Addr: "0.0.0.0:3000", APIKey: "k", PprofAddr: "0.0.0.0:6060"}, true},
		{"public metrics without pprof", Config{MetricsAddr: "0.0.0.0:9090"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := New(tc.cfg)
			if srv != nil {
				srv.Shutdown(t.Context())
			}
			if tc.ok != (err == nil) {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && (!errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "--pprof-addr")) {
				t.Fatalf("New: %v, want ErrBadConfig naming --pprof-addr", err)
			}
		})
	}
}
