package server

import (
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// namespaceSeries counts the metric series labelled with a namespace other
// than "/" and the pseudo-namespaces ("invalid", "over_limit").
func namespaceSeries(t testing.TB, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "namespace" && strings.HasPrefix(l.GetValue(), "/") && l.GetValue() != "/" {
					n++
				}
			}
		}
	}
	return n
}

// pollUntil polls cond until it holds or 15 s pass (a safety net); it returns
// whether it held. Used for what has no event to wait on: goroutines that
// end, series that go.
func pollUntil(cond func() bool) bool {
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// Dynamic namespaces made up by clients leave nothing behind: a refused
// CONNECT creates nothing that stays, and an accepted one's namespace goes
// with its last socket (its adapter's goroutine and its metric series
// too), as Node's cleanupEmptyChildNamespaces.
func TestDynamicNamespacesAreRemoved(t *testing.T) {
	const (
		clientsN = 8
		perConn  = 150 // 1,200 names in all
	)
	secret := []byte("namespaces-secret")
	auth, err := NewJWT(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(secret)
	for _, tt := range []struct {
		name   string
		token  string
		accept bool
	}{
		{"auth refuses", "forged", false},
		{"auth accepts", token, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			srv, addr := startServer(t, Config{
				Auth: auth, Registry: reg, MaxNamespaces: 2 * clientsN * perConn,
				// Info: a debug line per CONNECT slows a loaded machine.
				Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)),
				Hub:    HubConfig{Namespaces: regexp.MustCompile(`^/t-[0-9]+$`)},
			})
			nsps := func() int { return len(srv.Namespaces().Namespaces()) }
			baseNsps, baseSeries := nsps(), namespaceSeries(t, reg)
			runtime.GC()
			baseG := runtime.NumGoroutine()

			conns := make([]*rawClient, clientsN)
			for i := range conns {
				c := dialRaw(t, addr, 0)
				conns[i] = c
				// Pipelined: every CONNECT, then every answer, in order.
				for j := 0; j < perConn; j++ {
					c.write(fmt.Sprintf(`40/t-%d,{"token":%q}`, i*perConn+j, tt.token))
				}
				for j := 0; j < perConn; j++ {
					name := fmt.Sprintf("/t-%d", i*perConn+j)
					want := "44" + name + ","
					if tt.accept {
						want = "40" + name + ","
					}
					if got := c.read(); !strings.HasPrefix(got, want) {
						t.Fatalf("CONNECT %s answered %q, want %s…", name, got, want)
					}
				}
			}
			peakG := runtime.NumGoroutine()
			t.Logf("with %d connections: %d namespaces, %d goroutines, %d namespace series (baseline %d, %d, %d)",
				clientsN, nsps(), peakG, namespaceSeries(t, reg), baseNsps, baseG, baseSeries)
			if tt.accept && nsps() != baseNsps+clientsN*perConn {
				t.Fatalf("%d namespaces while connected, want %d", nsps(), baseNsps+clientsN*perConn)
			}
			for _, c := range conns {
				c.ws.Close()
			}
			if !pollUntil(func() bool { return nsps() == baseNsps }) {
				t.Errorf("%d namespaces after every client left, want %d", nsps(), baseNsps)
			}
			if !pollUntil(func() bool { return namespaceSeries(t, reg) == baseSeries }) {
				t.Errorf("%d namespace metric series after every client left, want %d", namespaceSeries(t, reg), baseSeries)
			}
			if !pollUntil(func() bool { return runtime.NumGoroutine() <= baseG }) {
				t.Errorf("%d goroutines after every client left, want at most %d", runtime.NumGoroutine(), baseG)
			}
		})
	}
}

