package namespaces

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/roomcast/roomcast/clients"
)

// mp encodes a packet as socket.io-msgpack-parser (notepack.io) does: a
// map with string keys.
func mp(t testing.TB, v map[string]any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// binaries drains the queued frames of a msgpack connection, each decoded
// as a client would; a text frame fails the test.
func (f *fakeConn) binaries(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range f.q.Take(nil) {
		for _, fr := range e.Packet.Frames {
			if !fr.Binary {
				t.Fatalf("text frame %q to a msgpack client", fr.Data)
			}
			var m map[string]any
			if err := msgpack.Unmarshal(fr.Data, &m); err != nil {
				t.Fatalf("undecodable frame %x: %v", fr.Data, err)
			}
			out = append(out, m)
		}
	}
	return out
}

// connectMsgpack connects a msgpack client to nsp with auth (nil: none)
// and returns it with the answer to its CONNECT.
func connectMsgpack(t testing.TB, srv *Server, nsp string, auth map[string]any) (*peer, map[string]any) {
	t.Helper()
	p := &peer{t: t, conn: newFakeConn()}
	p.c = srv.NewClient(p.conn, nil)
	pkt := map[string]any{"type": 0, "nsp": nsp}
	if auth != nil {
		pkt["data"] = auth
	}
	if err := p.c.Binary(mp(t, pkt)); err != nil {
		t.Fatalf("CONNECT: %v", err)
	}
	got := p.conn.binaries(t)
	if len(got) == 0 {
		t.Fatal("no answer to CONNECT")
	}
	return p, got[0]
}

func num(v any) float64 {
	switch t := v.(type) {
	case int8:
		return float64(t)
	case int16:
		return float64(t)
	case int32:
		return float64(t)
	case int64:
		return float64(t)
	case uint8:
		return float64(t)
	case uint16:
		return float64(t)
	case uint32:
		return float64(t)
	case uint64:
		return float64(t)
	case float64:
		return t
	}
	return -1
}

func TestMsgpackConnectEventsAcksBinary(t *testing.T) {
	srv := New(Config{RecoveryWindow: -1, Parser: ParserMsgpack})
	defer srv.Close()
	sockets := make(chan *Socket, 1)
	var auth map[string]any
	srv.Of("/chat").OnConnection(func(s *Socket) {
		auth = s.Handshake().Auth
		s.On("echo", func(ev *Event) {
			raw, err := ev.Raw(1)
			if err != nil || string(raw) != `{"n":1.5}` {
				t.Errorf("Raw(1) = %s, %v", raw, err)
			}
			var v struct{ N float64 }
			if err := ev.Bind(1, &v); err != nil || v.N != 1.5 {
				t.Errorf("Bind(1) = %v, %v", v, err)
			}
			ev.Ack(ev.Args...)
		})
		sockets <- s
	})
	p, ans := connectMsgpack(t, srv, "/chat", map[string]any{"token": "t"})
	if num(ans["type"]) != 0 || ans["nsp"] != "/chat" {
		t.Fatalf("CONNECT answer %v", ans)
	}
	if d, _ := ans["data"].(map[string]any); d == nil || d["sid"] == "" {
		t.Fatalf("CONNECT answer without sid: %v", ans)
	}
	if auth["token"] != "t" {
		t.Fatalf("auth %v", auth)
	}
	s := <-sockets

	// Client → server: an event with binary, an ack id and the options
	// socket.io-client adds; the ack comes back with the same values.
	in := mp(t, map[string]any{"type": 2, "nsp": "/chat", "id": 7, "options": map[string]any{"compress": true},
		"data": []any{"echo", []byte{1, 2, 3}, map[string]any{"n": 1.5}}})
	if err := p.c.Binary(in); err != nil {
		t.Fatal(err)
	}
	out := p.conn.binaries(t)
	if len(out) != 1 || num(out[0]["type"]) != typeAck || num(out[0]["id"]) != 7 || out[0]["nsp"] != "/chat" {
		t.Fatalf("ack %v", out)
	}
	want := []any{[]byte{1, 2, 3}, map[string]any{"n": 1.5}}
	if !reflect.DeepEqual(out[0]["data"], want) {
		t.Fatalf("ack data %#v", out[0]["data"])
	}

	// Server → client: an event with binary and an ack, answered.
	done := make(chan []any, 1)
	if err := s.EmitWithAckFunc(context.Background(), func(a []any, err error) { done <- a }, "q", []byte("bin"), 42, 0.25, json.RawMessage(`{"k":[true,null]}`)); err != nil {
		t.Fatal(err)
	}
	out = p.conn.binaries(t)
	if len(out) != 1 || num(out[0]["type"]) != typeEvent {
		t.Fatalf("event %v", out)
	}
	d := out[0]["data"].([]any)
	if d[0] != "q" || !bytes.Equal(d[1].([]byte), []byte("bin")) || num(d[2]) != 42 || d[3] != 0.25 ||
		!reflect.DeepEqual(d[4], map[string]any{"k": []any{true, nil}}) {
		t.Fatalf("event data %#v", d)
	}
	id := out[0]["id"]
	if err := p.c.Binary(mp(t, map[string]any{"type": 3, "nsp": "/chat", "id": id, "data": []any{"yes", []byte{9}}})); err != nil {
		t.Fatal(err)
	}
	if a := <-done; len(a) != 2 || a[0] != "yes" || !bytes.Equal(a[1].([]byte), []byte{9}) {
		t.Fatalf("ack args %#v", a)
	}

	// Server-side disconnect of the namespace.
	s.Disconnect(false)
	out = p.conn.binaries(t)
	if len(out) != 1 || num(out[0]["type"]) != typeDisconnect || out[0]["nsp"] != "/chat" || out[0]["data"] != nil {
		t.Fatalf("disconnect %v", out)
	}
}

func TestMsgpackConnectError(t *testing.T) {
	srv := New(Config{RecoveryWindow: -1, Parser: ParserMsgpack})
	defer srv.Close()
	srv.Of("/private").Use(func(s *Socket) error {
		return &ConnectError{Message: "unauthorized", Data: map[string]any{"code": 7}}
	})
	_, ans := connectMsgpack(t, srv, "/private", map[string]any{"token": "bad"})
	d, _ := ans["data"].(map[string]any)
	if num(ans["type"]) != typeConnectError || ans["nsp"] != "/private" || d["message"] != "unauthorized" ||
		num(d["data"].(map[string]any)["code"]) != 7 {
		t.Fatalf("connect_error %v", ans)
	}
	_, ans = connectMsgpack(t, srv, "/nope", nil)
	if d, _ := ans["data"].(map[string]any); num(ans["type"]) != typeConnectError || d["message"] != "Invalid namespace" {
		t.Fatalf("unknown namespace %v", ans)
	}
	// The client leaves: DISCONNECT from the client.
	p, _ := connectMsgpack(t, srv, "/", nil)
	if err := p.c.Binary(mp(t, map[string]any{"type": 1, "nsp": "/"})); err != nil {
		t.Fatal(err)
	}
	if srv.Of("/").Len() != 0 {
		t.Fatal("socket still connected after DISCONNECT")
	}
}

// A broadcast is encoded once, for every recipient, and recovery replays
// msgpack packets too.
func TestMsgpackBroadcastEncodedOnce(t *testing.T) {
	srv := New(Config{RecoveryWindow: DefaultRecoveryWindow, Parser: ParserMsgpack})
	defer srv.Close()
	srv.Of("/").OnConnection(func(s *Socket) { s.Join("room") })
	var peers []*peer
	for range 3 {
		p, _ := connectMsgpack(t, srv, "/", nil)
		peers = append(peers, p)
	}
	if err := srv.Of("/").To("room").Emit(context.Background(), "m", map[string]any{"x": []byte{7}}); err != nil {
		t.Fatal(err)
	}
	var first *clients.Packet
	for _, p := range peers {
		es := p.conn.q.Take(nil)
		if len(es) != 1 {
			t.Fatalf("%d packets", len(es))
		}
		if first == nil {
			first = es[0].Packet
		} else if es[0].Packet != first {
			t.Fatal("the broadcast was encoded again for another recipient")
		}
	}
	var m map[string]any
	if err := msgpack.Unmarshal(first.Frames[0].Data, &m); err != nil {
		t.Fatal(err)
	}
	d := m["data"].([]any)
	if len(first.Frames) != 1 || d[0] != "m" || !bytes.Equal(d[1].(map[string]any)["x"].([]byte), []byte{7}) || len(d) != 3 {
		t.Fatalf("broadcast %#v (want the event, its argument and the recovery offset)", m)
	}
}

// Each parser refuses the other's packets: a JSON server cannot talk to a
// msgpack client, nor the reverse.
func TestParsersDoNotMix(t *testing.T) {
	jsonSrv := New(Config{RecoveryWindow: -1})
	defer jsonSrv.Close()
	c := jsonSrv.NewClient(newFakeConn(), nil)
	if err := c.Binary(mp(t, map[string]any{"type": 0, "nsp": "/"})); !errors.Is(err, errPacket) {
		t.Fatalf("JSON server took a msgpack CONNECT: %v", err)
	}
	mpSrv := New(Config{RecoveryWindow: -1, Parser: ParserMsgpack})
	defer mpSrv.Close()
	c = mpSrv.NewClient(newFakeConn(), nil)
	if err := c.Text([]byte("0")); !errors.Is(err, errPacket) {
		t.Fatalf("msgpack server took a JSON CONNECT: %v", err)
	}
}

func TestMsgpackPacketSizeBound(t *testing.T) {
	srv := New(Config{RecoveryWindow: -1, Parser: ParserMsgpack, MaxPacketSize: 100})
	defer srv.Close()
	p, _ := connectMsgpack(t, srv, "/", nil)
	big := mp(t, map[string]any{"type": 2, "nsp": "/", "data": []any{"e", make([]byte, 200)}})
	if err := p.c.Binary(big); !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("oversized packet: %v", err)
	}
}

