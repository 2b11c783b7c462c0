package namespaces

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Clients that join and leave one dynamic namespace at once: every socket
// lives in the namespace the server knows by that name (never in one just
// removed), and the namespace goes with the last socket, each removal
// reported once per creation.
func TestDynamicNamespaceChurn(t *testing.T) {
	var created, removed atomic.Int64
	srv := New(Config{Hooks: Hooks{NamespaceRemoved: func(string) { removed.Add(1) }}})
	defer srv.Close()
	srv.OfPattern(mustRe(`^/d$`), func(*Namespace) { created.Add(1) })
	const workers, rounds = 4, 300
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				conn := newFakeConn()
				c := srv.NewClient(conn, nil)
				if err := c.Text([]byte("0/d,")); err != nil {
					t.Error(err)
					return
				}
				if got := conn.texts(); len(got) == 0 || !strings.HasPrefix(got[0], "0/d,{") {
					t.Errorf("CONNECT answered %q", got)
					return
				}
				s := c.Sockets()[0]
				srv.mu.RLock()
				live := srv.nsps["/d"]
				srv.mu.RUnlock()
				if s.nsp != live {
					t.Error("a socket joined a namespace that was removed")
					return
				}
				if i%2 == 0 {
					c.Text([]byte("1/d,"))
				} else {
					c.Close(0)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(srv.Namespaces()); n != 1 || srv.dynamic != 0 {
		t.Fatalf("%d namespaces (%d dynamic) after every socket left, want only /", n, srv.dynamic)
	}
	if created.Load() != removed.Load() || created.Load() == 0 {
		t.Fatalf("%d created, %d removed", created.Load(), removed.Load())
	}
	t.Logf("%d creations and removals", created.Load())
}

// A refused CONNECT leaves nothing; the cap refuses new names but not
// existing ones.
func TestDynamicNamespaceRefusedAndCapped(t *testing.T) {
	srv := New(Config{MaxDynamicNamespaces: 2})
	defer srv.Close()
	srv.OfPattern(mustRe(`^/d-[0-9]+$`), func(n *Namespace) {
		n.Use(func(s *Socket) error {
			if s.Handshake().Auth["ok"] != true {
				return &ConnectError{Message: "no"}
			}
			return nil
		})
	})
	for _, name := range []string{"/d-1", "/d-2", "/d-3"} {
		if _, ack := connectPeer(t, srv, name, `{}`); ack != `4`+name+`,{"message":"no"}` {
			t.Fatalf("refused %s: %q", name, ack)
		}
	}
	if n := len(srv.Namespaces()); n != 1 {
		t.Fatalf("%d namespaces after refused CONNECTs, want 1", n)
	}
	a, _ := connectPeer(t, srv, "/d-1", `{"ok":true}`)
	connectPeer(t, srv, "/d-2", `{"ok":true}`)
	if _, ack := connectPeer(t, srv, "/d-3", `{"ok":true}`); ack != `4/d-3,{"message":"too many namespaces"}` {
		t.Fatalf("over the cap: %q", ack)
	}
	if _, ack := connectPeer(t, srv, "/d-1", `{"ok":true}`); !strings.HasPrefix(ack, "0/d-1,{") {
		t.Fatalf("existing namespace at the cap: %q", ack)
	}
	if _, ack := connectPeer(t, srv, "/nope", ``); ack != `4/nope,{"message":"Invalid namespace"}` {
		t.Fatalf("unknown namespace at the cap: %q", ack)
	}
	a.c.Close(0) // /d-1 keeps the second peer
	if _, ack := connectPeer(t, srv, "/d-3", `{"ok":true}`); ack != `4/d-3,{"message":"too many namespaces"}` {
		t.Fatalf("over the cap: %q", ack)
	}
}
