package server

import (
	"math"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/clients"
)

// metrics are the server's Prometheus collectors. Labels are bounded:
// namespace, reason, policy — never socket, room or user.
type metrics struct {
	connOpen        *connGauge
	sockets         *prometheus.GaugeVec
	connects        *prometheus.CounterVec
	disconnects     *prometheus.CounterVec
	connectErrs     *prometheus.CounterVec
	closes          *prometheus.CounterVec
	slowCloses      *prometheus.CounterVec
	rejected        *prometheus.CounterVec
	dropped         *prometheus.CounterVec
	coalesced       prometheus.Counter
	queuePackets    prometheus.Histogram
	queueBytes      prometheus.Histogram
	sendLatency     prometheus.Histogram
	backplaneErrors *prometheus.CounterVec
	queueStats      clients.Stats

	maxConns         prometheus.Gauge
	backplaneMsgs    *prometheus.CounterVec
	backplanePublish prometheus.Histogram
	backplaneCap     prometheus.Gauge
	// statsd, when set, also gets the timings (see statsd.go).
	statsd atomic.Pointer[statsdSink]
}

// connGauge is the open connections gauge; each Inc also counts an opened
// connection, so churn (connections opened per second) needs no other
// call site.
type connGauge struct {
	open   prometheus.Gauge
	opened prometheus.Counter
}

func (g *connGauge) Inc() { g.open.Inc(); g.opened.Inc() }
func (g *connGauge) Dec() { g.open.Dec() }

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		connOpen: &connGauge{
			open: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "roomcast_connections_open", Help: "Open Engine.IO connections."}),
			opened: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "roomcast_connections_opened_total", Help: "Engine.IO connections opened (handshakes that made a session)."}),
		},
		sockets: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomcast_sockets_connected", Help: "Connected sockets per namespace."}, []string{"namespace"}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_socket_connects_total", Help: "Sockets connected, per namespace."}, []string{"namespace"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_socket_disconnects_total", Help: "Sockets disconnected, per namespace and reason."}, []string{"namespace", "reason"}),
		connectErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_socket_connect_errors_total", Help: "Refused namespace connections."}, []string{"namespace"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_connection_closes_total", Help: "Engine.IO connections closed, per reason."}, []string{"reason"}),
		slowCloses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_slow_client_disconnects_total", Help: "Connections closed for being slow: send queue full or write timeout."}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_handshakes_rejected_total", Help: "New connections refused, per reason."}, []string{"reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_send_dropped_total", Help: "Outbound packets dropped by a full or busy queue, per policy."}, []string{"policy"}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "roomcast_send_coalesced_total", Help: "Queued packets replaced by a newer one with the same coalesce key."}),
		queuePackets: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "roomcast_send_queue_packets", Help: "Packets a writer found queued, per batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		queueBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "roomcast_send_queue_bytes", Help: "Bytes a writer found queued, per batch.",
			Buckets: prometheus.ExponentialBuckets(64, 4, 9)}),
		sendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "roomcast_send_latency_seconds", Help: "Time from enqueue to write complete, per packet.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14)}),
		backplaneErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_backplane_errors_total", Help: "Backplane (Redis) errors, per operation."}, []string{"op"}),
	}
	m.maxConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "roomcast_connections_max", Help: "Configured most open connections (--max-connections); 0: no bound."})
	m.backplaneMsgs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "roomcast_backplane_messages_total", Help: "Backplane messages, per direction: out (published) or in (received)."}, []string{"direction"})
	m.backplanePublish = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "roomcast_backplane_publish_seconds", Help: "Time a backplane publish (or pipelined batch) took.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12)})
	m.backplaneCap = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "roomcast_backplane_capacity_messages_per_second", Help: "Configured backplane throughput this node may use (--backplane-capacity), messages/s in and out; 0: unknown."})
	memLimit := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "roomcast_memory_limit_bytes", Help: "The Go runtime's soft memory limit (--memory-limit, GOMEMLIMIT or the cgroup's); 0: none."},
		func() float64 { return float64(memoryLimit()) })
	reg.MustRegister(m.maxConns, m.backplaneMsgs, m.backplanePublish, m.backplaneCap, memLimit, m.connOpen.open, m.connOpen.opened)
	// Series with a known, small label set exist from the start, so
	// rules and dashboards see 0 rather than nothing.
	for _, d := range []string{"in", "out"} {
		m.backplaneMsgs.WithLabelValues(d)
	}
	for _, op := range []string{"publish", "subscribe", "request", "decode"} {
		m.backplaneErrors.WithLabelValues(op)
	}
	for _, r := range []string{rejectRateLimit, rejectMaxConnections} {
		m.rejected.WithLabelValues(r)
	}
	for _, p := range []clients.Policy{clients.Disconnect, clients.DropOldest, clients.Coalesce} {
		m.dropped.WithLabelValues(p.String())
	}
	for _, r := range []clients.Reason{clients.ReasonQueueFull, clients.ReasonWriteTimeout} {
		m.slowCloses.WithLabelValues(r.String())
	}
	reg.MustRegister(m.backplaneErrors, m.sockets, m.connects, m.disconnects, m.connectErrs, m.closes,
		m.slowCloses, m.rejected, m.dropped, m.coalesced, m.queuePackets, m.queueBytes, m.sendLatency)
	m.queueStats = clients.Stats{
		Dropped:   func(n int, p clients.Policy) { m.dropped.WithLabelValues(p.String()).Add(float64(n)) },
		Coalesced: func() { m.coalesced.Inc() },
	}
	return m
}

// observeQueue records what a writer found queued.
func (m *metrics) observeQueue(entries []clients.Entry) {
	size := 0
	for i := range entries {
		size += entries[i].Packet.Size()
	}
	m.queuePackets.Observe(float64(len(entries)))
	m.queueBytes.Observe(float64(size))
}

// observeSent records the send latency of written packets.
func (m *metrics) observeSent(entries []clients.Entry) {
	now := time.Now()
	sd := m.statsd.Load()
	for i := range entries {
		if !entries[i].At.IsZero() {
			d := now.Sub(entries[i].At)
			m.sendLatency.Observe(d.Seconds())
			if sd != nil {
				sd.timing(statsdSendLatency, d)
			}
		}
	}
}

// backplaneStats feeds the backplane metrics.
func (m *metrics) backplaneStats() *adapter.Stats {
	out, in := m.backplaneMsgs.WithLabelValues("out"), m.backplaneMsgs.WithLabelValues("in")
	return &adapter.Stats{
		Published: func(n int, took time.Duration, err error) {
			m.backplanePublish.Observe(took.Seconds())
			if sd := m.statsd.Load(); sd != nil {
				sd.timing(statsdPublishLatency, took)
			}
			if err == nil {
				out.Add(float64(n))
			}
		},
		Received: in.Inc,
	}
}

// memoryLimit is the runtime's soft memory limit, 0 when there is none.
func memoryLimit() int64 {
	l := debug.SetMemoryLimit(-1)
	if l == math.MaxInt64 {
		return 0
	}
	return l
}

// forgetNamespace removes the series of a namespace that no longer exists
// (an empty dynamic one), so names clients made up do not pile up.
func (m *metrics) forgetNamespace(nsp string) {
	m.sockets.DeleteLabelValues(nsp)
	m.connects.DeleteLabelValues(nsp)
	m.connectErrs.DeleteLabelValues(nsp)
	m.disconnects.DeletePartialMatch(prometheus.Labels{"namespace": nsp})
}
