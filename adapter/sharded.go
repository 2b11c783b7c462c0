package adapter

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ShardedNode is one process's connection to a Redis sharded pub/sub
// backplane (Redis 7 SPUBLISH/SSUBSCRIBE, standalone or Redis Cluster),
// wire-compatible with Node's createShardedAdapter in its default "dynamic"
// subscription mode: a node subscribes to a room's channel only while it
// has members in that room, so it receives only the traffic of its rooms.
type ShardedNode struct {
	*node

	routes *routes

	mu   sync.Mutex
	subs map[string]*redis.PubSub // by shard master address ("" standalone)
	ops  []subOp                  // subscription changes not yet applied
	wake chan struct{}

	pub *jobs
}

type subOp struct {
	channel string
	sub     bool
}

// NewShardedNode starts the backplane. The client is not closed by Close.
func NewShardedNode(cfg RedisConfig) (*ShardedNode, error) {
	base, err := newNode(cfg, "redis-sharded")
	if err != nil {
		return nil, err
	}
	n := &ShardedNode{node: base, subs: make(map[string]*redis.PubSub), wake: make(chan struct{}, 1)}
	n.routes = newRoutes(n.cfg.Prefix+"#", n.fail)
	n.pub = newJobs(n.fail)
	n.wg.Add(1)
	go n.subscriber()
	return n, nil
}

// Adapter makes the adapter of a namespace (fits namespaces.Config.Adapter).
func (n *ShardedNode) Adapter(nsp string, recv Receiver, window time.Duration) Adapter {
	c := newCluster(recv, window, nsp, n.uid, n.cfg.RequestTimeout, n.log, n.fail, n.pub.queue)
	c.stats = n.cfg.Stats
	c.link = &shardedLink{n: n, channel: n.cfg.Prefix + "#" + nsp + "#"}
	c.Memory.onRoom = func(room string, created, public bool) {
		if public {
			n.change(c.link.(*shardedLink).channel+room+"#", created)
		}
	}
	n.routes.add(nsp, c)
	l := c.link.(*shardedLink)
	n.change(l.channel, true)
	n.change(l.channel+n.uid+"#", true)
	return &shardedAdapter{cluster: c, n: n}
}

// shardedAdapter unsubscribes its channels on Close.
type shardedAdapter struct {
	*cluster
	n *ShardedNode
}

func (a *shardedAdapter) Close() error {
	l := a.link.(*shardedLink)
	a.n.routes.remove(a.nsp)
	a.n.change(l.channel, false)
	a.n.change(l.channel+a.n.uid+"#", false)
	a.Memory.mu.RLock()
	for room := range a.Memory.rooms {
		if _, isSid := a.Memory.sids[room]; !isSid {
			a.n.change(l.channel+room+"#", false)
		}
	}
	a.Memory.mu.RUnlock()
	return a.cluster.Memory.Close()
}

// change queues a subscription change; the subscriber applies them in order.
func (n *ShardedNode) change(channel string, sub bool) {
	n.mu.Lock()
	n.ops = append(n.ops, subOp{channel, sub})
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// subscriber applies subscription changes, one shard connection per master.
func (n *ShardedNode) subscriber() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			n.mu.Lock()
			subs := n.subs
			n.subs = map[string]*redis.PubSub{}
			n.mu.Unlock()
			for _, ps := range subs {
				ps.Close()
			}
			return
		case <-n.wake:
		}
		n.mu.Lock()
		ops := n.ops
		n.ops = nil
		n.mu.Unlock()
		for _, op := range ops {
			n.apply(op)
		}
	}
}

func (n *ShardedNode) apply(op subOp) {
	addr := ""
	if cc, ok := n.client.(*redis.ClusterClient); ok {
		m, err := cc.MasterForKey(n.ctx, op.channel)
		if err != nil {
			n.fail("subscribe", err)
			return
		}
		addr = m.Options().Addr
	}
	n.mu.Lock()
	ps := n.subs[addr]
	n.mu.Unlock()
	if !op.sub {
		if ps != nil {
			if err := ps.SUnsubscribe(n.ctx, op.channel); err != nil {
				n.fail("subscribe", err)
			}
		}
		return
	}
	if ps == nil {
		ps = n.client.SSubscribe(n.ctx, op.channel)
		n.mu.Lock()
		n.subs[addr] = ps
		n.mu.Unlock()
		n.receive(ps, n.dispatch, nil)
		return
	}
	if err := ps.SSubscribe(n.ctx, op.channel); err != nil {
		n.fail("subscribe", err)
	}
}

