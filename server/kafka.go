package server

import (
	"strings"

	"github.com/roomcast/roomcast/adapter"
)

// connectKafka sets up the Kafka backplane.
func (srv *Server) connectKafka() error {
	var brokers []string
	for _, b := range strings.Split(srv.cfg.KafkaBrokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	node, err := adapter.NewKafkaNode(adapter.KafkaConfig{
		Brokers:   brokers,
		Prefix:    srv.cfg.KafkaTopicPrefix,
		Retention: srv.cfg.KafkaRetention,
		Logger:    srv.log,
		Stats:     srv.metrics.backplaneStats(),
		OnError: func(op string, _ error) {
			srv.metrics.backplaneErrors.WithLabelValues(op).Inc()
		},
	})
	if err != nil {
		return err
	}
	srv.node = node
	srv.cfg.Adapter = node.Adapter
	return nil
}
