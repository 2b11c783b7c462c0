package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/clients"
)

// metrics are the server's Prometheus collectors. Labels are bounded:
// namespace, reason, policy — never socket, room or user.
type metrics struct {
	connOpen        prometheus.Gauge
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
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		connOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomcast_connections_open", Help: "Open Engine.IO connections."}),
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
	reg.MustRegister(m.backplaneErrors, m.connOpen, m.sockets, m.connects, m.disconnects, m.connectErrs, m.closes,
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
	for i := range entries {
		if !entries[i].At.IsZero() {
			m.sendLatency.Observe(now.Sub(entries[i].At).Seconds())
		}
	}
}

// forgetNamespace removes the series of a namespace that no longer exists
// (an empty dynamic one), so names clients made up do not pile up.
func (m *metrics) forgetNamespace(nsp string) {
	m.sockets.DeleteLabelValues(nsp)
	m.connects.DeleteLabelValues(nsp)
	m.connectErrs.DeleteLabelValues(nsp)
	m.disconnects.DeletePartialMatch(prometheus.Labels{"namespace": nsp})
}
