package server

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server process of a test, on its own port.
type redisServer struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRedis runs redis-server on a free port until the test ends.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is required for the Redis tests: install it (Debian: apt-get install redis-server)")
	}
	r := &redisServer{t: t, port: freePort(t)}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port)})
	defer c.Close()
	waitFor(r.t, func() bool { return c.Ping(context.Background()).Err() == nil })
}

func (r *redisServer) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// cluster starts n servers on one Redis (the backplane is cfg's, "redis"
// by default).
func cluster(t *testing.T, rs *redisServer, n int, cfg Config) ([]*Server, []string) {
	return clusterAt(t, rs.url(), n, cfg)
}

func clusterAt(t *testing.T, url string, n int, cfg Config) ([]*Server, []string) {
	var srvs []*Server
	var addrs []string
	for i := 0; i < n; i++ {
		c := cfg
		if c.Backplane == "" {
			c.Backplane = "redis"
		}
		c.RedisURL = url
		c.NATSURL = url      // for the NATS backplanes
		c.KafkaBrokers = url // for the kafka backplane
		s, a := startServer(t, c)
		srvs = append(srvs, s)
		addrs = append(addrs, a)
	}
	return srvs, addrs
}

// expect reads until a message matching re arrives (acks the ones that ask).
func (c *rawClient) expect(re string) string {
	c.t.Helper()
	rx := regexp.MustCompile(re)
	for i := 0; i < 100; i++ {
		m := c.read()
		if rx.MatchString(m) {
			return m
		}
	}
	c.t.Fatalf("no message matching %s", re)
	return ""
}

// next returns the next message, which must match re: what should not
// have arrived is caught by the fence message sent after it.
func (c *rawClient) next(re string) {
	c.t.Helper()
	if m := c.read(); !regexp.MustCompile(re).MatchString(m) {
		c.t.Fatalf("got %q, want %s", m, re)
	}
}

func (c *rawClient) join(room string) {
	c.t.Helper()
	c.write(fmt.Sprintf(`429["join",%q]`, room))
	c.expect(`^439\[`)
}

// sid returns the socket id from a CONNECT answer.
func sidOf(connectAnswer string) string {
	m := regexp.MustCompile(`"sid":"([^"]+)"`).FindStringSubmatch(connectAnswer)
	return m[1]
}

// backplanes are the Redis adapters every cross-node test runs on.
var backplanes = []string{"redis", "redis-sharded", "redis-streams"}

func TestRedisCrossNodeOperations(t *testing.T) {
	for _, bp := range backplanes {
		t.Run(bp, func(t *testing.T) {
			rs := startRedis(t)
			crossNode(t, rs.url(), bp)
		})
	}
}

