package server

import (
	"fmt"
	"strings"
	"time"

	"github.com/cactus/go-statsd-client/v5/statsd"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

// StatsD export (Config.StatsDAddr): the signals of /metrics, sent over
// UDP in plain StatsD. Every StatsDInterval the server's counters go out
// as counts (the increase since the last send) and its gauges as gauges;
// send latency and backplane publish latency go out as timings (ms) as
// they happen, the send latency sampled (StatsDSampleRate).
//
// Names: <prefix>.<metric>[.<label value>...], where <metric> is the
// Prometheus name without "roomcast_" and "_total", and label values keep
// [A-Za-z0-9_-] (others become "_"): roomcast.connections_open,
// roomcast.connections_opened, roomcast.handshakes_rejected.max_connections,
// roomcast.backplane_messages.in, roomcast.send_latency (ms). Go's
// goroutines and the process's resident memory go as roomcast.goroutines
// and roomcast.resident_memory_bytes.

// Defaults of the StatsD export.
const (
	DefaultStatsDPrefix     = "roomcast"
	DefaultStatsDInterval   = 10 * time.Second
	DefaultStatsDSampleRate = 0.1
)

// Timing names.
const (
	statsdSendLatency    = "send_latency"
	statsdPublishLatency = "backplane_publish_latency"
)

// statsdRenames maps the non-roomcast families that are sent.
var statsdRenames = map[string]string{
	"go_goroutines":                 "goroutines",
	"process_resident_memory_bytes": "resident_memory_bytes",
}

// statsdSink sends to one StatsD server.
type statsdSink struct {
	client   statsd.Statter
	rate     float32
	gather   prometheus.Gatherer
	log      *zap.Logger
	interval time.Duration
	sent     map[string]float64 // counter values already sent
	stop     chan struct{}
	done     chan struct{}
}

func newStatsD(cfg Config, gather prometheus.Gatherer) (*statsdSink, error) {
	prefix := cfg.StatsDPrefix
	if prefix == "" {
		prefix = DefaultStatsDPrefix
	}
	c, err := statsd.NewClientWithConfig(&statsd.ClientConfig{Address: cfg.StatsDAddr, Prefix: prefix, UseBuffered: true})
	if err != nil {
		return nil, fmt.Errorf("%w: statsd address %q: %v", ErrBadConfig, cfg.StatsDAddr, err)
	}
	s := &statsdSink{
		client: c, rate: cfg.StatsDSampleRate, gather: gather, log: cfg.Logger.Named("statsd"),
		interval: cfg.StatsDInterval, sent: map[string]float64{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	if s.rate == 0 {
		s.rate = DefaultStatsDSampleRate
	}
	if s.interval == 0 {
		s.interval = DefaultStatsDInterval
	}
	go s.run()
	return s, nil
}

// timing sends a timing, sampled at the configured rate. It does not
// block on the network (the client buffers, one UDP datagram at a time).
func (s *statsdSink) timing(name string, d time.Duration) {
	s.client.TimingDuration(name, d, s.rate)
}

func (s *statsdSink) run() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.flush()
		case <-s.stop:
			s.flush()
			s.client.Close() // sends what is buffered
			return
		}
	}
}

// close sends the last values and stops.
func (s *statsdSink) close() {
	close(s.stop)
	<-s.done
}

// flush sends the counters' increases and the gauges' values.
func (s *statsdSink) flush() {
	families, err := s.gather.Gather()
	if err != nil {
		s.log.Warn("gathering metrics failed", zap.Error(err))
	}
	ext, _ := s.client.(statsd.ExtendedStatSender)
	for _, f := range families {
		base, ok := statsdName(f.GetName())
		if !ok {
			continue
		}
		for _, m := range f.GetMetric() {
			name := base
			for _, l := range m.GetLabel() {
				name += "." + statsdLabel(l.GetValue())
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v := m.GetCounter().GetValue()
				if d := int64(v - s.sent[name]); d > 0 {
					s.client.Inc(name, d, 1)
					s.sent[name] += float64(d)
				}
			case dto.MetricType_GAUGE:
				if ext != nil {
					ext.GaugeFloat(name, max(m.GetGauge().GetValue(), 0), 1)
				}
			}
		}
	}
}

// statsdName is the StatsD name of a Prometheus family, if it is sent.
func statsdName(name string) (string, bool) {
	if r, ok := statsdRenames[name]; ok {
		return r, true
	}
	if !strings.HasPrefix(name, "roomcast_") {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimPrefix(name, "roomcast_"), "_total"), true
}

// statsdLabel makes a label value a name segment: "/" is "root", a
// namespace loses its leading "/", other characters outside
// [A-Za-z0-9_-] become "_".
func statsdLabel(v string) string {
	if v == "/" {
		return "root"
	}
	v = strings.TrimPrefix(v, "/")
	b := []byte(v)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// startStatsD starts the StatsD export when configured.
func (srv *Server) startStatsD() error {
	if srv.cfg.StatsDAddr == "" {
		return nil
	}
	s, err := newStatsD(srv.cfg, srv.reg)
	if err != nil {
		return err
	}
	srv.metrics.statsd.Store(s)
	return nil
}

// stopStatsD sends the last values and stops the export.
func (srv *Server) stopStatsD() {
	if s := srv.metrics.statsd.Swap(nil); s != nil {
		s.close()
	}
}