func TestDecodeMsgpackValues(t *testing.T) {
	// A Date (timestamp 8: 30-bit ns, 34-bit seconds), undefined, a
	// uint64 beyond int64, bin, nested values.
	date := []byte{0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}
	sec, ns := uint64(1700000000), uint64(123000000)
	v := ns<<34 | sec
	for i := range 8 {
		date[2+i] = byte(v >> (56 - 8*i))
	}
	var b bytes.Buffer
	b.Write([]byte{0x83, 0xa4, 't', 'y', 'p', 'e', 0x02, 0xa3, 'n', 's', 'p', 0xa1, '/', 0xa4, 'd', 'a', 't', 'a', 0x95, 0xa1, 'e'})
	b.Write(date)
	b.Write([]byte{0xd4, 0x00, 0x00})                                     // undefined
	b.Write([]byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // uint64 max
	b.Write([]byte{0xc4, 0x02, 0xab, 0xcd})                               // bin
	in := b.Bytes()
	p, err := decodeMsgpackPacket(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"e", "2023-11-14T22:13:20.123Z", nil, float64(1<<64 - 1), []byte{0xab, 0xcd}}
	if !reflect.DeepEqual(p.vals, want) {
		t.Fatalf("got %#v", p.vals)
	}
	// Decoded values do not share the transport's buffer.
	for i := range in {
		in[i] = 0
	}
	if !bytes.Equal(p.vals[4].([]byte), []byte{0xab, 0xcd}) {
		t.Fatal("bin value aliases the input")
	}
}

func TestDecodeMsgpackHostile(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty":                {},
		"not a map":            {0x92, 0x01, 0x02},
		"4G-element array":     {0x81, 0xa4, 'd', 'a', 't', 'a', 0xdd, 0xff, 0xff, 0xff, 0xff},
		"4G-byte string":       {0x81, 0xa3, 'n', 's', 'p', 0xdb, 0xff, 0xff, 0xff, 0xff},
		"trailing bytes":       append(mp(t, map[string]any{"type": 1, "nsp": "/"}), 0),
		"type 5":               mp(t, map[string]any{"type": 5, "nsp": "/", "data": []any{"e"}}),
		"type 1.5":             mp(t, map[string]any{"type": 1.5, "nsp": "/"}),
		"no type":              mp(t, map[string]any{"nsp": "/", "data": []any{"e"}}),
		"connect_error":        mp(t, map[string]any{"type": 4, "nsp": "/", "data": map[string]any{}}),
		"nsp not a string":     mp(t, map[string]any{"type": 0, "nsp": 3}),
		"event data object":    mp(t, map[string]any{"type": 2, "nsp": "/", "data": map[string]any{}}),
		"ack without id":       mp(t, map[string]any{"type": 3, "nsp": "/", "data": []any{}}),
		"negative id":          mp(t, map[string]any{"type": 2, "nsp": "/", "id": -1, "data": []any{"e"}}),
		"id beyond 2^53":       mp(t, map[string]any{"type": 2, "nsp": "/", "id": uint64(1) << 60, "data": []any{"e"}}),
		"connect data array":   mp(t, map[string]any{"type": 0, "nsp": "/", "data": []any{}}),
		"disconnect with data": mp(t, map[string]any{"type": 1, "nsp": "/", "data": []any{}}),
		"int map key":          {0x81, 0x01, 0x02},
		"unknown ext":          {0x81, 0xa4, 'd', 'a', 't', 'a', 0xd4, 0x05, 0x00},
		"deep":                 append([]byte{0x81, 0xa4, 'd', 'a', 't', 'a'}, bytes.Repeat([]byte{0x91}, 20_000)...),
		"0xc1":                 {0x81, 0xa4, 'd', 'a', 't', 'a', 0xc1},
	} {
		if _, err := decodeMsgpackPacket(in); !errors.Is(err, errPacket) {
			t.Errorf("%s: %v, want a packet error", name, err)
		}
	}
}