func (n *ShardedNode) dispatch(channel string, payload []byte) {
	n.routes.dispatch(channel, payload, "")
}

// Close stops the node.
func (n *ShardedNode) Close() error {
	n.pub.stop()
	n.cancel()
	n.wg.Wait()
	return nil
}

// shardedLink publishes with SPUBLISH.
type shardedLink struct {
	n       *ShardedNode
	channel string
}

func (l *shardedLink) publish(ctx context.Context, m clusterMsg) (string, error) {
	return "", shardedPublish(ctx, l.n.client, l.channel, m)
}

// shardedPublish sends m with SPUBLISH on the namespace's channel, or on
// its room's channel (as Node's sharded adapter in "dynamic" mode).
func shardedPublish(ctx context.Context, client redis.UniversalClient, channel string, m clusterMsg) error {
	ch := channel
	if room, ok := roomOf(m); ok {
		ch += room + "#"
	}
	b, err := encodeClusterMsg(m)
	if err != nil {
		return err
	}
	return client.SPublish(ctx, ch, b).Err()
}

// roomOf tells whether m goes on its room's channel, heard only by the
// nodes with members in the room: a broadcast without ack to a single room
// that does not look like a socket id (20 characters).
func roomOf(m clusterMsg) (string, bool) {
	if m.Type != cmBroadcast {
		return "", false
	}
	if _, withAck := m.Data["requestId"]; withAck {
		return "", false
	}
	if rooms := fromWire(m.Data["opts"]).Rooms; len(rooms) == 1 && len(rooms[0]) != 20 {
		return rooms[0], true
	}
	return "", false
}

func (l *shardedLink) respond(ctx context.Context, uid string, m clusterMsg) error {
	b, err := encodeClusterMsg(m)
	if err != nil {
		return err
	}
	return l.n.client.SPublish(ctx, l.channel+uid+"#", b).Err()
}

func (l *shardedLink) serverCount(ctx context.Context) int {
	n, err := numSub(ctx, l.n.client, true, l.channel)
	if err != nil {
		l.n.fail("request", err)
		return 1
	}
	return max(n, 1)
}

// numSub counts the subscribers of a channel, over every master of a
// cluster.
func numSub(ctx context.Context, client redis.UniversalClient, shard bool, channel string) (int, error) {
	count := func(ctx context.Context, c redis.UniversalClient) (int, error) {
		var res map[string]int64
		var err error
		if shard {
			res, err = c.PubSubShardNumSub(ctx, channel).Result()
		} else {
			res, err = c.PubSubNumSub(ctx, channel).Result()
		}
		return int(res[channel]), err
	}
	cc, ok := client.(*redis.ClusterClient)
	if !ok {
		return count(ctx, client)
	}
	var mu sync.Mutex
	total := 0
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		n, err := count(ctx, c)
		mu.Lock()
		total += n
		mu.Unlock()
		return err
	})
	return total, err
}

// encodeClusterMsg renders a message as JSON, or msgpack when it carries
// binary data (as Node's sharded adapter does).
func encodeClusterMsg(m clusterMsg) ([]byte, error) {
	v := map[string]any{"uid": m.UID, "nsp": m.Nsp, "type": m.Type}
	if m.Data != nil {
		v["data"] = m.Data
	}
	if HasBinary(m.Data) {
		return encodeMsgpack(v)
	}
	return json.Marshal(v)
}

// decodeClusterMsg reads a message of the cluster protocol from pub/sub
// (sharded adapter, streams requests): JSON, or msgpack when binary. Pure,
// shared by the receive loops and the fuzz target.
func decodeClusterMsg(b []byte) (clusterMsg, error) {
	v, err := decodeRequest(b)
	if err != nil {
		return clusterMsg{}, err
	}
	m := clusterMsg{}
	m.UID, _ = v["uid"].(string)
	m.Nsp, _ = v["nsp"].(string)
	t, _ := toInt(v["type"])
	m.Type = int(t)
	m.Data, _ = v["data"].(map[string]any)
	return m, nil
}
