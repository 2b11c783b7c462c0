package server

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// BenchmarkFanout measures one broadcast to N WebSocket clients, from the
// emit to the last client's read, over loopback (the clients run in this
// process too, so absolute numbers include their reads).
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			srv, addr := startServer(b, Config{Logger: zap.NewNop(), RecoveryWindow: -1})
			var got atomic.Int64
			done := make(chan struct{}, 1)
			var target atomic.Int64
			var wg sync.WaitGroup
			conns := make([]*websocket.Conn, n)
			for i := range conns {
				c := dialRaw(b, addr, 0)
				c.connect("/")
				c.join("r")
				conns[i] = c.ws
			}
			for _, ws := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ws.SetReadDeadline(time.Time{})
					for {
						_, m, err := ws.ReadMessage()
						if err != nil {
							return
						}
						if len(m) == 1 && m[0] == '2' {
							continue
						}
						if got.Add(1) == target.Load() {
							done <- struct{}{}
						}
					}
				}()
			}
			payload := map[string]any{"text": "a 100-byte message body, padded out to about one hundred bytes of JSON...."}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				target.Store(int64(n * (i + 1)))
				srv.To("r").Emit(ctx, "m", payload)
				<-done
			}
			b.StopTimer()
			for _, ws := range conns {
				ws.NetConn().(*net.TCPConn).Close()
			}
			wg.Wait()
		})
	}
}