// The number of dynamic namespaces is capped: a CONNECT that would make
// one more gets a connect_error; existing ones still take clients, and a
// freed slot is usable again.
func TestDynamicNamespaceCap(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, addr := startServer(t, Config{
		Registry: reg, MaxNamespaces: 3,
		Hub: HubConfig{Namespaces: regexp.MustCompile(`^/t-[0-9]+$`)},
	})
	a := dialRaw(t, addr, 0)
	for i := 0; i < 3; i++ {
		if got := a.connect(fmt.Sprintf("/t-%d", i)); !strings.HasPrefix(got, fmt.Sprintf("40/t-%d,{", i)) {
			t.Fatalf("CONNECT /t-%d answered %q", i, got)
		}
	}
	b := dialRaw(t, addr, 0)
	if got := b.connect("/t-3"); got != `44/t-3,{"message":"too many namespaces"}` {
		t.Fatalf("CONNECT over the cap answered %q", got)
	}
	if got := b.connect("/t-0"); !strings.HasPrefix(got, "40/t-0,{") {
		t.Fatalf("CONNECT to an existing namespace at the cap answered %q", got)
	}
	if got := b.connect("/"); !strings.HasPrefix(got, "40{") {
		t.Fatalf("CONNECT to / at the cap answered %q", got)
	}
	// /t-2 empties: its slot is free. An event round trip after the
	// DISCONNECT orders it before the next CONNECT.
	a.write("41/t-2,")
	a.write(`42/t-1,7["echo","x"]`)
	if got := a.read(); got != `43/t-1,7["x"]` {
		t.Fatalf("echo answered %q", got)
	}
	if got := b.connect("/t-3"); !strings.HasPrefix(got, "40/t-3,{") {
		t.Fatalf("CONNECT after a namespace was freed answered %q", got)
	}
	if got := b.connect("/t-4"); got != `44/t-4,{"message":"too many namespaces"}` {
		t.Fatalf("CONNECT over the cap answered %q", got)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "roomcast_socket_connect_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetLabel()[0].GetValue(); v != "over_limit" || m.GetCounter().GetValue() != 2 {
				t.Fatalf("connect error series %s = %v, want only over_limit = 2", v, m.GetCounter().GetValue())
			}
		}
	}
}

// The HTTP API may name a dynamic namespace no client is in (its sockets
// may be on other nodes): the namespace it makes for the request goes
// again afterwards, so API calls neither grow the server nor use up the
// cap; a namespace with sockets stays.
func TestAPIDynamicNamespaceLeavesNothing(t *testing.T) {
	srv, addr := startServer(t, Config{
		MaxNamespaces: 2,
		Hub:           HubConfig{Namespaces: regexp.MustCompile(`^/t-[0-9]+$`)},
	})
	nsps := func() int { return len(srv.Namespaces().Namespaces()) }
	base := nsps()
	api := "http://" + addr + "/api/v1/"
	for i := 0; i < 50; i++ {
		body := fmt.Sprintf(`{"namespace":"/t-%d","event":"e","data":1}`, i)
		if code, _, out := apiDo(t, "POST", api+"emit", "application/json", "", body); code != 200 {
			t.Fatalf("emit to /t-%d: %d %v", i, code, out)
		}
		if code, _, out := apiDo(t, "GET", api+fmt.Sprintf("sockets?namespace=/t-%d", i), "", "", ""); code != 200 {
			t.Fatalf("sockets of /t-%d: %d %v", i, code, out)
		}
	}
	if n := nsps(); n != base {
		t.Fatalf("%d namespaces after 100 API calls, want %d", n, base)
	}
	c := dialRaw(t, addr, 0)
	if got := c.connect("/t-1"); !strings.HasPrefix(got, "40/t-1,{") {
		t.Fatalf("CONNECT /t-1 answered %q", got)
	}
	if code, _, out := apiDo(t, "POST", api+"emit", "application/json", "", `{"namespace":"/t-1","event":"e","data":1}`); code != 200 {
		t.Fatalf("emit to /t-1: %d %v", code, out)
	}
	if got := c.read(); !strings.HasPrefix(got, `42/t-1,["e",1`) {
		t.Fatalf("client of /t-1 got %q", got)
	}
	if n := nsps(); n != base+1 {
		t.Fatalf("%d namespaces with a client in /t-1, want %d", n, base+1)
	}
	if code, _, out := apiDo(t, "POST", api+"emit", "application/json", "", `{"namespace":"/nope","event":"e"}`); code != 400 {
		t.Fatalf("emit to an unknown namespace: %d %v", code, out)
	}
}
