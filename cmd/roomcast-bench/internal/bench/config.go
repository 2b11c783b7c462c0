package bench

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Scenarios.
const (
	ScenarioIdle      = "idle"
	ScenarioFanout    = "fanout"
	ScenarioEcho      = "echo"
	ScenarioCrossNode = "cross-node"
	ScenarioSlow      = "slow"
	// ScenarioThroughput steps the publish rate up until delivery to a
	// room on the other node falls behind (throughput.go).
	ScenarioThroughput = "throughput"
)

// Scenarios lists every scenario name.
var Scenarios = []string{ScenarioIdle, ScenarioFanout, ScenarioEcho, ScenarioCrossNode, ScenarioSlow, ScenarioThroughput}

// Defaults.
const (
	DefaultClients      = 1000
	DefaultSlowClients  = 200
	DefaultRate         = 2000 // connections per second
	DefaultConcurrency  = 200  // handshakes in flight per process
	DefaultPerProcess   = 19000
	DefaultMessages     = 20
	DefaultSlowMessages = 1500
	DefaultInterval     = 250 * time.Millisecond
	DefaultSlowInterval = 5 * time.Millisecond
	DefaultPayload      = 100 // bytes of the broadcast / echo payload
	// DefaultSlowPayload makes a stalled reader's backlog (6 MB) outgrow
	// the kernel's socket buffers (up to 4 MiB on loopback) and a 1 MiB
	// send queue, so that the server has to act.
	DefaultSlowPayload = 4096
	DefaultSlowShare   = 0.1
	DefaultSlowRcvBuf  = 4096
	DefaultDuration    = 10 * time.Second
	DefaultWarmup      = 2 * time.Second
	DefaultIdleHold    = 5 * time.Second
	DefaultDrain       = 10 * time.Second
	DefaultRuns        = 1
	DefaultPause       = 3 * time.Second
	DefaultPortMin     = 20000
	DefaultPortMax     = 32000
	DefaultRoomcastCmd = "bin/roomcast serve --addr {addr}"
	DefaultNodeCmd     = "node test/reference/server.mjs --addr {addr}"
	DefaultRoom        = "bench"
	DefaultEvent       = "tick"
	DefaultRedisURL    = "redis://127.0.0.1:6379"
)

// Config is one invocation of the bench. Zero values take the defaults
// above (see Normalize).
type Config struct {
	Scenario string `json:"scenario"`
	// URLs are running servers; cross-node publishes on URLs[0] and
	// receives on URLs[1].
	URLs []string `json:"urls,omitempty"`
	// Spawn are server command lines to start; {addr} and {port} are
	// filled with a free 127.0.0.1 port in [PortMin, PortMax]. Cross-node
	// with one command starts it twice. Idle takes any number of them (or
	// of URLs): the clients are spread evenly over the servers, and the
	// memory is the sum over all spawned servers (more connections than
	// one process's 20,000 open files allow).
	Spawn []string `json:"spawn,omitempty"`
	// ServerPID is the pid whose memory and CPU are read with URLs.
	ServerPID int `json:"server_pid,omitempty"`
	// Compare runs the scenario against RoomcastCmd and NodeCmd in turn.
	Compare     bool   `json:"compare"`
	RoomcastCmd string `json:"roomcast_cmd,omitempty"`
	NodeCmd     string `json:"node_cmd,omitempty"`
	Runs        int    `json:"runs"`
	// Pause between runs, so that the previous server's sockets settle.
	Pause time.Duration `json:"pause"`

	Clients     int     `json:"clients"`
	Rate        float64 `json:"rate"`
	Concurrency int     `json:"concurrency"`
	// PerProcess is the most clients one process holds (20,000 open files
	// per process on the bench machine); more clients start worker
	// processes. Workers > 0 forces that many worker processes.
	PerProcess int `json:"per_process"`
	Workers    int `json:"workers"`

	Path      string `json:"path"`
	Namespace string `json:"namespace"`
	Token     string `json:"-"`
	APIKey    string `json:"-"`
	Room      string `json:"room"`
	Event     string `json:"event"`

	Messages   int           `json:"messages"`
	Interval   time.Duration `json:"interval"`
	Payload    int           `json:"payload"`
	PublishVia string        `json:"publish_via"`
	Drain      time.Duration `json:"drain"`
	SlowShare  float64       `json:"slow_share"`
	SlowRcvBuf int           `json:"slow_rcvbuf"`

	Duration time.Duration `json:"duration"`
	Warmup   time.Duration `json:"warmup"`
	IdleHold time.Duration `json:"idle_hold"`

	// Adapter is added to the server commands that name none (see
	// withAdapter) and fills {adapter}; RedisURL fills {redis-url};
	// PrivateRedis starts a redis-server of its own per run instead.
	Adapter      string `json:"adapter,omitempty"`
	RedisURL     string `json:"redis_url,omitempty"`
	PrivateRedis bool   `json:"private_redis,omitempty"`
	// Throughput steps (see throughput.go): rates in msg/s.
	StartRate    float64       `json:"start_rate,omitempty"`
	MaxRate      float64       `json:"max_rate,omitempty"`
	RateFactor   float64       `json:"rate_factor,omitempty"`
	StepDuration time.Duration `json:"step_duration,omitempty"`
	StepDrain    time.Duration `json:"step_drain,omitempty"`
	Bisect       int           `json:"bisect,omitempty"`
	StepRetries  int           `json:"step_retries,omitempty"`
	P99Limit     time.Duration `json:"p99_limit,omitempty"`

	PortMin int    `json:"port_min"`
	PortMax int    `json:"port_max"`
	LogDir  string `json:"log_dir,omitempty"`
	JSON    string `json:"-"`
	Quiet   bool   `json:"-"`
}

