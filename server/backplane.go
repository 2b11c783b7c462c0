package server

import (
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/adapter"
)

// historyBound makes the adapters of mk (nil: memory) bound their recovery
// history to maxBytes (see Config.RecoveryMaxBytes).
func historyBound(mk func(string, adapter.Receiver, time.Duration) adapter.Adapter, maxBytes int64) func(string, adapter.Receiver, time.Duration) adapter.Adapter {
	if mk == nil {
		mk = func(_ string, recv adapter.Receiver, window time.Duration) adapter.Adapter {
			return adapter.NewMemory(recv, window)
		}
	}
	return func(nsp string, recv adapter.Receiver, window time.Duration) adapter.Adapter {
		a := mk(nsp, recv, window)
		if h, ok := a.(interface{ SetMaxHistoryBytes(int64) }); ok {
			h.SetMaxHistoryBytes(maxBytes)
		}
		return a
	}
}

// backplane is what the Redis backplanes have in common.
type backplane interface {
	Adapter(nsp string, recv adapter.Receiver, window time.Duration) adapter.Adapter
	UID() string
	Close() error
}

// connectRedis sets up the Redis backplane. A URL with addr= parameters is
// a Redis Cluster (go-redis ParseClusterURL).
func (srv *Server) connectRedis() error {
	if strings.HasPrefix(srv.cfg.Backplane, "nats") {
		return srv.connectNATS() // nats.go
	}
	if srv.cfg.Backplane == "kafka" {
		return srv.connectKafka() // kafka.go
	}
	var client redis.UniversalClient
	if strings.Contains(srv.cfg.RedisURL, "addr=") {
		opts, err := redis.ParseClusterURL(srv.cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("%w: redis cluster URL: %v", ErrBadConfig, err)
		}
		client = redis.NewClusterClient(opts)
	} else {
		opts, err := redis.ParseURL(srv.cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("%w: redis URL: %v", ErrBadConfig, err)
		}
		client = redis.NewClient(opts)
	}
	rc := adapter.RedisConfig{
		Client: client,
		Stats:  srv.metrics.backplaneStats(),
		Prefix: srv.cfg.RedisPrefix,
		Logger: srv.log,
		OnError: func(op string, _ error) {
			srv.metrics.backplaneErrors.WithLabelValues(op).Inc()
		},
	}
	var node backplane
	var err error
	switch srv.cfg.Backplane {
	case "redis":
		node, err = adapter.NewRedisNode(rc)
	case "redis-sharded":
		node, err = adapter.NewShardedNode(rc)
	case "redis-streams":
		node, err = adapter.NewStreamsNode(adapter.StreamsConfig{RedisConfig: rc})
	}
	if err != nil {
		client.Close()
		return err
	}
	srv.redis = client
	srv.node = node
	srv.cfg.Adapter = node.Adapter
	return nil
}
