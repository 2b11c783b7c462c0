package server

import (
	"github.com/roomcast/roomcast/adapter"
)

// connectNATS sets up the NATS backplanes (nats, nats-jetstream).
func (srv *Server) connectNATS() error {
	cfg := adapter.NATSConfig{
		URL:    srv.cfg.NATSURL,
		Prefix: srv.cfg.NATSPrefix,
		Logger: srv.log,
		Stats:  srv.metrics.backplaneStats(),
		OnError: func(op string, _ error) {
			srv.metrics.backplaneErrors.WithLabelValues(op).Inc()
		},
	}
	var node backplane
	var err error
	switch srv.cfg.Backplane {
	case "nats":
		node, err = adapter.NewNATSNode(cfg)
	case "nats-jetstream":
		// Starts while JetStream does not answer (and sets the stream up
		// when it does), as nats starts while NATS is down.
		node, err = adapter.NewJetStreamNode(adapter.JetStreamConfig{NATSConfig: cfg,
			MaxAge: srv.cfg.NATSMaxAge, MaxMsgs: srv.cfg.NATSMaxMsgs, Replicas: srv.cfg.NATSReplicas})
	}
	if err != nil {
		return err
	}
	srv.node = node
	srv.cfg.Adapter = node.Adapter
	return nil
}
