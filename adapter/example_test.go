package adapter_test

import (
	"context"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/adapter"
)

// printer is a Receiver that prints what reaches its local sockets.
type printer struct{}

func (printer) Deliver(id string, msg *adapter.Message) { fmt.Println(id, "<-", msg.Data) }
func (printer) Disconnect(id string, close bool)        {}
func (printer) Describe(id string) (adapter.SocketInfo, bool) {
	return adapter.SocketInfo{ID: id}, true
}
func (printer) ServerSideEmit(data []any, ack func(any)) {}
func (printer) NextAckID() int64                         { return 0 }

// The memory adapter is a namespace's room registry on one node: sockets
// join rooms, a broadcast reaches the members of its rooms but the
// excepted.
func ExampleNewMemory() {
	m := adapter.NewMemory(printer{}, 0)
	defer m.Close()
	m.Join("ann", "ann", "news")
	m.Join("bob", "bob", "news", "muted")
	m.Broadcast(&adapter.Message{Type: 2, AckID: -1, Data: []any{"headline", "roomcast ships"}},
		adapter.Options{Rooms: []string{"news"}, Except: []string{"muted"}})
	rooms := m.Rooms("bob")
	sort.Strings(rooms)
	fmt.Println(rooms)
	// Output:
	// ann <- [headline roomcast ships]
	// [bob muted news]
}

// An Emitter publishes to the sockets of a Redis-backed cluster from a
// process that serves no clients (a worker, a cron job), in the wire
// format of Node's @socket.io/redis-emitter.
func ExampleNewEmitter() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	e := adapter.NewEmitter(client, "")
	err := e.Of("/").To("news").Except("muted").Emit(context.Background(), "headline", map[string]any{"title": "roomcast ships"})
	if err != nil {
		fmt.Println("publish:", err)
	}
}
