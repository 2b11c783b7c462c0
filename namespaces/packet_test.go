package namespaces

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		in      string
		typ     int
		nsp     string
		id      int64
		attach  int
		data    string
		wantErr bool
	}{
		{in: "0", typ: 0, nsp: "/", id: -1},
		{in: `0/admin,{"token":"x"}`, typ: 0, nsp: "/admin", id: -1, data: `{"token":"x"}`},
		{in: "1/admin,", typ: 1, nsp: "/admin", id: -1},
		{in: `2["hello",1]`, typ: 2, nsp: "/", id: -1, data: `["hello",1]`},
		{in: `2/chat,12["m"]`, typ: 2, nsp: "/chat", id: 12, data: `["m"]`},
		{in: `312["ok"]`, typ: 3, nsp: "/", id: 12, data: `["ok"]`},
		{in: `51-["b",{"_placeholder":true,"num":0}]`, typ: 5, nsp: "/", id: -1, attach: 1, data: `["b",{"_placeholder":true,"num":0}]`},
		{in: `61-/x,7[{"_placeholder":true,"num":0}]`, typ: 6, nsp: "/x", id: 7, attach: 1, data: `[{"_placeholder":true,"num":0}]`},
		{in: "", wantErr: true},
		{in: "9", wantErr: true},
		{in: `2{"a":1}`, wantErr: true},
		{in: `2["unterminated`, wantErr: true},
		{in: `0"str"`, wantErr: true},
		{in: `1["x"]`, wantErr: true},
		{in: `3["no id"]`, wantErr: true},
		{in: `4{"message":"x"}`, wantErr: true},
		{in: `5-["x"]`, wantErr: true},
		{in: `599999-["x"]`, wantErr: true},
		{in: `21234567890123456["x"]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := decodePacket([]byte(tt.in))
			if tt.wantErr {
				if err == nil || !errors.Is(err, errPacket) {
					t.Fatalf("want a packet error, got %v (%+v)", err, p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.typ != tt.typ || p.nsp != tt.nsp || p.id != tt.id || p.attachments != tt.attach || string(p.data) != tt.data {
				t.Fatalf("got %+v", p)
			}
		})
	}
}

func TestEncodeBinaryRoundTrip(t *testing.T) {
	vals := []any{"file", map[string]any{"name": "a", "body": []byte{0, 1, 2}}, []any{[]byte("x"), 2.5}, json.RawMessage(`{"raw":true}`)}
	data, bins, err := encodeData(vals)
	if err != nil {
		t.Fatal(err)
	}
	if len(bins) != 2 {
		t.Fatalf("%d attachments, want 2", len(bins))
	}
	if _, ok := vals[1].(map[string]any)["body"].([]byte); !ok {
		t.Fatal("encoding changed the caller's values")
	}
	text := encodePacket(typeEvent, "/x", 3, data, len(bins))
	if want := `452-/x,3`; string(text[:len(want)]) != want {
		t.Fatalf("header %q, want %q", text[:len(want)], want)
	}
	p, err := decodePacket(text[1:])
	if err != nil {
		t.Fatal(err)
	}
	p.bins = bins
	args, err := p.args()
	if err != nil {
		t.Fatal(err)
	}
	if b := args[1].(map[string]any)["body"].([]byte); string(b) != "\x00\x01\x02" {
		t.Fatalf("attachment %q", b)
	}
	if b := args[2].([]any)[0].([]byte); string(b) != "x" {
		t.Fatalf("attachment %q", b)
	}
	if args[3].(map[string]any)["raw"] != true {
		t.Fatalf("raw message lost: %v", args[3])
	}
}

func TestBadPlaceholder(t *testing.T) {
	p, err := decodePacket([]byte(`51-["b",{"_placeholder":true,"num":3}]`))
	if err != nil {
		t.Fatal(err)
	}
	p.bins = [][]byte{{1}}
	if _, err := p.args(); !errors.Is(err, errPacket) {
		t.Fatalf("want a packet error, got %v", err)
	}
}

func TestOffsetAfter(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"2", "1", true}, {"1", "2", false}, {"a", "9", true}, {"1", "1", false},
		{"1795732004283-1", "1795732004283-0", true}, {"1795732004283-0", "1795732004283-0", false},
		{"1795732004282-9", "1795732004283-0", false}, {"x", "", true}, {"", "1", false}, {"?!", "1", true},
	}
	for _, tt := range tests {
		if got := offsetAfter(tt.a, tt.b); got != tt.want {
			t.Errorf("offsetAfter(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
