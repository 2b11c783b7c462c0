package adapter

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkCrossNodeJetStream: broadcasts through the stream as fast as
// Broadcast returns, timed until the last reaches the other node (each
// publish waits for the stream's acknowledgement).
func BenchmarkCrossNodeJetStream(b *testing.B) {
	cfg := JetStreamConfig{NATSConfig: NATSConfig{URL: benchNATSURL(), Prefix: "bench" + randomID(4)}}
	b.Cleanup(func() { deleteBenchStream(b, cfg.Prefix) })
	benchCrossNode(b, func() benchNode {
		n, err := NewJetStreamNode(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return n
	})
}

// deleteBenchStream removes a benchmark's stream and session bucket (on a
// connection of its own: the nodes' are closed by then).
func deleteBenchStream(b *testing.B, prefix string) {
	nc, err := nats.Connect(benchNATSURL())
	if err != nil {
		b.Error(err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Error(err)
		return
	}
	stream := strings.ToUpper(prefix)
	js.DeleteStream(context.Background(), stream)
	js.DeleteKeyValue(context.Background(), stream+"_sessions")
}
