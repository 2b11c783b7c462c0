package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/adapter"
)

// natsServer is a nats-server process of a test (JetStream on), on its own
// port, storing in a directory of the test so a restart keeps the streams.
type natsServer struct {
	t       testing.TB
	port    int
	cluster int // cluster port, 0 outside a cluster
	routes  []int
	dir     string
	monitor int    // HTTP monitoring port, 0: none
	noJS    bool   // JetStream off
	conf    string // a configuration file's text, "": none
	cmd     *exec.Cmd
}

func natsBinary(t testing.TB) string {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	if p, err := exec.LookPath("/usr/sbin/nats-server"); err == nil {
		return p
	}
	t.Fatal("nats-server is required for the NATS tests: install it (Debian: apt-get install nats-server)")
	return ""
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	s := &natsServer{t: t, port: freePort(t), dir: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

func (s *natsServer) start() {
	s.t.Helper()
	args := []string{"-a", "127.0.0.1", "-p", fmt.Sprint(s.port)}
	if !s.noJS {
		args = append(args, "-js", "-sd", s.dir)
	}
	if s.monitor > 0 {
		args = append(args, "-m", fmt.Sprint(s.monitor))
	}
	if s.conf != "" {
		f := filepath.Join(s.dir, "nats.conf")
		if err := os.WriteFile(f, []byte(s.conf), 0o600); err != nil {
			s.t.Fatal(err)
		}
		args = append(args, "-c", f)
	}
	if s.cluster > 0 {
		var routes []string
		for _, p := range s.routes {
			routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
		}
		args = append(args, "-n", fmt.Sprintf("n%d", s.port), "--cluster_name", "roomcast-test",
			"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", s.cluster), "--routes", strings.Join(routes, ","))
	}
	s.cmd = exec.Command(natsBinary(s.t), args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	waitFor(s.t, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func (s *natsServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

var natsBackplanes = []string{"nats", "nats-jetstream"}

func TestNATSCrossNodeOperations(t *testing.T) {
	for _, bp := range natsBackplanes {
		t.Run(bp, func(t *testing.T) {
			ns := startNATS(t)
			crossNode(t, ns.url(), bp)
		})
	}
}

// A request to a cluster whose node left waits only for the live nodes.
func TestNATSDeadNodeDoesNotHang(t *testing.T) {
	ns := startNATS(t)
	srvs, addrs := clusterAt(t, ns.url(), 3, Config{Backplane: "nats"})
	ctx := context.Background()
	for _, a := range addrs {
		dialRaw(t, a, 0).connect("/")
	}
	waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 3 })
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	srvs[2].Shutdown(sctx)
	cancel()
	waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 2 })
	socks, err := srvs[0].Of("/").FetchSockets(ctx)
	if err != nil || len(socks) != 2 {
		t.Fatalf("%d sockets, %v", len(socks), err)
	}
}

// NATS goes away and comes back: nodes serve locally meanwhile, count the
// errors, do not grow goroutines, and deliver across nodes again after.
func TestNATSOutage(t *testing.T) {
	for _, bp := range natsBackplanes {
		t.Run(bp, func(t *testing.T) {
			ns := startNATS(t)
			srvs, addrs := clusterAt(t, ns.url(), 2, Config{Backplane: bp})
			ctx := context.Background()
			a, b := dialRaw(t, addrs[0], 0), dialRaw(t, addrs[1], 0)
			a.connect("/")
			b.connect("/")
			a.join("r")
			b.join("r")
			waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 2 })
			srvs[0].To("r").Emit(ctx, "before")
			a.expect(`before`)
			b.expect(`before`)
			goroutines := runtime.NumGoroutine()

			ns.stop()
			waitFor(t, func() bool {
				return testutil.ToFloat64(srvs[0].metrics.backplaneErrors.WithLabelValues("subscribe")) > 0
			})
			// The backplane knows it is disconnected: the emit says so, and
			// the local socket still gets it.
			for i := 0; i < 5; i++ {
				if err := srvs[0].To("r").Emit(ctx, "during", i); !errors.Is(err, ErrBackplaneDown) {
					t.Fatalf("emit during the outage: %v, want ErrBackplaneDown", err)
				}
				a.expect(fmt.Sprintf(`"during",%d`, i))
			}
			// So does the HTTP API, with a 503.
			code, _, out := apiDo(t, "POST", "http://"+addrs[0]+"/api/v1/emit", "application/json", "", `{"event":"during","data":5,"rooms":["r"]}`)
			if msg, _ := out["error"].(string); code != http.StatusServiceUnavailable || !strings.Contains(msg, "backplane") {
				t.Fatalf("API emit during the outage: %d %v", code, out)
			}
			a.expect(`"during",5`)
			// And the hub's publish ack.
			a.write(`421["publish",{"room":"r","event":"during","data":6}]`)
			a.expect(`^431\[\{"error":"nats: backplane: not connected"`)
			if g := runtime.NumGoroutine(); g > goroutines+20 {
				t.Fatalf("goroutines grew from %d to %d during the outage", goroutines, g)
			}

			ns.start()
			resumed(t, func() { srvs[0].To("r").Emit(ctx, "after") }, b)
			if g := runtime.NumGoroutine(); g > goroutines+20 {
				t.Fatalf("goroutines grew from %d to %d after the outage", goroutines, g)
			}
		})
	}
}

