package server

import (
	"runtime"
	"sync"
)

// writers is the server's pool of WebSocket writers. A connection whose
// queue gets data is handed to a worker, which writes what the socket takes
// without blocking; only a connection whose socket is full gets a goroutine
// of its own. So a broadcast to 10,000 idle sockets starts no goroutine per
// recipient, and a slow client never holds a worker.
type writers struct {
	jobs chan writeJob
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

type writeJob struct {
	c *wsConn
	s *session
}

func newWriters() *writers {
	w := &writers{jobs: make(chan writeJob, 1<<16), done: make(chan struct{})}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	w.wg.Add(n)
	for range n {
		go w.work()
	}
	return w
}

func (w *writers) work() {
	defer w.wg.Done()
	var sc scratch
	for {
		select {
		case j := <-w.jobs:
			j.c.drain(j.s, &sc, true)
		case <-w.done:
			return
		}
	}
}

// submit hands a connection with queued data to a worker; when the pool is
// stopped or its queue is full, the connection gets its own goroutine.
func (w *writers) submit(c *wsConn, s *session) {
	select {
	case <-w.done:
		go c.writeLoop(s)
		return
	default:
	}
	select {
	case w.jobs <- writeJob{c, s}:
	default:
		go c.writeLoop(s)
	}
}

// stop ends the workers; connections still queued get goroutines of their
// own.
func (w *writers) stop() {
	w.once.Do(func() {
		close(w.done)
		w.wg.Wait()
		for {
			select {
			case j := <-w.jobs:
				go j.c.writeLoop(j.s)
			default:
				return
			}
		}
	})
}
