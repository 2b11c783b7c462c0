package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
)

// WorkerArg is the hidden first argument that runs roomcast-bench as a
// worker process (ServeWorker on stdin/stdout).
const WorkerArg = "__worker"

// progressEvery is how often a worker process reports its counters.
const progressEvery = 100 * time.Millisecond

// worker runs one pool, in this process or in a child process.
type worker interface {
	connect(ctx context.Context) (ConnectReply, error)
	join(ctx context.Context, timeout time.Duration) (JoinReply, error)
	echo(ctx context.Context, req EchoRequest) (EchoReply, error)
	report(ctx context.Context) (ReportReply, error)
	resume(ctx context.Context, timeout time.Duration) (ResumeReply, error)
	// close closes the clients and ends the worker; safe to call twice.
	close(ctx context.Context) error
	progress() Progress
	pid() int
}

// localWorker runs the pool in this process.
type localWorker struct{ p *pool }

func newLocalWorker(spec PoolSpec) *localWorker { return &localWorker{p: newPool(spec)} }

func (w *localWorker) connect(ctx context.Context) (ConnectReply, error) { return w.p.connect(ctx) }
func (w *localWorker) join(ctx context.Context, timeout time.Duration) (JoinReply, error) {
	return w.p.join(ctx, timeout), nil
}
func (w *localWorker) echo(ctx context.Context, req EchoRequest) (EchoReply, error) {
	return w.p.echo(ctx, req), nil
}
func (w *localWorker) report(context.Context) (ReportReply, error) { return w.p.report(), nil }
func (w *localWorker) resume(ctx context.Context, timeout time.Duration) (ResumeReply, error) {
	return w.p.resume(ctx, timeout), nil
}
func (w *localWorker) close(ctx context.Context) error {
	w.p.close(ctx, closeWait)
	return nil
}
func (w *localWorker) progress() Progress { return w.p.progress() }
func (w *localWorker) pid() int           { return os.Getpid() }

// closeWait bounds how long closing waits for the readers to end.
const closeWait = 10 * time.Second

// request is one line from the coordinator to a worker process.
type request struct {
	Op      string        `json:"op"`
	Spec    *PoolSpec     `json:"spec,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
	Echo    *EchoRequest  `json:"echo,omitempty"`
}

// message is one line from a worker process: progress, or the reply to the
// current request.
type message struct {
	Progress *Progress       `json:"progress,omitempty"`
	Op       string          `json:"op,omitempty"`
	Raw      json.RawMessage `json:"reply,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// ServeWorker is the worker process: it reads requests (JSON lines) from in,
// runs them one at a time on its pool and writes progress and replies (JSON
// lines) to out. It returns when in ends (the coordinator closed the pipe or
// died) or after the "close" request, closing every client first.
func ServeWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	var wmu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(m message) error {
		wmu.Lock()
		defer wmu.Unlock()
		return enc.Encode(m)
	}
	var pl atomic.Pointer[pool]
	stop := make(chan struct{})
	var tick sync.WaitGroup
	tick.Add(1)
	go func() {
		defer tick.Done()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if p := pl.Load(); p != nil {
					pr := p.progress()
					_ = send(message{Progress: &pr})
				}
			}
		}
	}()
	defer func() {
		close(stop)
		tick.Wait()
		if p := pl.Load(); p != nil {
			p.close(context.Background(), closeWait)
		}
	}()

	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		var req request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			return fmt.Errorf("worker: bad request: %w", err)
		}
		var reply any
		var err error
		p := pl.Load()
		if p == nil && req.Op != "connect" {
			err = errors.New("worker: connect first")
		} else {
			switch req.Op {
			case "connect":
				if req.Spec == nil || p != nil {
					err = errors.New("worker: connect needs a spec, once")
					break
				}
				p = newPool(*req.Spec)
				pl.Store(p)
				reply, err = p.connect(ctx)
			case "join":
				reply = p.join(ctx, req.Timeout)
			case "echo":
				if req.Echo == nil {
					err = errors.New("worker: echo needs parameters")
					break
				}
				reply = p.echo(ctx, *req.Echo)
			case "report":
				reply = p.report()
			case "resume":
				reply = p.resume(ctx, req.Timeout)
			case "close":
				p.close(ctx, closeWait)
				pl.Store(nil)
				return send(message{Op: req.Op, Raw: json.RawMessage(`{}`)})
			default:
				err = fmt.Errorf("worker: unknown op %q", req.Op)
			}
		}
		m := message{Op: req.Op}
		if err != nil {
			m.Error = err.Error()
		} else if m.Raw, err = json.Marshal(reply); err != nil {
			m.Error = err.Error()
		}
		if err := send(m); err != nil {
			return err
		}
	}
	return sc.Err()
}