// Normalize fills defaults and checks the combination of settings.
func (c *Config) Normalize() error {
	if c.Scenario == "" {
		c.Scenario = ScenarioFanout
	}
	known := false
	for _, s := range Scenarios {
		known = known || s == c.Scenario
	}
	if !known {
		return fmt.Errorf("unknown scenario %q (want one of %s)", c.Scenario, strings.Join(Scenarios, ", "))
	}
	slow := c.Scenario == ScenarioSlow
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Concurrency, DefaultConcurrency)
	def(&c.PerProcess, DefaultPerProcess)
	def(&c.Runs, DefaultRuns)
	def(&c.SlowRcvBuf, DefaultSlowRcvBuf)
	def(&c.PortMin, DefaultPortMin)
	def(&c.PortMax, DefaultPortMax)
	if slow {
		def(&c.Clients, DefaultSlowClients)
		def(&c.Messages, DefaultSlowMessages)
		def(&c.Payload, DefaultSlowPayload)
		defDur(&c.Interval, DefaultSlowInterval)
	} else {
		def(&c.Clients, DefaultClients)
		def(&c.Messages, DefaultMessages)
		def(&c.Payload, DefaultPayload)
		defDur(&c.Interval, DefaultInterval)
	}
	defDur(&c.Pause, DefaultPause)
	defDur(&c.Drain, DefaultDrain)
	defDur(&c.Duration, DefaultDuration)
	defDur(&c.Warmup, DefaultWarmup)
	defDur(&c.IdleHold, DefaultIdleHold)
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.SlowShare == 0 && slow {
		c.SlowShare = DefaultSlowShare
	}
	if c.Path == "" {
		c.Path = "/socket.io/"
	}
	if c.Namespace == "" {
		c.Namespace = "/"
	}
	if c.Room == "" {
		c.Room = DefaultRoom
	}
	if c.Event == "" {
		c.Event = DefaultEvent
	}
	if c.PublishVia == "" {
		c.PublishVia = "api"
		if c.Scenario == ScenarioThroughput {
			c.PublishVia = "client"
		}
	}
	if c.RedisURL == "" {
		c.RedisURL = DefaultRedisURL
	}
	if c.Scenario == ScenarioThroughput {
		if err := c.normalizeThroughput(); err != nil {
			return err
		}
	}
	if c.Compare {
		if c.RoomcastCmd == "" {
			c.RoomcastCmd = DefaultRoomcastCmd
		}
		if c.NodeCmd == "" {
			c.NodeCmd = DefaultNodeCmd
		}
		c.RoomcastCmd = withAdapter(c.RoomcastCmd, c.Adapter)
		c.NodeCmd = withAdapter(c.NodeCmd, c.Adapter)
	}
	for i := range c.Spawn {
		c.Spawn[i] = withAdapter(c.Spawn[i], c.Adapter)
	}

	switch {
	case c.Clients < 1:
		return errors.New("--clients must be at least 1")
	case c.Messages < 1:
		return errors.New("--messages must be at least 1")
	case c.Interval < 0, c.Duration < 0, c.Warmup < 0, c.IdleHold < 0, c.Drain < 0:
		return errors.New("durations must not be negative")
	case c.Rate < 0:
		return errors.New("--rate must not be negative (0 = default)")
	case c.PublishVia != "api" && c.PublishVia != "client":
		return fmt.Errorf("--publish-via %q: want api or client", c.PublishVia)
	case c.SlowShare < 0 || c.SlowShare >= 1:
		return errors.New("--slow-share must be in [0, 1)")
	case c.PortMin < 1024 || c.PortMax > 65535 || c.PortMin > c.PortMax:
		return errors.New("bad --ports range")
	case c.PerProcess < 1 || c.Workers < 0:
		return errors.New("--per-process must be at least 1 and --workers not negative")
	case c.Runs < 1:
		return errors.New("--runs must be at least 1")
	}
	targets := 0
	for _, on := range []bool{len(c.URLs) > 0, len(c.Spawn) > 0, c.Compare} {
		if on {
			targets++
		}
	}
	if targets != 1 {
		return errors.New("give exactly one of --url, --spawn or --compare")
	}
	nodes := c.nodes()
	if len(c.URLs) > 0 && len(c.URLs) != nodes {
		return fmt.Errorf("scenario %s needs %d --url", c.Scenario, nodes)
	}
	if len(c.Spawn) > 0 && len(c.Spawn) != 1 && len(c.Spawn) != nodes {
		return fmt.Errorf("scenario %s takes 1 or %d --spawn", c.Scenario, nodes)
	}
	if c.ServerPID != 0 && len(c.URLs) == 0 {
		return errors.New("--server-pid goes with --url")
	}
	return nil
}

