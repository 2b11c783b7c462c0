package namespaces

import (
	"errors"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

//	go test -run '^$' -fuzz FuzzDecodeMsgpackPacket -fuzztime 60s ./namespaces

// FuzzDecodeMsgpackPacket: decoding untrusted bytes never panics and fails
// only with packet errors; what decodes encodes back (as the server would
// answer) to a packet that decodes to the same fields and values.
func FuzzDecodeMsgpackPacket(f *testing.F) {
	seeds := []map[string]any{
		{"type": 0, "nsp": "/"},
		{"type": 0, "nsp": "/admin", "data": map[string]any{"token": "x", "pid": "p", "offset": "1-0"}},
		{"type": 1, "nsp": "/chat"},
		{"type": 2, "nsp": "/", "data": []any{"hello", 1, 2.5, true, nil, "é€😀"}, "options": map[string]any{"compress": true}},
		{"type": 2, "nsp": "/", "id": 12, "data": []any{"b", []byte{1, 2, 3}, map[string]any{"a": []any{[]byte{}}}}},
		{"type": 3, "nsp": "/x", "id": 4, "data": []any{map[string]any{"ok": true}}},
		{"type": 4, "nsp": "/", "data": map[string]any{"message": "x"}},
		{"type": 5, "nsp": "/", "data": []any{"e"}},
		{"type": 2, "nsp": 1, "data": []any{"e"}},
		{"type": 2.5, "nsp": "/"},
	}
	for _, s := range seeds {
		b, err := msgpack.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x81, 0xa4, 'd', 'a', 't', 'a', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x82, 0xa4, 't', 'y', 'p', 'e', 0x02, 0xa4, 'd', 'a', 't', 'a', 0x92, 0xa1, 'e', 0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0x82, 0xa4, 't', 'y', 'p', 'e', 0x02, 0xa4, 'd', 'a', 't', 'a', 0x92, 0xa1, 'e', 0xd4, 0x00, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeMsgpackPacket(b)
		if err != nil {
			if !errors.Is(err, errPacket) {
				t.Fatalf("error %v is not a packet error", err)
			}
			return
		}
		var data any
		switch p.typ {
		case typeConnect:
			if p.auth != nil {
				data = p.auth
			}
		case typeEvent, typeAck:
			if p.vals == nil {
				t.Fatal("EVENT or ACK without values")
			}
			data = p.vals
		case typeDisconnect:
		default:
			t.Fatalf("type %d accepted", p.typ)
		}
		if checkEncodable(data) != nil {
			return // NaN or ±Inf: not sent back as they came
		}
		out, err := encodeMsgpackPacket(p.typ, p.nsp, p.id, data)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		q, err := decodeMsgpackPacket(out)
		if err != nil {
			t.Fatalf("re-encoded packet does not decode: %v", err)
		}
		if q.typ != p.typ || q.nsp != p.nsp || q.id != p.id || !reflect.DeepEqual(q.vals, p.vals) || !reflect.DeepEqual(q.auth, p.auth) {
			t.Fatalf("round trip changed the packet:\n%#v\n%#v", p, q)
		}
	})
}
