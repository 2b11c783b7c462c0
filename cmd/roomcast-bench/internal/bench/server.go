package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server start and stop bounds.
const (
	serverReadyTimeout = 30 * time.Second
	serverStopTimeout  = 15 * time.Second
)

// spawned is a server process the bench started.
type spawned struct {
	command string
	cmd     *exec.Cmd
	logPath string
	log     *os.File
	watch   *listenWatcher
	addr    string
	exited  chan struct{}
	waitErr error
}

// pickPort returns a port in [lo, hi] that is free on 127.0.0.1 right now.
// Servers under load stay below the ephemeral range (32768+) so that client
// ports never collide with them.
func pickPort(lo, hi int) (int, error) {
	if lo <= 0 || hi < lo {
		return 0, fmt.Errorf("bad port range %d-%d", lo, hi)
	}
	n := hi - lo + 1
	start := rand.IntN(n)
	for i := range min(n, 500) {
		p := lo + (start+i*7919)%n // 7919 is prime: a scattered walk
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			_ = l.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port in %d-%d", lo, hi)
}

// expandCommand fills {addr} and {port} in a server command line.
func expandCommand(command string, port int) (string, string) {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if !strings.Contains(command, "{addr}") && !strings.Contains(command, "{port}") {
		return command, ""
	}
	c := strings.ReplaceAll(command, "{addr}", addr)
	return strings.ReplaceAll(c, "{port}", strconv.Itoa(port)), addr
}

// shellLine prefixes a simple command with exec so that the shell's pid
// becomes the server's; a compound command is left alone (it should end by
// exec'ing the server itself for memory and CPU readings to be the server's).
func shellLine(line string) string {
	if strings.ContainsAny(line, ";&|\n") || strings.HasPrefix(strings.TrimSpace(line), "exec ") {
		return line
	}
	return "exec " + line
}

// startServer runs command (through sh, see shellLine) with its output in logPath, and waits until it is ready: its
// "listening" log line gave the address, or, when the command named the
// port, that port accepts connections.
func startServer(ctx context.Context, command string, port int, logPath string) (*spawned, error) {
	line, addr := expandCommand(command, port)
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	s := &spawned{command: line, logPath: logPath, log: f, exited: make(chan struct{}), watch: &listenWatcher{w: f, found: make(chan string, 1)}}
	s.cmd = exec.Command("/bin/sh", "-c", shellLine(line))
	s.cmd.Stdout = s.watch
	s.cmd.Stderr = s.watch
	s.cmd.SysProcAttr = serverAttr()
	if err := s.cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %q: %w", line, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(serverReadyTimeout)
	for {
		select {
		case a := <-s.watch.found:
			s.addr = a
			return s, nil
		case <-s.exited:
			_ = f.Close()
			return nil, fmt.Errorf("server %q exited before it was ready (%v); log %s:\n%s", line, s.waitErr, logPath, tail(logPath, 20))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if addr != "" {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				_ = c.Close()
				s.addr = addr
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("server %q not ready after %v; log %s:\n%s", line, serverReadyTimeout, logPath, tail(logPath, 20))
		}
	}
}

func (s *spawned) pid() int { return s.cmd.Process.Pid }

// exitedEarly tells whether the server ended before the bench stopped it.
func (s *spawned) exitedEarly() error {
	select {
	case <-s.exited:
		return fmt.Errorf("server %q exited during the run (%v); log %s:\n%s", s.command, s.waitErr, s.logPath, tail(s.logPath, 10))
	default:
		return nil
	}
}

// url is the server's base URL.
func (s *spawned) url() string { return "http://" + s.addr }

// stop sends SIGTERM to the server's process group, then SIGKILL after
// serverStopTimeout.
func (s *spawned) stop() {
	pgid := -s.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(serverStopTimeout):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-s.exited
	}
	_ = s.log.Close()
}

// listenWatcher passes server output to a file and looks for the README's
// listening line: {"msg":"listening","addr":"host:port",...}.
type listenWatcher struct {
	w     *os.File
	mu    sync.Mutex
	buf   []byte
	done  bool
	found chan string
}

func (l *listenWatcher) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.buf = append(l.buf, p...)
		for {
			i := bytes.IndexByte(l.buf, '\n')
			if i < 0 {
				break
			}
			if a := listeningAddr(l.buf[:i]); a != "" {
				l.done = true
				l.found <- a
				l.buf = nil
				break
			}
			l.buf = l.buf[i+1:]
		}
		if len(l.buf) > 64*1024 {
			l.buf = nil
		}
	}
	return l.w.Write(p)
}

func listeningAddr(line []byte) string {
	if !bytes.Contains(line, []byte(`"listening"`)) {
		return ""
	}
	var v struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal(line, &v) != nil || v.Msg != "listening" {
		return ""
	}
	return v.Addr
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// serverLogPath names the log of one spawned server.
func serverLogPath(dir, target string, run, node int) string {
	return filepath.Join(dir, fmt.Sprintf("%s-run%d-node%d.log", target, run, node))
}