func TestParseParser(t *testing.T) {
	for in, want := range map[string]Parser{"": ParserJSON, "json": ParserJSON, "msgpack": ParserMsgpack} {
		if got, err := ParseParser(in); err != nil || got != want {
			t.Errorf("ParseParser(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseParser("cbor"); err == nil || !strings.Contains(err.Error(), "json, msgpack") {
		t.Errorf("unknown parser: %v", err)
	}
}

// Connection state recovery with the msgpack parser: the offset is the last
// argument of each event, the session comes back with what was missed.
func TestMsgpackRecovery(t *testing.T) {
	srv := New(Config{RecoveryWindow: DefaultRecoveryWindow, Parser: ParserMsgpack})
	defer srv.Close()
	recovered := make(chan bool, 2)
	srv.Of("/").OnConnection(func(s *Socket) {
		if !s.Recovered() {
			s.Join("room")
		}
		recovered <- s.Recovered()
	})
	p, ans := connectMsgpack(t, srv, "/", nil)
	if <-recovered {
		t.Fatal("first connection recovered")
	}
	pid, _ := ans["data"].(map[string]any)["pid"].(string)
	if pid == "" {
		t.Fatalf("CONNECT answer without pid: %v", ans)
	}
	ctx := context.Background()
	srv.Of("/").To("room").Emit(ctx, "m", 1)
	out := p.conn.binaries(t)
	first := out[0]["data"].([]any)
	offset, _ := first[len(first)-1].(string)
	if len(first) != 3 || offset == "" {
		t.Fatalf("event without offset: %v", first)
	}
	p.c.Close(clients.ReasonTransportClose)
	srv.Of("/").To("room").Emit(ctx, "m", 2, []byte{5}) // missed
	q := &peer{t: t, conn: newFakeConn()}
	q.c = srv.NewClient(q.conn, nil)
	if err := q.c.Binary(mp(t, map[string]any{"type": 0, "nsp": "/", "data": map[string]any{"pid": pid, "offset": offset}})); err != nil {
		t.Fatal(err)
	}
	got := q.conn.binaries(t)
	if !<-recovered || len(got) != 2 || num(got[0]["type"]) != typeConnect {
		t.Fatalf("not recovered with the missed packet: %v", got)
	}
	d := got[1]["data"].([]any)
	if d[0] != "m" || num(d[1]) != 2 || !bytes.Equal(d[2].([]byte), []byte{5}) {
		t.Fatalf("missed %#v", d)
	}
}