// resumed emits until c hears "after".
func resumed(t *testing.T, emit func(), c *rawClient) {
	t.Helper()
	got := make(chan struct{})
	go func() {
		defer close(got)
		for i := 0; i < 1000; i++ {
			if strings.Contains(c.read(), `"after"`) {
				return
			}
		}
	}()
	deadline := time.After(safetyNet)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-got:
			return
		case <-tick.C:
			emit()
		case <-deadline:
			t.Fatalf("cross-node delivery did not resume within %v", safetyNet)
		}
	}
}

// A cluster of three NATS servers loses one: the roomcast nodes connected
// to it move to the others and cross-node delivery goes on.
func TestNATSClusterServerKilled(t *testing.T) {
	var ns []*natsServer
	clusterPorts := []int{freePort(t), freePort(t), freePort(t)}
	for i := 0; i < 3; i++ {
		s := &natsServer{t: t, port: freePort(t), dir: t.TempDir(), cluster: clusterPorts[i], routes: clusterPorts}
		ns = append(ns, s)
	}
	for _, s := range ns {
		s.start()
		t.Cleanup(s.stop)
	}
	ctx := context.Background()
	var srvs []*Server
	var cl []*rawClient
	for i := 0; i < 3; i++ {
		// Each node prefers its own server, then the others.
		urls := []string{ns[i].url(), ns[(i+1)%3].url(), ns[(i+2)%3].url()}
		s, addr := startServer(t, Config{Backplane: "nats", NATSURL: strings.Join(urls, ","), RecoveryWindow: -1})
		srvs = append(srvs, s)
		c := dialRaw(t, addr, 0)
		c.connect("/")
		c.join("r")
		cl = append(cl, c)
	}
	waitFor(t, func() bool {
		for _, s := range srvs {
			if s.Of("/").Adapter().ServerCount(ctx) != 3 {
				return false
			}
		}
		return true
	})
	// The routes between the servers carry the room's interest: wait for
	// a broadcast to reach every node.
	for i, c := range cl {
		resumed(t, func() { srvs[(i+1)%3].To("r").Emit(ctx, "after") }, c)
	}
	ns[0].stop()
	// Node 0 reconnects to another server; every node hears node 0 again.
	for i := 1; i < 3; i++ {
		resumed(t, func() { srvs[0].To("r").Emit(ctx, "after") }, cl[i])
	}
	resumed(t, func() { srvs[1].To("r").Emit(ctx, "after") }, cl[0])
	// Cluster requests work again too. A request sent while the servers
	// still propagate the reconnected nodes' interest can time out (and
	// says so); the cluster converges, so a later one is answered by all.
	var socks []adapter.SocketInfo
	var err error
	waitFor(t, func() bool {
		socks, err = srvs[2].Of("/").FetchSockets(ctx)
		return err == nil && len(socks) == 3
	})
}

