package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestDecodeEngine(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		typ   EngineType
		data  string
		err   error
	}{
		{"open", `0{"sid":"a"}`, EngineOpen, `{"sid":"a"}`, nil},
		{"ping", "2", EnginePing, "", nil},
		{"ping probe", "2probe", EnginePing, "probe", nil},
		{"pong", "3", EnginePong, "", nil},
		{"message", `42["a"]`, EngineMessage, `2["a"]`, nil},
		{"close", "1", EngineClose, "", nil},
		{"noop", "6", EngineNoop, "", nil},
		{"empty", "", 0, "", ErrEmpty},
		{"type 7", "7", 0, "", ErrEngineType},
		{"letter", "x", 0, "", ErrEngineType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, data, err := DecodeEngine([]byte(tc.frame))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if typ != tc.typ || string(data) != tc.data {
				t.Fatalf("got (%c, %q), want (%c, %q)", typ, data, tc.typ, tc.data)
			}
			if got := AppendEngine(nil, typ, data); string(got) != tc.frame {
				t.Fatalf("AppendEngine = %q, want %q", got, tc.frame)
			}
		})
	}
}

func TestDecodeOpen(t *testing.T) {
	o, err := DecodeOpen([]byte(`{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`))
	if err != nil {
		t.Fatal(err)
	}
	if o.SID != "lv_VI97HAXpY6yYWAAAC" || o.PingInterval != 25000 || o.PingTimeout != 20000 || o.MaxPayload != 1000000 || len(o.Upgrades) != 1 {
		t.Fatalf("got %+v", o)
	}
	for _, bad := range []string{``, `{`, `[]`, `{"sid":""}`, `{"sid":"a","pingInterval":0,"pingTimeout":1}`, `{"sid":"a","pingInterval":1}`} {
		if _, err := DecodeOpen([]byte(bad)); !errors.Is(err, ErrOpen) {
			t.Errorf("DecodeOpen(%q) err = %v, want ErrOpen", bad, err)
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Packet
	}{
		{"connect", "0", Packet{Type: Connect, Nsp: "/", ID: NoID}},
		{"connect auth", `0{"token":"x"}`, Packet{Type: Connect, Nsp: "/", ID: NoID, Data: []byte(`{"token":"x"}`)}},
		{"connect nsp", "0/admin,", Packet{Type: Connect, Nsp: "/admin", ID: NoID}},
		{"connect nsp no comma", "0/admin", Packet{Type: Connect, Nsp: "/admin", ID: NoID}},
		{"connect ack", `0{"sid":"abc"}`, Packet{Type: Connect, Nsp: "/", ID: NoID, Data: []byte(`{"sid":"abc"}`)}},
		{"connect ack nsp", `0/tenant-1,{"sid":"abc"}`, Packet{Type: Connect, Nsp: "/tenant-1", ID: NoID, Data: []byte(`{"sid":"abc"}`)}},
		{"disconnect", "1", Packet{Type: Disconnect, Nsp: "/", ID: NoID}},
		{"disconnect nsp", "1/admin,", Packet{Type: Disconnect, Nsp: "/admin", ID: NoID}},
		{"event", `2["hello",1]`, Packet{Type: Event, Nsp: "/", ID: NoID, Data: []byte(`["hello",1]`)}},
		{"event with id", `212["echo",{"a":1}]`, Packet{Type: Event, Nsp: "/", ID: 12, Data: []byte(`["echo",{"a":1}]`)}},
		{"event nsp id", `2/chat,7["join","r"]`, Packet{Type: Event, Nsp: "/chat", ID: 7, Data: []byte(`["join","r"]`)}},
		{"event root nsp spelled out", `2/,["x"]`, Packet{Type: Event, Nsp: "/", ID: NoID, Data: []byte(`["x"]`)}},
		{"ack", `30[{"ok":true}]`, Packet{Type: Ack, Nsp: "/", ID: 0, Data: []byte(`[{"ok":true}]`)}},
		{"ack nsp", `3/chat,123[]`, Packet{Type: Ack, Nsp: "/chat", ID: 123, Data: []byte(`[]`)}},
		{"connect error object", `4{"message":"unauthorized"}`, Packet{Type: ConnectError, Nsp: "/", ID: NoID, Data: []byte(`{"message":"unauthorized"}`)}},
		{"connect error string", `4/x,"Invalid namespace"`, Packet{Type: ConnectError, Nsp: "/x", ID: NoID, Data: []byte(`"Invalid namespace"`)}},
		{"binary event", `51-["up",{"_placeholder":true,"num":0}]`, Packet{Type: BinaryEvent, Attachments: 1, Nsp: "/", ID: NoID, Data: []byte(`["up",{"_placeholder":true,"num":0}]`)}},
		{"binary ack nsp id", `62-/a,9[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, Packet{Type: BinaryAck, Attachments: 2, Nsp: "/a", ID: 9, Data: []byte(`[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.in))
			if err != nil {
				t.Fatalf("Decode(%q): %v", tc.in, err)
			}
			if got.Type != tc.want.Type || got.Attachments != tc.want.Attachments || got.Nsp != tc.want.Nsp ||
				got.ID != tc.want.ID || !bytes.Equal(got.Data, tc.want.Data) {
				t.Fatalf("Decode(%q) = %+v (data %q), want %+v (data %q)", tc.in, got, got.Data, tc.want, tc.want.Data)
			}
			// Re-encoding gives back a packet that decodes the same.
			again, err := Decode(Append(nil, got))
			if err != nil || again.Type != got.Type || again.Nsp != got.Nsp || again.ID != got.ID ||
				again.Attachments != got.Attachments || !bytes.Equal(again.Data, got.Data) {
				t.Fatalf("round trip of %q: %+v, %v", tc.in, again, err)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  error
	}{
		{"empty", "", ErrEmpty},
		{"type 7", `7["a"]`, ErrPacketType},
		{"not a digit", `x["a"]`, ErrPacketType},
		{"binary without count", `5-["a"]`, ErrAttachments},
		{"binary without dash", `51["a"]`, ErrAttachments},
		{"binary zero", `50-["a"]`, ErrAttachments},
		{"binary huge count", `59999999-["a"]`, ErrAttachments},
		{"id overflow", `21234567890123456789["a"]`, ErrID},
		{"event object", `2{"a":1}`, ErrPayload},
		{"event empty array", `2[]`, ErrPayload},
		{"event no payload", `2`, ErrPayload},
		{"event truncated", `2["a"`, ErrPayload},
		{"event nsp no comma", `2/chat`, ErrPayload},
		{"ack object", `31{}`, ErrPayload},
		{"connect array", `0["a"]`, ErrPayload},
		{"disconnect payload", `1{}`, ErrPayload},
		{"connect error array", `4[1]`, ErrPayload},
		{"garbage after id", `21x`, ErrPayload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode([]byte(tc.in)); !errors.Is(err, tc.err) {
				t.Fatalf("Decode(%q) err = %v, want %v", tc.in, err, tc.err)
			}
		})
	}
}

func TestAppendHeaderAndEvent(t *testing.T) {
	tests := []struct {
		name  string
		typ   PacketType
		nsp   string
		id    int64
		event string
		args  []string
		want  string
	}{
		{"event root", Event, "/", NoID, "tick", []string{`{"t":1}`}, `2["tick",{"t":1}]`},
		{"event empty nsp", Event, "", NoID, "tick", nil, `2["tick"]`},
		{"event with ack", Event, "/", 5, "join", []string{`"room"`}, `25["join","room"]`},
		{"event nsp ack", Event, "/chat", 0, "echo", []string{`1`, `"b"`}, `2/chat,0["echo",1,"b"]`},
		{"escaped name", Event, "/", NoID, "a\"b\n", nil, `2["a\"b\n"]`},
		{"unicode name", Event, "/", NoID, "é", nil, `2["é"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := make([][]byte, len(tc.args))
			for i, a := range tc.args {
				args[i] = []byte(a)
			}
			got := AppendEvent(AppendHeader(nil, tc.typ, tc.nsp, tc.id), tc.event, args...)
			if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			p, err := Decode(got)
			if err != nil {
				t.Fatal(err)
			}
			name, _, err := EventName(p.Data)
			if err != nil || string(name) != tc.event {
				t.Fatalf("EventName = %q, %v; want %q", name, err, tc.event)
			}
		})
	}
	if got := AppendHeader(nil, Connect, "/admin", NoID); string(got) != "0/admin," {
		t.Fatalf("connect header = %q", got)
	}
}

func TestEventName(t *testing.T) {
	tests := []struct {
		in, name, args string
		ok             bool
	}{
		{`["tick",{"t":1,"s":2}]`, "tick", `{"t":1,"s":2}`, true},
		{`["tick"]`, "tick", "", true},
		{`[ "a" , 1, 2 ]`, "a", ` 1, 2 `, true},
		{`["a\"b",1]`, `a"b`, `1`, true},
		{`["a\\",1]`, `a\`, `1`, true},
		{`[42,"x"]`, "42", `"x"`, true},
		{`[-1.5e3]`, "-1.5e3", "", true},
		{`[]`, "", "", false},
		{`[{"a":1}]`, "", "", false},
		{`["unterminated]`, "", "", false},
		{`["a" 1]`, "", "", false},
		{`{"a":1}`, "", "", false},
		{`[`, "", "", false},
		{``, "", "", false},
	}
	for _, tc := range tests {
		name, args, err := EventName([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("EventName(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && (string(name) != tc.name || string(args) != tc.args) {
			t.Errorf("EventName(%q) = %q, %q; want %q, %q", tc.in, name, args, tc.name, tc.args)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"0", `0{"sid":"x"}`, "0/admin,", `2["a",1]`, `2/chat,12["a",{"b":[1,2]}]`,
		`30[{"ok":true}]`, `51-["up",{"_placeholder":true,"num":0}]`, `62-/a,9[{"_placeholder":true,"num":0}]`,
		`4{"message":"x"}`, "1/x,", `2["a"`, "5-", "2/", "29999999999999999999[]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Decode(in)
		if err != nil {
			return
		}
		again, err := Decode(Append(nil, p))
		if err != nil {
			t.Fatalf("re-encoded %q of %q does not decode: %v", Append(nil, p), in, err)
		}
		if again.Type != p.Type || again.Nsp != p.Nsp || again.ID != p.ID || again.Attachments != p.Attachments || !bytes.Equal(again.Data, p.Data) {
			t.Fatalf("round trip of %q: %+v != %+v", in, again, p)
		}
		if p.Type == Event {
			_, _, _ = EventName(p.Data)
		}
	})
}