// nodes is how many servers the scenario talks to.
func (c *Config) nodes() int {
	switch {
	case c.Scenario == ScenarioCrossNode || c.Scenario == ScenarioThroughput:
		return 2
	case c.Scenario == ScenarioIdle:
		return max(1, len(c.Spawn), len(c.URLs))
	}
	return 1
}

// slowClients is how many of the clients stall.
func (c *Config) slowClients() int {
	if c.Scenario != ScenarioSlow {
		return 0
	}
	return int(float64(c.Clients)*c.SlowShare + 0.5)
}

// normalizeThroughput fills the step defaults and sizes the sequence space
// (Messages) for the most messages the steps can publish.
func (c *Config) normalizeThroughput() error {
	if c.StartRate == 0 {
		c.StartRate = DefaultStartRate
	}
	if c.MaxRate == 0 {
		c.MaxRate = DefaultMaxRate
	}
	if c.RateFactor == 0 {
		c.RateFactor = DefaultRateFactor
	}
	if c.StepDuration == 0 {
		c.StepDuration = DefaultStepDuration
	}
	if c.StepDrain == 0 {
		c.StepDrain = DefaultStepDrain
	}
	if c.Bisect == 0 {
		c.Bisect = DefaultBisect // negative: no bisection
	}
	if c.P99Limit == 0 {
		c.P99Limit = DefaultP99Limit
	}
	if c.StepRetries == 0 {
		c.StepRetries = DefaultStepRetries // negative: none
	}
	switch {
	case c.StartRate < 0 || c.MaxRate < c.StartRate:
		return errors.New("--start-rate must be positive and at most --max-rate")
	case c.RateFactor <= 1:
		return errors.New("--rate-factor must be above 1")
	case c.StepDuration < 0 || c.StepDrain < 0 || c.P99Limit < 0:
		return errors.New("durations must not be negative")
	}
	n := newStepPlan(c.StartRate, c.MaxRate, c.RateFactor, c.Bisect).budget(c.StepDuration) * (1 + max(c.StepRetries, 0))
	if n > maxThroughputMessages {
		return fmt.Errorf("the steps could publish %d messages, more than %d: lower --max-rate or --step", n, maxThroughputMessages)
	}
	c.Messages = n
	return nil
}
