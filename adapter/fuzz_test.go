package adapter

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// Real messages of the Node adapters (notepack.io / @msgpack/msgpack, as
// socket.io 4.8 sends them), hex.
const (
	// ["nodeuid", {type: 2, data: ["ev", {a: 1, b: [true, null, 1.5]}, <01 02 03>], nsp: "/"},
	//  {rooms: ["r"], except: ["x"], flags: {volatile: true}}]
	nodeBroadcast = "93a76e6f646575696483a47479706502a46461746193a2657682a16101a16293c3c0cb3ff8000000000000c403010203a36e7370a12f83a5726f6f6d7391a172a665786365707491a178a5666c61677381a8766f6c6174696c65c3"
	// {uid, type: 9, requestId: "abc", packet: {type: 5, data: ["ev", <07>], nsp: "/"}, opts}
	nodeRequest = "85a3756964a76e6f6465756964a47479706509a9726571756573744964a3616263a67061636b657483a47479706505a46461746192a26576c40107a36e7370a12fa46f70747383a5726f6f6d7390a665786365707490a5666c61677380"
	// sharded: {uid, nsp: "/", type: 3, data: {packet: {type: 2, data: ["ev", <09>], nsp: "/"}, opts: {rooms: ["r"], ...}}}
	nodeCluster = "84a3756964a76e6f6465756964a36e7370a12fa47479706503a46461746182a67061636b657483a47479706502a46461746192a26576c40109a36e7370a12fa46f70747383a5726f6f6d7391a172a665786365707490a5666c61677380"
	// streams data field: base64 msgpack {packet: {type: 2, data: ["ev", <09>, undefined]}, opts}
	nodeStreamData = "gqZwYWNrZXSDpHR5cGUCpGRhdGGTomV2xAEJwKNuc3ChL6RvcHRzg6Vyb29tc5GhcqZleGNlcHSQpWZsYWdzgA=="
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// seeds adds the hostile payloads (the 10,000,000-deep one shortened to
// just past the depth limit: the unit tests run the full one), real Node
// messages and prefixes of them (split input).
func seeds(real ...[]byte) [][]byte {
	out := [][]byte{
		[]byte("\xdd\xff\xff\xff\xff"),
		[]byte("\xdf\xff\xff\xff\xff"),
		[]byte("\x81\xa1a\xdd\xff\xff\xff\xff"),
		[]byte("\xdb\xff\xff\xff\xff"),
		[]byte("\xc9\xff\xff\xff\xff\x01"),
		append(bytes.Repeat([]byte{0x91}, maxDecodeDepth+1), 0xc0),
		append(bytes.Repeat([]byte("["), maxDecodeDepth+1), bytes.Repeat([]byte("]"), maxDecodeDepth+1)...),
		[]byte(`{"uid":"x","type":6,"data":["ev",1]}`),
		{0xd4, 0, 0}, // notepack's undefined
		{0xd6, 0xff, 0, 0, 0, 1},
		{},
	}
	for _, r := range real {
		out = append(out, r, r[:len(r)/2], r[:len(r)-1])
	}
	return out
}

// validUTF8 tells whether every string is UTF-8 (Node's are: msgpack
// strings carry any bytes, JSON does not).
func validUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// canonical encodes v with sorted map keys, so equal values give equal bytes.
func canonical(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("re-encode %#v: %v", v, err)
	}
	return buf.Bytes()
}

// FuzzDecodeMsgpack: any input decodes or is refused, never crashes; what
// decodes survives a round trip through our encoder unchanged.
func FuzzDecodeMsgpack(f *testing.F) {
	for _, s := range seeds(mustHex(nodeBroadcast), mustHex(nodeRequest), mustHex(nodeCluster)) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		if err := decodeMsgpack(b, &v); err != nil {
			return
		}
		if err := checkMsgpack(b); err != nil {
			t.Fatalf("decoded what the check refuses: %v", err)
		}
		enc, err := encodeMsgpack(v)
		if err != nil {
			return // e.g. a map key msgpack cannot encode back
		}
		var w any
		if err := decodeMsgpack(enc, &w); err != nil {
			t.Fatalf("our own encoding of %#v does not decode: %v", v, err)
		}
		if !bytes.Equal(canonical(t, v), canonical(t, w)) {
			t.Fatalf("round trip changed %#v into %#v", v, w)
		}
	})
}

// FuzzRedisBroadcast: the pub/sub broadcast decoder of the receive loop
// refuses or reads any payload; a broadcast encoded as Redis.Broadcast
// does comes back with its uid, event, arguments, rooms and flags.
func FuzzRedisBroadcast(f *testing.F) {
	for _, s := range seeds(mustHex(nodeBroadcast)) {
		f.Add(s, "uid", "ev", "room", "arg", true)
	}
	f.Fuzz(func(t *testing.T, payload []byte, uid, event, room, arg string, volatile bool) {
		if _, msg, _, err := decodeBroadcast(payload, "/"); err == nil && msg != nil && msg.AckID != -1 {
			t.Fatalf("a remote broadcast carries ack id %d", msg.AckID)
		}
		if !validUTF8(uid, event, room, arg) {
			return
		}
		msg := &Message{Type: 2, Data: []any{event, arg, []byte(arg)}, AckID: -1, Key: room}
		opts := Options{Rooms: []string{room}, Except: []string{arg}, Volatile: volatile}
		b, err := encodeMsgpack([]any{uid, packetOf("/", msg), wireFor(msg, opts)})
		if err != nil {
			t.Fatal(err)
		}
		gotUID, got, gotOpts, err := decodeBroadcast(b, "/")
		if err != nil || got == nil {
			t.Fatalf("own broadcast: %v %v", got, err)
		}
		if gotUID != uid || got.Type != 2 || !reflect.DeepEqual(got.Data, msg.Data) || got.Volatile != volatile || got.Key != room {
			t.Fatalf("round trip: uid %q msg %+v", gotUID, got)
		}
		if !slices.Equal(gotOpts.Rooms, opts.Rooms) || !slices.Equal(gotOpts.Except, opts.Except) {
			t.Fatalf("round trip opts %+v", gotOpts)
		}
		if _, other, _, err := decodeBroadcast(b, "/other"); err != nil || other != nil {
			t.Fatalf("another namespace's broadcast: %v %v", other, err)
		}
	})
}

