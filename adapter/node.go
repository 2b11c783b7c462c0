package adapter

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// node is what every Redis backplane node has: its configuration, its id,
// its lifetime and its error reporting.
type node struct {
	cfg    RedisConfig
	log    *zap.Logger
	uid    string
	client redis.UniversalClient
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errLog rateLog
}

func newNode(cfg RedisConfig, name string) (*node, error) {
	if cfg.Client == nil {
		return nil, errors.New("adapter: RedisConfig.Client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRedisPrefix
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRedisRequestTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &node{cfg: cfg, log: log.Named(name), uid: randomID(8), client: cfg.Client, ctx: ctx, cancel: cancel}, nil
}

// UID is the node's id on the backplane.
func (n *node) UID() string { return n.uid }

// fail counts an error and logs it at a bounded rate.
func (n *node) fail(op string, err error) {
	if n.cfg.OnError != nil {
		n.cfg.OnError(op, err)
	}
	n.errLog.log(n.log, "redis error", zap.String("op", op), zap.Error(err))
}

// receive runs a subscriber loop until the node closes, handing each
// message to handle and each PONG to pong when set (neither may block).
// After an error it backs off, 100 ms doubling to 1 s, while go-redis
// reconnects and resubscribes.
func (n *node) receive(ps *redis.PubSub, handle func(channel string, payload []byte), pong func(payload string)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		backoff := time.Duration(0)
		for {
			msg, err := ps.Receive(n.ctx)
			if err != nil {
				if n.ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
					return
				}
				n.fail("subscribe", err)
				backoff = min(max(2*backoff, 100*time.Millisecond), time.Second)
				if !sleepCtx(n.ctx, backoff) {
					return
				}
				continue
			}
			if backoff > 0 {
				n.log.Info("redis subscription restored")
				backoff = 0
			}
			switch m := msg.(type) {
			case *redis.Message:
				n.cfg.Stats.received()
				handle(m.Channel, []byte(m.Payload))
			case *redis.Pong:
				if pong != nil {
					pong(m.Payload)
				}
			}
		}
	}()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
