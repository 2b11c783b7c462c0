package namespaces

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/roomcast/roomcast/adapter"
)

// fullBackplane is an adapter whose publish queue is always full: it acts
// on the local sockets and refuses to publish, like the in-tree backplanes
// when their queue is full.
type fullBackplane struct{ *adapter.Memory }

func (f fullBackplane) Broadcast(msg *adapter.Message, opts adapter.Options) error {
	f.Memory.Broadcast(msg, opts)
	return f.refused(opts)
}

func (f fullBackplane) AddSockets(opts adapter.Options, rooms []string) error {
	f.Memory.AddSockets(opts, rooms)
	return f.refused(opts)
}

func (f fullBackplane) DelSockets(opts adapter.Options, rooms []string) error {
	f.Memory.DelSockets(opts, rooms)
	return f.refused(opts)
}

func (f fullBackplane) DisconnectSockets(opts adapter.Options, close bool) error {
	f.Memory.DisconnectSockets(opts, close)
	return f.refused(opts)
}

func (fullBackplane) refused(opts adapter.Options) error {
	if opts.Local {
		return nil
	}
	return adapter.ErrPublishQueueFull
}

// A backplane that cannot publish fails Emit, Join, Leave and Disconnect
// with its error, while the local sockets are served.
func TestBackplaneErrorsReachTheCaller(t *testing.T) {
	srv := New(Config{Adapter: func(_ string, recv adapter.Receiver, window time.Duration) adapter.Adapter {
		return fullBackplane{adapter.NewMemory(recv, window)}
	}})
	defer srv.Close()
	_, conn, s := connectNotify(t, srv)
	ctx := context.Background()
	if err := s.Join("r"); err != nil {
		t.Fatal(err)
	}
	nsp := srv.Of("/")
	for name, emit := range map[string]func() error{
		"namespace emit": func() error { return nsp.Emit(ctx, "e", 1) },
		"room emit":      func() error { return nsp.To("r").Emit(ctx, "e", 1) },
		"socket to room": func() error { return s.To("r").Emit(ctx, "e", 1) },
	} {
		if err := emit(); !errors.Is(err, adapter.ErrPublishQueueFull) {
			t.Errorf("%s: %v, want ErrPublishQueueFull", name, err)
		}
	}
	<-conn.sent // the local socket received the refused emits
	if got := conn.texts(); len(got) == 0 || got[0] != `2["e",1]` {
		t.Fatalf("local socket got %q", got)
	}
	if err := nsp.Local().Emit(ctx, "e", 2); err != nil {
		t.Fatalf("local emit: %v", err)
	}
	if err := nsp.To("r").Join("s"); !errors.Is(err, adapter.ErrPublishQueueFull) {
		t.Fatalf("Join: %v", err)
	}
	if rooms := s.Rooms(); !contains(rooms, "s") {
		t.Fatalf("Join did not apply locally: %v", rooms)
	}
	if err := nsp.To("r").Leave("s"); !errors.Is(err, adapter.ErrPublishQueueFull) {
		t.Fatalf("Leave: %v", err)
	}
	if err := nsp.To("nobody").Disconnect(false); !errors.Is(err, adapter.ErrPublishQueueFull) {
		t.Fatalf("Disconnect: %v", err)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