func crossNode(t *testing.T, url, backplane string) {
	srvs, addrs := clusterAt(t, url, 3, Config{RecoveryWindow: -1, Backplane: backplane})
	ctx := context.Background()
	var cl []*rawClient
	var sids []string
	for i := 0; i < 3; i++ {
		c := dialRaw(t, addrs[i], 0)
		sids = append(sids, sidOf(c.connect("/")))
		c.join("all")
		c.join(fmt.Sprintf("r%d", i))
		cl = append(cl, c)
	}
	// The three nodes must see each other before the checks.
	waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 3 })

	t.Run("room broadcast reaches every node", func(t *testing.T) {
		srvs[0].To("all").Emit(ctx, "a", 1)
		for _, c := range cl {
			c.expect(`^42\["a",1\]$`)
		}
	})
	t.Run("several rooms, once each", func(t *testing.T) {
		srvs[1].To("r0", "r2", "all").Emit(ctx, "b")
		for _, c := range cl {
			c.expect(`^42\["b"\]$`)
		}
		srvs[0].To("all").Emit(ctx, "fence", 1)
		for _, c := range cl {
			c.next(`^42\["fence",1\]$`)
		}
	})
	t.Run("except a room and a socket", func(t *testing.T) {
		srvs[2].To("all").Except("r0", sids[1]).Emit(ctx, "c")
		cl[2].expect(`^42\["c"\]$`)
		srvs[2].To("all").Emit(ctx, "fence", 2)
		for _, c := range cl {
			c.next(`^42\["fence",2\]$`)
		}
	})
	t.Run("to a socket id on another node", func(t *testing.T) {
		srvs[0].To(sids[2]).Emit(ctx, "d")
		cl[2].expect(`^42\["d"\]$`)
	})
	t.Run("broadcast to all", func(t *testing.T) {
		srvs[1].Of("/").Local().Emit(ctx, "local-only")
		srvs[1].Of("/").To().Emit(ctx, "e")
		cl[1].next(`local-only`)
		for _, c := range cl {
			c.next(`^42\["e"\]$`)
		}
	})
	t.Run("acks from every node", func(t *testing.T) {
		res := make(chan []any, 1)
		go func() {
			r, err := srvs[0].To("all").Timeout(safetyNet).EmitWithAck(ctx, "vote")
			if err != nil {
				t.Error(err)
			}
			res <- r
		}()
		for i, c := range cl {
			m := c.expect(`^42\d+\["vote"\]$`)
			id := strings.TrimSuffix(strings.TrimPrefix(m, "42"), `["vote"]`)
			c.write(fmt.Sprintf(`43%s["n%d"]`, id, i))
		}
		if r := <-res; len(r) != 3 {
			t.Fatalf("acks %v", r)
		}
	})
	t.Run("sockets join and leave on every node", func(t *testing.T) {
		srvs[0].Of("/").To("r1", "r2").Join("joined")
		waitFor(t, func() bool {
			s, _ := srvs[0].Of("/").To("joined").FetchSockets(ctx)
			return len(s) == 2
		})
		srvs[2].To("joined").Emit(ctx, "f")
		cl[1].expect(`^42\["f"\]$`)
		cl[2].expect(`^42\["f"\]$`)
		srvs[1].Of("/").To("joined").Leave("joined")
		waitFor(t, func() bool {
			s, _ := srvs[2].Of("/").To("joined").FetchSockets(ctx)
			return len(s) == 0
		})
	})
	t.Run("fetch sockets", func(t *testing.T) {
		socks, err := srvs[1].Of("/").To("all").FetchSockets(ctx)
		if err != nil || len(socks) != 3 {
			t.Fatalf("%d sockets, %v", len(socks), err)
		}
		for _, s := range socks {
			if len(s.Rooms) < 3 || s.Handshake["address"] != "127.0.0.1" {
				t.Fatalf("socket %+v", s)
			}
		}
	})
	t.Run("server-side emit with ack", func(t *testing.T) {
		res, err := srvs[0].Of("/").ServerSideEmitWithAck(ctx, PingEvent)
		if err != nil || len(res) != 2 {
			t.Fatalf("responses %v, %v", res, err)
		}
		got := make(chan []any, 1)
		srvs[2].Of("/").OnServerSideEmit("hello", func(args []any, _ func(any)) { got <- args })
		srvs[1].Of("/").ServerSideEmit(ctx, "hello", "world")
		select {
		case a := <-got:
			if a[0] != "world" {
				t.Fatalf("args %v", a)
			}
		case <-time.After(safetyNet):
			t.Fatal("server-side emit did not arrive")
		}
	})
	t.Run("disconnect on another node", func(t *testing.T) {
		srvs[0].Of("/").To("r2").Disconnect(false)
		cl[2].expect(`^41$`)
	})
}

// A request to a cluster whose node died waits only for the live nodes.
func TestRedisDeadNodeDoesNotHang(t *testing.T) {
	for _, bp := range backplanes {
		t.Run(bp, func(t *testing.T) { deadNode(t, bp) })
	}
}

func deadNode(t *testing.T, backplane string) {
	rs := startRedis(t)
	srvs, addrs := cluster(t, rs, 3, Config{Backplane: backplane})
	ctx := context.Background()
	for _, a := range addrs {
		c := dialRaw(t, a, 0)
		c.connect("/")
	}
	waitFor(t, func() bool { return srvs[0].Of("/").Adapter().ServerCount(ctx) == 3 })
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	srvs[2].Shutdown(sctx)
	cancel()
	// Waiting for the dead node would end in ErrRequestTimeout.
	socks, err := srvs[0].Of("/").FetchSockets(ctx)
	if err != nil || len(socks) != 2 {
		t.Fatalf("%d sockets, %v", len(socks), err)
	}
}

func TestRedisOutage(t *testing.T) {
	for _, bp := range backplanes {
		t.Run(bp, func(t *testing.T) { outage(t, bp) })
	}
}