// 100 clients on 3 nodes get 2,000 broadcasts from one node: every one,
// once, in order.
func TestNATSNoLoss(t *testing.T) {
	for _, bp := range natsBackplanes {
		t.Run(bp, func(t *testing.T) {
			ns := startNATS(t)
			srvs, addrs := clusterAt(t, ns.url(), 3, Config{Backplane: bp, RecoveryWindow: -1})
			checkNoLoss(t, srvs, addrs)
		})
	}
}

// With JetStream a client that drops from one node and comes back to
// another within the window gets what it missed, once, in order.
func TestNATSJetStreamRecoveryAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	srvs, addrs := clusterAt(t, ns.url(), 2, Config{Backplane: "nats-jetstream", RecoveryWindow: time.Minute})
	ctx := context.Background()
	a := dialRaw(t, addrs[0], 0)
	ans := a.connect("/")
	sid := sidOf(ans)
	pid := regexp.MustCompile(`"pid":"([^"]+)"`).FindStringSubmatch(ans)[1]
	a.join("r")
	waitFor(t, func() bool { return srvs[1].Of("/").Adapter().ServerCount(ctx) == 2 })
	srvs[1].To("r").Emit(ctx, "m", 0)
	got := a.expect(`^42\["m",0,"`)
	offset := regexp.MustCompile(`"(0-[0-9]+)"\]$`).FindStringSubmatch(got)[1]
	a.ws.Close()
	waitFor(t, func() bool { return srvs[0].Of("/").Socket(sid) == nil })
	for i := 1; i <= 5; i++ {
		srvs[0].To("r").Emit(ctx, "m", i)
	}
	b := dialRaw(t, addrs[1], 0)
	b.write(fmt.Sprintf(`40{"pid":%q,"offset":%q}`, pid, offset))
	if ans := b.read(); sidOf(ans) != sid {
		t.Fatalf("not recovered: %q (socket was %s)", ans, sid)
	}
	for i := 1; i <= 5; i++ {
		b.next(fmt.Sprintf(`^42\["m",%d,"0-[0-9]+"\]$`, i))
	}
	srvs[1].To("r").Emit(ctx, "m", 6)
	b.next(`^42\["m",6,`)
}

