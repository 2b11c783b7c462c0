package adapter

import "time"

// Stats observes a backplane's traffic, for metrics. Every field is
// optional; the funcs are called on the backplane's own goroutines and
// must not block.
type Stats struct {
	// Published is called after messages went out to the backplane: n
	// messages in took (one call per publish or pipelined batch); err is
	// the publish error (nil when they went out).
	Published func(n int, took time.Duration, err error)
	// Received is called for each message read from the backplane, before
	// it is decoded (undecodable ones count too).
	Received func()
}

// published reports a publish that started at start.
func (s *Stats) published(n int, start time.Time, err error) {
	if s != nil && s.Published != nil {
		s.Published(n, time.Since(start), err)
	}
}

// received reports one message read from the backplane.
func (s *Stats) received() {
	if s != nil && s.Received != nil {
		s.Received()
	}
}