func outage(t *testing.T, backplane string) {
	rs := startRedis(t)
	srvs, addrs := cluster(t, rs, 2, Config{Backplane: backplane})
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

	rs.stop()
	// Local delivery goes on; nothing crashes; errors are counted.
	for i := 0; i < 5; i++ {
		srvs[0].To("r").Emit(ctx, "during", i)
		a.expect(fmt.Sprintf(`"during",%d`, i))
		time.Sleep(200 * time.Millisecond)
	}
	waitFor(t, func() bool {
		errs := 0.0
		for _, op := range []string{"publish", "subscribe", "request"} {
			errs += testutil.ToFloat64(srvs[0].metrics.backplaneErrors.WithLabelValues(op))
		}
		return errs > 0
	})
	if g := runtime.NumGoroutine(); g > goroutines+20 {
		t.Fatalf("goroutines grew from %d to %d during the outage", goroutines, g)
	}

	rs.start()
	back := time.Now()
	// Cross-node delivery resumes: emit until b hears it.
	got := make(chan time.Duration, 1)
	go func() {
		b.expect(`"after"`)
		got <- time.Since(back)
	}()
	deadline := time.After(safetyNet)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case d := <-got:
			t.Logf("cross-node delivery resumed %v after Redis came back", d)
			return
		case <-tick.C:
			srvs[0].To("r").Emit(ctx, "after")
		case <-deadline:
			t.Fatalf("cross-node delivery did not resume within %v of Redis returning", safetyNet)
		}
	}
}

// With the streams adapter a client that drops from one node and comes back
// to another within the window gets what it missed, once, in order.
func TestRedisStreamsRecoveryAcrossNodes(t *testing.T) {
	rs := startRedis(t)
	srvs, addrs := cluster(t, rs, 2, Config{Backplane: "redis-streams", RecoveryWindow: time.Minute})
	ctx := context.Background()
	a := dialRaw(t, addrs[0], 0)
	ans := a.connect("/")
	sid := sidOf(ans)
	pid := regexp.MustCompile(`"pid":"([^"]+)"`).FindStringSubmatch(ans)[1]
	a.join("r")
	waitFor(t, func() bool { return srvs[1].Of("/").Adapter().ServerCount(ctx) == 2 })
	srvs[1].To("r").Emit(ctx, "m", 0)
	got := a.expect(`^42\["m",0,"`)
	offset := regexp.MustCompile(`"([0-9]+-[0-9]+)"\]$`).FindStringSubmatch(got)[1]
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
		b.next(fmt.Sprintf(`^42\["m",%d,"[0-9]+-[0-9]+"\]$`, i))
	}
	srvs[1].To("r").Emit(ctx, "m", 6)
	b.next(`^42\["m",6,`)
}

// startRedisCluster runs a Redis Cluster of three masters (no replicas) and
// returns its go-redis cluster URL.
func startRedisCluster(t *testing.T) string {
	t.Helper()
	var ports []int
	for p := 21000 + int(time.Now().UnixNano()%2000)*3; len(ports) < 3 && p < 30000; p++ {
		if portFree(p) && portFree(p+10000) {
			ports = append(ports, p)
		}
	}
	dir := t.TempDir()
	var nodes []string
	for i, p := range ports {
		cmd := exec.Command("redis-server", "--port", fmt.Sprint(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("%s/nodes-%d.conf", dir, i), "--dir", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", p)})
		waitFor(t, func() bool { return c.Ping(context.Background()).Err() == nil })
		c.Close()
		nodes = append(nodes, fmt.Sprintf("127.0.0.1:%d", p))
	}
	out, err := exec.Command("redis-cli", append([]string{"--cluster", "create"}, append(nodes, "--cluster-yes")...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: nodes})
	defer cc.Close()
	waitFor(t, func() bool {
		info, err := cc.ClusterInfo(context.Background()).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	return fmt.Sprintf("redis://%s?addr=%s&addr=%s", nodes[0], nodes[1], nodes[2])
}

func portFree(p int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func TestRedisShardedOnCluster(t *testing.T) {
	crossNode(t, startRedisCluster(t), "redis-sharded")
}

// The sharded adapter subscribes to a room's channel only on the nodes that
// have members in it, and drops the subscription when the room empties.
func TestRedisShardedDynamicSubscriptions(t *testing.T) {
	rs := startRedis(t)
	_, addrs := cluster(t, rs, 3, Config{Backplane: "redis-sharded"})
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", rs.port)})
	defer c.Close()
	subs := func(room string) int64 {
		ch := "socket.io#/#" + room + "#"
		return c.PubSubShardNumSub(context.Background(), ch).Val()[ch]
	}
	a := dialRaw(t, addrs[0], 0)
	a.connect("/")
	a.join("only-here")
	b := dialRaw(t, addrs[1], 0)
	b.connect("/")
	b.join("shared")
	a.join("shared")
	waitFor(t, func() bool { return subs("only-here") == 1 && subs("shared") == 2 })
	a.write(`429["leave","only-here"]`)
	a.expect(`^439\[`)
	waitFor(t, func() bool { return subs("only-here") == 0 })
}