// interest is the number of subscriptions matching subject (from the
// server's monitoring endpoint).
func (s *natsServer) interest(t *testing.T, subject string) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/subsz?subs=1&test=%s", s.monitor, subject))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		List []struct {
			Subject string `json:"subject"`
		} `json:"subscriptions_list"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return len(v.List)
}

func roomSubject(nsp, room string) string {
	tok := func(s string) string { return "n" + base64.RawURLEncoding.EncodeToString([]byte(s)) }
	return adapter.DefaultNATSPrefix + "." + tok(nsp) + ".r." + tok(room)
}

// An emitter outside the cluster (the Go Emitter, the roomcast emit
// command) reaches the sockets of every node on the NATS backplanes; a
// node subscribes to a room's subject only while it has members there.
func TestNATSEmitter(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "roomcast")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/roomcast").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, bp := range natsBackplanes {
		t.Run(bp, func(t *testing.T) {
			ns := &natsServer{t: t, port: freePort(t), monitor: freePort(t), dir: t.TempDir()}
			ns.start()
			t.Cleanup(ns.stop)
			srvs, addrs := clusterAt(t, ns.url(), 2, Config{Backplane: bp, RecoveryWindow: -1})
			ctx := context.Background()
			nc, err := nats.Connect(ns.url())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			var cl []*rawClient
			for i, rooms := range [][]string{{"a"}, {"a", "b"}, {"b"}} {
				c := dialRaw(t, addrs[min(i, 1)], 0)
				c.connect("/")
				for _, r := range rooms {
					c.join(r)
				}
				cl = append(cl, c)
			}
			waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 2 })
			if bp == "nats" {
				waitFor(t, func() bool {
					return ns.interest(t, roomSubject("/", "a")) == 2 && ns.interest(t, roomSubject("/", "b")) == 1
				})
				cl[2].write(`429["leave","b"]`)
				cl[2].expect(`^439\[`)
				waitFor(t, func() bool { return ns.interest(t, roomSubject("/", "b")) == 1 })
				cl[1].write(`429["leave","b"]`)
				cl[1].expect(`^439\[`)
				waitFor(t, func() bool { return ns.interest(t, roomSubject("/", "b")) == 0 })
				cl[1].join("b")
				cl[2].join("b")
				waitFor(t, func() bool { return ns.interest(t, roomSubject("/", "b")) == 1 })
			}
			e, err := adapter.NewEmitterWith(adapter.EmitterConfig{NATS: nc, Backplane: bp})
			if err != nil {
				t.Fatal(err)
			}
			check := func(t *testing.T, event string, receivers []int) {
				t.Helper()
				if err := e.Emit(ctx, "fence", event); err != nil {
					t.Fatal(err)
				}
				for i, c := range cl {
					if slicesContains(receivers, i) {
						c.next(fmt.Sprintf(`^42\[%q,1\]$`, event))
					}
					c.next(fmt.Sprintf(`^42\["fence",%q\]$`, event))
				}
			}
			cases := []struct {
				name      string
				goEmit    func(event string) error
				cmd       []string
				receivers []int
			}{
				{"all", func(ev string) error { return e.Emit(ctx, ev, 1) }, nil, []int{0, 1, 2}},
				{"room", func(ev string) error { return e.To("a").Emit(ctx, ev, 1) }, []string{"--room", "a"}, []int{0, 1}},
				{"two rooms", func(ev string) error { return e.To("a", "b").Emit(ctx, ev, 1) }, []string{"--room", "a,b"}, []int{0, 1, 2}},
				{"room except a room", func(ev string) error { return e.To("a").Except("b").Emit(ctx, ev, 1) }, []string{"--room", "a", "--except", "b"}, []int{0}},
			}
			for _, tc := range cases {
				t.Run("go "+tc.name, func(t *testing.T) {
					ev := "go " + tc.name
					if err := tc.goEmit(ev); err != nil {
						t.Fatal(err)
					}
					check(t, ev, tc.receivers)
				})
				t.Run("command "+tc.name, func(t *testing.T) {
					ev := "cmd " + tc.name
					args := append([]string{"emit", "--adapter", bp, "--nats-url", ns.url(), "--event", ev, "--data", "1"}, tc.cmd...)
					cmd := exec.Command(bin, args...)
					cmd.Env = os.Environ()
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("roomcast %s: %v\n%s", strings.Join(args, " "), err, out)
					}
					check(t, ev, tc.receivers)
				})
			}
			t.Run("socket joins and disconnect", func(t *testing.T) {
				if err := e.To("a").SocketsJoin(ctx, "c"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, func() bool {
					s, _ := srvs[0].Of("/").To("c").FetchSockets(ctx)
					return len(s) == 2
				})
				if err := e.To("c").DisconnectSockets(ctx, false); err != nil {
					t.Fatal(err)
				}
				cl[0].expect(`^41$`)
				cl[1].expect(`^41$`)
			})
		})
	}
}

func slicesContains(s []int, v int) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}

// tcpProxy forwards a port to another; cut closes the listener and every
// connection, restore listens again on the same port. hold stops the
// server-to-client direction (what the server sends waits in the proxy)
// until release; pulls, when set before the first connection, gets the
// time of each JetStream pull request a client sends.
type tcpProxy struct {
	t      *testing.T
	port   int
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
	gate   sync.RWMutex // held (write) while the server's direction is held
	pulls  chan time.Time
}

func (p *tcpProxy) hold()    { p.gate.Lock() }
func (p *tcpProxy) release() { p.gate.Unlock() }

// up copies client to server, telling pulls of each pull request.
func (p *tcpProxy) up(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if p.pulls != nil && bytes.Contains(buf[:n], []byte(".CONSUMER.MSG.NEXT.")) {
				select {
				case p.pulls <- time.Now():
				default:
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// down copies server to client, waiting while the direction is held.
func (p *tcpProxy) down(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate.RLock()
			_, werr := dst.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func startProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, port: freePort(t), target: target}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", p.port) }

func (p *tcpProxy) restore() {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.port))
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.up(u, c); u.Close() }()
			go func() { defer p.wg.Done(); p.down(c, u); c.Close() }()
		}
	}()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// A node cut off from NATS while the stream goes on delivers, once it is
// back, what was published meanwhile, in order, then the new messages.
func TestNATSJetStreamNodeResumes(t *testing.T) {
	ns := startNATS(t)
	proxy := startProxy(t, fmt.Sprintf("127.0.0.1:%d", ns.port))
	cfg := Config{Backplane: "nats-jetstream", RecoveryWindow: -1}
	a, addrA := startServer(t, Config{Backplane: cfg.Backplane, RecoveryWindow: -1, NATSURL: ns.url()})
	b, addrB := startServer(t, Config{Backplane: cfg.Backplane, RecoveryWindow: -1, NATSURL: proxy.url()})
	ctx := context.Background()
	ca, cb := dialRaw(t, addrA, 0), dialRaw(t, addrB, 0)
	ca.connect("/")
	cb.connect("/")
	ca.join("r")
	cb.join("r")
	waitFor(t, func() bool {
		return a.Of("/").Adapter().ServerCount(ctx) == 2 && b.Of("/").Adapter().ServerCount(ctx) == 2
	})
	a.To("r").Emit(ctx, "m", 0)
	ca.next(`^42\["m",0\]$`)
	cb.next(`^42\["m",0\]$`)

	proxy.cut()
	waitFor(t, func() bool {
		return testutil.ToFloat64(b.metrics.backplaneErrors.WithLabelValues("subscribe")) > 0
	})
	for i := 1; i <= 20; i++ {
		a.To("r").Emit(ctx, "m", i)
		ca.next(fmt.Sprintf(`^42\["m",%d\]$`, i))
	}
	proxy.restore()
	for i := 1; i <= 20; i++ {
		cb.next(fmt.Sprintf(`^42\["m",%d\]$`, i))
	}
	a.To("r").Emit(ctx, "m", 21)
	cb.next(`^42\["m",21\]$`)
}

// Hostile messages on every subject the NATS nodes hear (and in the
// JetStream stream) are skipped and counted; the nodes go on.
func TestNATSHostileMessages(t *testing.T) {
	for _, bp := range natsBackplanes {
		t.Run(bp, func(t *testing.T) {
			ns := startNATS(t)
			srvs, addrs := clusterAt(t, ns.url(), 2, Config{Backplane: bp, RecoveryWindow: time.Minute})
			ctx := context.Background()
			var cl []*rawClient
			for _, a := range addrs {
				c := dialRaw(t, a, 0)
				c.connect("/")
				c.join("r")
				cl = append(cl, c)
			}
			waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 2 })
			nc, err := nats.Connect(ns.url())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			tok := func(s string) string { return "n" + base64.RawURLEncoding.EncodeToString([]byte(s)) }
			subjects := []string{adapter.DefaultNATSPrefix + "." + tok("/") + ".all", adapter.DefaultNATSPrefix + "._hb"}
			if bp == "nats" {
				subjects = append(subjects, roomSubject("/", "r"))
			} else {
				subjects = append(subjects, adapter.DefaultNATSPrefix+".js."+tok("/"))
			}
			n := 0.0
			for name, p := range hostilePayloads() {
				if len(p) > 1<<20 {
					continue // past NATS's max_payload: the server refuses it
				}
				for _, subj := range subjects {
					if err := nc.Publish(subj, p); err != nil {
						t.Fatalf("%s on %s: %v", name, subj, err)
					}
					nc.Flush()
					n++
					counted(t, srvs, n)
				}
			}
			srvs[0].To("r").Emit(ctx, "still", 1)
			for _, c := range cl {
				c.expect(`^42\["still",1`)
			}
		})
	}
}
