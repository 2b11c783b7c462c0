package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/adapter"
)

// Config.RecoveryMaxBytes reaches the namespaces' adapters: 0 the default,
// a value its bound.
func TestRecoveryMaxBytesReachesTheAdapter(t *testing.T) {
	for _, tt := range []struct {
		name  string
		bytes int64
		want  int64
	}{
		{"default", 0, adapter.DefaultMaxHistoryBytes},
		{"1 MiB", 1 << 20, 1 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(Config{Addr: "127.0.0.1:0", RecoveryWindow: time.Minute, RecoveryMaxBytes: tt.bytes})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Shutdown(context.Background()) })
			a := srv.Namespaces().Of("/").Adapter()
			h, ok := a.(interface{ HistoryBytes() int64 })
			if !ok {
				t.Fatalf("%T keeps no history", a)
			}
			const size = 256 << 10
			for i := int64(0); i < tt.want/size+8; i++ {
				a.Broadcast(&adapter.Message{Type: 2, AckID: -1, Data: []any{"m", strings.Repeat("x", size)}}, adapter.Options{Rooms: []string{"nobody"}})
			}
			if b := h.HistoryBytes(); b > tt.want || b < tt.want/2 {
				t.Fatalf("history holds %d bytes, want at most %d (and most of it)", b, tt.want)
			}
		})
	}
}