// remoteWorker is a child process running ServeWorker.
type remoteWorker struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	spec    PoolSpec
	prog    atomic.Pointer[Progress]
	replies chan message
	exited  chan struct{}
	waitErr error
	once    sync.Once
}

// startRemoteWorker re-executes this program as a worker process.
func startRemoteWorker(spec PoolSpec) (*remoteWorker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, WorkerArg)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	w := &remoteWorker{cmd: cmd, stdin: stdin, spec: spec, replies: make(chan message, 1), exited: make(chan struct{})}
	w.prog.Store(&Progress{})
	go w.readLoop(stdout)
	return w, nil
}

func (w *remoteWorker) readLoop(stdout io.Reader) {
	defer func() {
		w.waitErr = w.cmd.Wait()
		close(w.exited)
	}()
	r := bufio.NewReaderSize(stdout, 64*1024)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var m message
			if json.Unmarshal(line, &m) == nil {
				if m.Progress != nil {
					w.prog.Store(m.Progress)
				} else {
					w.replies <- m
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// call sends one request and waits for its reply (or the end of ctx or of
// the process).
func (w *remoteWorker) call(ctx context.Context, req request, reply any) error {
	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := w.stdin.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("worker %d: %w", w.pid(), err)
	}
	select {
	case m := <-w.replies:
		if m.Error != "" {
			return fmt.Errorf("worker %d: %s", w.pid(), m.Error)
		}
		if reply == nil {
			return nil
		}
		return json.Unmarshal(m.Raw, reply)
	case <-w.exited:
		return fmt.Errorf("worker %d exited during %s: %v", w.pid(), req.Op, w.waitErr)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *remoteWorker) connect(ctx context.Context) (r ConnectReply, err error) {
	return r, w.call(ctx, request{Op: "connect", Spec: &w.spec}, &r)
}
func (w *remoteWorker) join(ctx context.Context, timeout time.Duration) (r JoinReply, err error) {
	return r, w.call(ctx, request{Op: "join", Timeout: timeout}, &r)
}
func (w *remoteWorker) echo(ctx context.Context, req EchoRequest) (r EchoReply, err error) {
	return r, w.call(ctx, request{Op: "echo", Echo: &req}, &r)
}
func (w *remoteWorker) report(ctx context.Context) (r ReportReply, err error) {
	return r, w.call(ctx, request{Op: "report"}, &r)
}
func (w *remoteWorker) resume(ctx context.Context, timeout time.Duration) (r ResumeReply, err error) {
	return r, w.call(ctx, request{Op: "resume", Timeout: timeout}, &r)
}
func (w *remoteWorker) progress() Progress { return *w.prog.Load() }
func (w *remoteWorker) pid() int           { return w.cmd.Process.Pid }

// close asks the worker to close its clients, then closes its stdin and
// waits for it to exit (killing it after closeWait+5s).
func (w *remoteWorker) close(ctx context.Context) error {
	var err error
	w.once.Do(func() {
		select {
		case <-w.exited:
		default:
			cctx, cancel := context.WithTimeout(ctx, closeWait+2*time.Second)
			err = w.call(cctx, request{Op: "close"}, nil)
			cancel()
		}
		_ = w.stdin.Close()
		t := time.NewTimer(closeWait + 5*time.Second)
		defer t.Stop()
		select {
		case <-w.exited:
		case <-t.C:
			_ = w.cmd.Process.Kill()
			<-w.exited
		}
	})
	return err
}
