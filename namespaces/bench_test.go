package namespaces

import (
	"context"
	"fmt"
	"regexp"
	"testing"
)

func mustRe(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// BenchmarkBroadcast measures encode-once-and-enqueue: one emit to a room of
// N sockets, the recipients' queues drained between emits. ns/recipient is
// the cost per recipient.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			srv := New(Config{RecoveryWindow: -1})
			defer srv.Close()
			srv.Of("/").OnConnection(func(s *Socket) { s.Join("room") })
			peers := make([]*peer, n)
			for i := range peers {
				peers[i], _ = connectPeer(b, srv, "/", "")
			}
			payload := map[string]any{"text": "a 100-byte message body padded out to about one hundred bytes of JSON....", "n": 1}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				srv.Of("/").To("room").Emit(ctx, "msg", payload)
				b.StopTimer()
				for _, p := range peers {
					p.conn.q.Take(nil)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/recipient")
		})
	}
}
