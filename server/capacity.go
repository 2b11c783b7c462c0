package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Capacity: a bound on open connections (Config.MaxConnections) and the
// Go runtime's soft memory limit (SetMemoryLimit), both exported as gauges
// so alerts can speak of "80 % of the maximum".

// Labels of roomcast_handshakes_rejected_total.
const (
	rejectRateLimit      = "rate limit"
	rejectMaxConnections = "max connections"
)

// codeAtCapacity is the Engine.IO error code of a handshake refused for
// capacity: 4 is the code Engine.IO gives a handshake the server refused
// (Node's allowRequest), with the reason in the message.
const codeAtCapacity = 4

// capacityMessage is the message of that refusal.
const capacityMessage = "server at capacity (max connections reached), retry later or elsewhere"

// admit runs before the connection layer opens a new connection (the
// clients.Config.AllowRequest hook): a server at MaxConnections, or over
// the connection rate limit, refuses it with HTTP 503, Retry-After and an
// Engine.IO error body, and counts the refusal by reason. Requests of open
// connections never come here. The capacity check is not a reservation:
// handshakes in flight at the same moment may overshoot the bound by their
// number.
func (srv *Server) admit(w http.ResponseWriter, _ *http.Request) bool {
	switch {
	case srv.cfg.MaxConnections > 0 && srv.engine.Len() >= srv.cfg.MaxConnections:
		srv.refuse(w, rejectMaxConnections, capacityMessage)
		return false
	case srv.limiter != nil && !srv.limiter.Allow():
		srv.refuse(w, rejectRateLimit, "too many new connections, retry later")
		return false
	}
	return true
}

// refuse answers a refused handshake (CORS headers are already set).
func (srv *Server) refuse(w http.ResponseWriter, reason, message string) {
	srv.metrics.rejected.WithLabelValues(reason).Inc()
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	b, _ := json.Marshal(map[string]any{"code": codeAtCapacity, "message": message})
	w.Write(b)
}

// Memory limit sources, as SetMemoryLimit reports them.
const (
	MemoryLimitFlag   = "flag"
	MemoryLimitEnv    = "GOMEMLIMIT"
	MemoryLimitCgroup = "cgroup"
	MemoryLimitNone   = "none"
)

// cgroupFiles are where a container's memory limit is read: cgroup v2,
// then v1.
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// CgroupMemoryFraction is the share of a cgroup's hard memory limit that
// becomes the Go runtime's soft limit when none is given: the rest is
// headroom for what the runtime does not count (socket buffers in the
// kernel, which the cgroup charges, and C memory).
const CgroupMemoryFraction = 0.9

// cgroupMemoryLimit returns the memory limit of the process's cgroup, 0
// when there is none (or it is "max", or v1's "unlimited" huge number).
func cgroupMemoryLimit(files []string) int64 {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0
		}
		return n
	}
	return 0
}

// ParseBytes reads a size: a number of bytes with an optional suffix
// B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (of 1000).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0) || math.IsInf(f, 0) || f*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("%w: %q is not a size (e.g. 512MiB, 2GiB, 1000000)", ErrBadConfig, s)
	}
	return int64(f * mult), nil
}

// SetMemoryLimit sets the Go runtime's soft memory limit (process-wide,
// runtime/debug.SetMemoryLimit) from spec and the cgroup, and returns the
// limit in force and where it came from:
//
//   - spec "off": no limit (and GOMEMLIMIT is overridden).
//   - spec a size ("512MiB"): that size, capped at the cgroup's limit when
//     the process has one (a soft limit above the hard one only delays the
//     OOM killer); the cap is reported as source "cgroup".
//   - spec "" or "auto": GOMEMLIMIT when set (the runtime read it at
//     start), else CgroupMemoryFraction of the cgroup's limit, else none.
func SetMemoryLimit(spec string) (int64, string, error) {
	return setMemoryLimit(spec, os.Getenv("GOMEMLIMIT"), cgroupMemoryLimit(cgroupFiles))
}

func setMemoryLimit(spec, env string, cgroup int64) (int64, string, error) {
	switch spec {
	case "off":
		debug.SetMemoryLimit(math.MaxInt64)
		return 0, MemoryLimitNone, nil
	case "", "auto":
		if env != "" && env != "off" {
			return memoryLimit(), MemoryLimitEnv, nil
		}
		if cgroup > 0 {
			l := int64(float64(cgroup) * CgroupMemoryFraction)
			debug.SetMemoryLimit(l)
			return l, MemoryLimitCgroup, nil
		}
		return memoryLimit(), MemoryLimitNone, nil
	}
	l, err := ParseBytes(spec)
	if err != nil {
		return 0, "", fmt.Errorf("--memory-limit: %w", err)
	}
	if l == 0 {
		return 0, "", fmt.Errorf("%w: --memory-limit 0: give a size, auto or off", ErrBadConfig)
	}
	if cgroup > 0 && l > cgroup {
		debug.SetMemoryLimit(cgroup)
		return cgroup, MemoryLimitCgroup, nil
	}
	debug.SetMemoryLimit(l)
	return l, MemoryLimitFlag, nil
}

// capacity exports the configured bounds.
func (m *metrics) capacity(cfg Config) {
	m.maxConns.Set(float64(cfg.MaxConnections))
	m.backplaneCap.Set(cfg.BackplaneCapacity)
}