// FuzzRedisRequest: requests and responses of the pub/sub protocol, JSON
// or msgpack; a response encoded as the adapter does round-trips.
func FuzzRedisRequest(f *testing.F) {
	for _, s := range seeds(mustHex(nodeRequest), []byte(`{"type":8,"requestId":"abc","clientCount":3}`)) {
		f.Add(s, "abc", int32(3))
	}
	f.Fuzz(func(t *testing.T, payload []byte, id string, n int32) {
		decodeRequest(payload)
		if !utf8.ValidString(id) {
			return
		}
		b, err := json.Marshal(map[string]any{"type": reqBroadcastClientCount, "requestId": id, "clientCount": n})
		if err != nil {
			t.Fatal(err)
		}
		v, err := decodeRequest(b)
		if c, _ := toInt(v["clientCount"]); err != nil || v["requestId"] != id || c != int64(n) {
			t.Fatalf("JSON response: %v %v", v, err)
		}
		b, err = encodeMsgpack(map[string]any{"type": reqBroadcastAck, "requestId": id, "packet": []byte(id)})
		if err != nil {
			t.Fatal(err)
		}
		v, err = decodeRequest(b)
		if p, _ := v["packet"].([]byte); err != nil || v["requestId"] != id || !bytes.Equal(p, []byte(id)) {
			t.Fatalf("msgpack response: %v %v", v, err)
		}
	})
}

// FuzzClusterMsg: sharded messages and streams requests (pub/sub); a
// broadcast encoded as the sharded link does round-trips, JSON and msgpack.
func FuzzClusterMsg(f *testing.F) {
	for _, s := range seeds(mustHex(nodeCluster), []byte(`{"uid":"u","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["ev"],"nsp":"/"},"opts":{"rooms":["r"],"except":[],"flags":{}}}}`)) {
		f.Add(s, "uid", "room", false)
	}
	f.Fuzz(func(t *testing.T, payload []byte, uid, room string, binary bool) {
		decodeClusterMsg(payload)
		if !validUTF8(uid, room) {
			return
		}
		data := []any{"ev", room}
		if binary {
			data = append(data, []byte(room))
		}
		m := clusterMsg{UID: uid, Nsp: "/", Type: cmBroadcast, Data: map[string]any{
			"packet": packetOf("/", &Message{Type: 2, Data: data, AckID: -1}),
			"opts":   toWire(Options{Rooms: []string{room}}),
		}}
		b, err := encodeClusterMsg(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeClusterMsg(b)
		if err != nil || got.UID != uid || got.Nsp != "/" || got.Type != cmBroadcast {
			t.Fatalf("round trip: %+v %v", got, err)
		}
		msg, ok := messageOf(got.Data["packet"], "/")
		if !ok || !slices.Equal(fromWire(got.Data["opts"]).Rooms, []string{room}) || len(msg.Data) != len(data) || msg.Data[1] != room {
			t.Fatalf("round trip data %+v", got.Data)
		}
		if binary && !bytes.Equal(msg.Data[2].([]byte), []byte(room)) {
			t.Fatalf("binary %v", msg.Data[2])
		}
	})
}

// FuzzStreamEntry: the fields of a stream entry as XREAD/XRANGE return
// them; an entry encoded as the streams link does round-trips.
func FuzzStreamEntry(f *testing.F) {
	f.Add("uid", "/", "3", nodeStreamData, "room")
	f.Add("uid", "/", "3", `{"packet":{"type":2,"data":["ev"],"nsp":"/"},"opts":{"rooms":[],"except":[],"flags":{}}}`, "")
	for _, s := range seeds() {
		f.Add("evil", "/", "3", base64.StdEncoding.EncodeToString(s), "r")
		f.Add("evil", "/", "3", string(s), "r")
	}
	f.Fuzz(func(t *testing.T, uid, nsp, typ, data, room string) {
		decodeStreamEntry(map[string]any{"uid": uid, "nsp": nsp, "type": typ, "data": data})
		if !utf8.ValidString(room) {
			return
		}
		n, _ := strconv.Atoi(typ)
		for _, bin := range []bool{false, true} {
			d := map[string]any{"rooms": []any{room}}
			if bin {
				d["bin"] = []byte(room)
			}
			values, err := encodeStreamEntry(clusterMsg{UID: uid, Nsp: nsp, Type: n, Data: d})
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeStreamEntry(values)
			if err != nil || got.UID != uid || got.Nsp != nsp || got.Type != n || !slices.Equal(strings_(got.Data["rooms"]), []string{room}) {
				t.Fatalf("round trip %v: %+v %v", values, got, err)
			}
			if b, _ := got.Data["bin"].([]byte); bin && !bytes.Equal(b, []byte(room)) {
				t.Fatalf("binary round trip %v", got.Data)
			}
		}
	})
}
