// Command roomcast-bench is the load generator of roomcast: it speaks
// Engine.IO 4 / Socket.IO 5 over WebSocket itself and measures idle memory,
// room fan-out, echo round trips, cross-node delivery and the effect of
// stalled readers, against a running server, a spawned one, or roomcast
// and the Node reference side by side (--compare).
//
//	roomcast-bench --scenario fanout --clients 10000 --compare --runs 3 --json fanout.json
//
// cmd/roomcast-bench/plot draws the charts of BENCHMARKS.md from such JSON
// files.
//
// See BENCHMARKS.md for the measurements and the exact commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/bench"
)

// listFlag is a flag that may be repeated or hold comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// spawnFlag may be repeated; commas stay part of the command.
type spawnFlag []string

func (l *spawnFlag) String() string     { return strings.Join(*l, " | ") }
func (l *spawnFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == bench.WorkerArg {
		if err := bench.ServeWorker(ctx, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "roomcast-bench worker:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "roomcast-bench:", err)
		os.Exit(2)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "roomcast-bench:", err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "roomcast-bench:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	if _, err := bench.Run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "roomcast-bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// cpuProfile is the --cpuprofile flag: the bench process's own CPU profile.
var cpuProfile = new(string)

func parseFlags(args []string) (bench.Config, error) {
	var c bench.Config
	var urls listFlag
	var spawn spawnFlag
	fs := flag.NewFlagSet("roomcast-bench", flag.ContinueOnError)
	fs.StringVar(&c.Scenario, "scenario", bench.ScenarioFanout, "idle, fanout, echo, cross-node, slow or throughput")
	fs.Var(&urls, "url", "running server(s), http://127.0.0.1:3000; cross-node takes two (publish node, receive node)")
	fs.Var(&spawn, "spawn", "start this server command (through sh); {addr} and {port} get a free 127.0.0.1 port; repeat for cross-node")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "pid of the --url server (cross-node: the receiving node), for memory and CPU from /proc")
	fs.BoolVar(&c.Compare, "compare", false, "run against roomcast and the Node reference alternately")
	fs.StringVar(&c.RoomcastCmd, "roomcast-cmd", bench.DefaultRoomcastCmd, "roomcast command line in --compare")
	fs.StringVar(&c.NodeCmd, "node-cmd", bench.DefaultNodeCmd, "Node reference command line in --compare")
	fs.IntVar(&c.Runs, "runs", bench.DefaultRuns, "runs per target (medians over runs)")
	fs.DurationVar(&c.Pause, "pause", bench.DefaultPause, "pause between runs")
	fs.IntVar(&c.Clients, "clients", 0, fmt.Sprintf("number of clients (default %d; slow: %d)", bench.DefaultClients, bench.DefaultSlowClients))
	fs.Float64Var(&c.Rate, "rate", bench.DefaultRate, "new connections per second (all processes together)")
	fs.IntVar(&c.Concurrency, "concurrency", bench.DefaultConcurrency, "handshakes in flight per process")
	fs.IntVar(&c.PerProcess, "per-process", bench.DefaultPerProcess, "most clients per process; more start worker processes")
	fs.IntVar(&c.Workers, "workers", 0, "force this many worker processes (0 = by --per-process)")
	fs.StringVar(&c.Path, "path", "/socket.io/", "Engine.IO path")
	fs.StringVar(&c.Namespace, "namespace", "/", "namespace to connect to")
	fs.StringVar(&c.Token, "token", "", "auth.token sent with CONNECT (JWT)")
	fs.StringVar(&c.APIKey, "api-key", "", "bearer key for POST /api/v1/emit")
	fs.StringVar(&c.Room, "room", bench.DefaultRoom, "room the receivers join")
	fs.StringVar(&c.Event, "event", bench.DefaultEvent, "event name of the broadcasts")
	fs.IntVar(&c.Messages, "messages", 0, fmt.Sprintf("broadcasts to publish (default %d; slow: %d)", bench.DefaultMessages, bench.DefaultSlowMessages))
	fs.DurationVar(&c.Interval, "interval", 0, fmt.Sprintf("time between broadcasts (default %v; slow: %v)", bench.DefaultInterval, bench.DefaultSlowInterval))
	fs.IntVar(&c.Payload, "payload", 0, fmt.Sprintf("payload size, bytes (default %d; slow: %d)", bench.DefaultPayload, bench.DefaultSlowPayload))
	fs.StringVar(&c.PublishVia, "publish-via", "", "api (POST /api/v1/emit) or client (a publish event); default api, throughput: client")
	fs.StringVar(&c.Adapter, "adapter", "", "add --adapter NAME (with --redis-url {redis-url} --redis-prefix {prefix} --nats-prefix {prefix} --recovery-window 0 --log-level warn) to server commands that name no adapter")
	fs.StringVar(&c.RedisURL, "redis-url", bench.DefaultRedisURL, "Redis for {redis-url} and the Redis CPU reading")
	fs.BoolVar(&c.PrivateRedis, "private-redis", false, "start a redis-server of its own per run (a free port) for {redis-url}")
	fs.Float64Var(&c.StartRate, "start-rate", bench.DefaultStartRate, "throughput: msg/s of the first step")
	fs.Float64Var(&c.MaxRate, "max-rate", bench.DefaultMaxRate, "throughput: highest msg/s tried")
	fs.Float64Var(&c.RateFactor, "rate-factor", bench.DefaultRateFactor, "throughput: each step's rate over the previous one's")
	fs.DurationVar(&c.StepDuration, "step", bench.DefaultStepDuration, "throughput: publishing time per step")
	fs.DurationVar(&c.StepDrain, "step-drain", bench.DefaultStepDrain, "throughput: how long a step waits for its last deliveries")
	fs.IntVar(&c.Bisect, "bisect", bench.DefaultBisect, "throughput: steps between the last pass and the first fail (negative: none)")
	fs.IntVar(&c.StepRetries, "retries", bench.DefaultStepRetries, "throughput: runs of a failed step's rate again before it counts as failed (negative: none)")
	fs.DurationVar(&c.P99Limit, "p99-limit", bench.DefaultP99Limit, "throughput: a step passes with delivery p99 below this")
	fs.DurationVar(&c.Drain, "drain", bench.DefaultDrain, "how long to wait for the last deliveries")
	fs.Float64Var(&c.SlowShare, "slow-share", 0, fmt.Sprintf("share of clients that stop reading in slow (default %v)", bench.DefaultSlowShare))
	fs.IntVar(&c.SlowRcvBuf, "slow-rcvbuf", bench.DefaultSlowRcvBuf, "SO_RCVBUF of the stalled clients, bytes")
	fs.DurationVar(&c.Duration, "duration", bench.DefaultDuration, "echo: measured time")
	fs.DurationVar(&c.Warmup, "warmup", bench.DefaultWarmup, "echo: unmeasured time first")
	fs.DurationVar(&c.IdleHold, "idle-hold", bench.DefaultIdleHold, "idle: how long clients idle before memory is read")
	ports := fs.String("ports", fmt.Sprintf("%d-%d", bench.DefaultPortMin, bench.DefaultPortMax), "port range for spawned servers (keep below 32768)")
	fs.StringVar(&c.LogDir, "log-dir", "", "directory for spawned servers' logs (default: a new temp dir)")
	fs.StringVar(&c.JSON, "json", "", "write the full report as JSON to this file")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress on stderr")
	fs.StringVar(cpuProfile, "cpuprofile", "", "write the bench process's CPU profile to this file")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: roomcast-bench [--scenario S] (--url URL | --spawn CMD | --compare) [flags]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if _, err := fmt.Sscanf(*ports, "%d-%d", &c.PortMin, &c.PortMax); err != nil {
		return c, fmt.Errorf("--ports %q: want LOW-HIGH", *ports)
	}
	c.URLs, c.Spawn = urls, spawn
	return c, c.Normalize()
}
