package namespaces

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Run a target for longer with e.g.
//
//	go test -run '^$' -fuzz FuzzDecodePacket -fuzztime 60s ./namespaces
//	go test -run '^$' -fuzz FuzzClientFrames -fuzztime 60s ./namespaces

// decodeSeeds are real packets of every type, and hostile ones.
var decodeSeeds = []string{
	// CONNECT, with namespaces and auth.
	"0", `0{"token":"x"}`, `0/admin,{"token":"x","pid":"p","offset":"1-0"}`, "0/a,",
	// DISCONNECT.
	"1", "1/admin,",
	// EVENT: namespaces, ack ids, nested values, unicode.
	`2["hello"]`, `2["e",1,{"a":[1,2,{"b":null}]},"é€😀"]`, `2/chat,12["m",true]`, `21["e"]`, `2007["e"]`,
	// ACK.
	`3/a,4[1]`, `312["ok",{"x":1}]`, `30[]`,
	// BINARY_EVENT and BINARY_ACK with placeholders.
	`51-["b",{"_placeholder":true,"num":0}]`,
	`52-/x,9["f",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":1}]]`,
	`61-/x,7[{"_placeholder":true,"num":0}]`, `50-["zero"]`, `5001-["lead"]`,
	// Hostile: unknown types, truncation, bad counts, huge ids, bad JSON,
	// placeholders out of range, server-only types, deep nesting.
	"", "7", "9", "4{}", `4{"message":"x"}`, "5", "6-", "5-[]", "599999-[]", "5101-[]", "5100-[]",
	`51-["b",{"_placeholder":true,"num":1}]`, `51-["b",{"_placeholder":true,"num":-1}]`,
	`51-["b",{"_placeholder":true,"num":0.5}]`, `51-["b",{"_placeholder":"yes","num":0}]`,
	`21234567890123456["x"]`, `2123456789012345["x"]`, `2/x,["e"`, `2["unterminated`, `2{"a":1}`,
	`0"str"`, `1["x"]`, `3["no id"]`, "2/", "2/,", `2/,["e"]`, "0/a", `2 ["e"]`, `21 ["e"]`,
	"2" + strings.Repeat("[", 500) + strings.Repeat("]", 500),
	"0/" + strings.Repeat("n", 300) + ",{}",
}

// FuzzDecodePacket: decoding untrusted bytes never panics and fails only
// with packet errors; what decodes re-encodes to a packet that decodes to
// the same fields; an event's arguments decode or fail with a packet
// error, placeholders included.
func FuzzDecodePacket(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePacket(b)
		if err != nil {
			if !errors.Is(err, errPacket) {
				t.Fatalf("error %v is not a packet error", err)
			}
			return
		}
		if p.attachments < 0 || p.attachments > maxAttachments {
			t.Fatalf("%d attachments accepted", p.attachments)
		}
		if p.nsp == "" || p.nsp[0] != '/' || strings.Contains(p.nsp, ",") {
			t.Fatalf("namespace %q", p.nsp)
		}
		// Re-encode: our encoder names a binary packet by its attachment
		// count, so a "5"/"6" packet with none comes back as "2"/"3".
		typ, want := p.typ, p.typ
		switch {
		case typ == typeBinaryEvent:
			typ = typeEvent
		case typ == typeBinaryAck:
			typ = typeAck
		}
		if p.attachments == 0 {
			want = typ
		}
		wire := encodePacket(typ, p.nsp, p.id, p.data, p.attachments)
		q, err := decodePacket(wire[1:])
		if err != nil {
			t.Fatalf("%q re-encoded as %q: %v", b, wire, err)
		}
		if q.typ != want || q.nsp != p.nsp || q.id != p.id || q.attachments != p.attachments || !bytes.Equal(q.data, p.data) {
			t.Fatalf("%q re-encoded as %q decodes to %+v, want %+v", b, wire, q, p)
		}
		if p.typ == typeConnect || p.typ == typeDisconnect {
			return
		}
		// Arguments, with the announced attachments.
		for i := 0; i < p.attachments; i++ {
			p.bins = append(p.bins, []byte{byte(i)})
		}
		args, err := p.args()
		if err != nil {
			if !errors.Is(err, errPacket) {
				t.Fatalf("args error %v is not a packet error", err)
			}
			return
		}
		// The arguments encode back to JSON with the same attachments.
		data, bins, err := encodeData(args)
		if err != nil {
			t.Fatalf("arguments %v do not encode: %v", args, err)
		}
		if len(bins) > 0 && p.attachments == 0 {
			t.Fatalf("%d attachments out of a packet that had none", len(bins))
		}
		for _, bin := range bins {
			if len(bin) != 1 || int(bin[0]) >= p.attachments {
				t.Fatalf("attachment %v is not one of the packet's", bin)
			}
		}
		r := packet{data: data, bins: bins}
		if _, err := r.args(); err != nil {
			t.Fatalf("re-encoded arguments %s: %v", data, err)
		}
	})
}

// frames encodes a sequence of Engine.IO messages for FuzzClientFrames:
// per message a kind byte ('t' text, anything else binary), a length byte,
// then that many bytes.
func frames(msgs ...string) []byte {
	var b []byte
	for _, m := range msgs {
		kind := byte('t')
		if strings.HasPrefix(m, "\x00") {
			kind, m = 'b', m[1:]
		}
		if len(m) > 255 {
			panic("seed message over 255 bytes")
		}
		b = append(b, kind, byte(len(m)))
		b = append(b, m...)
	}
	return b
}

// FuzzClientFrames feeds a sequence of text and binary messages through
// Client.Text and Binary, as a transport does, to a client connected
// to "/" (dynamic namespaces "/d-<digit>" exist too). After each message
// the bytes held for a packet awaiting attachments are exactly its text
// and attachments so far, and at most the bound; binary data is only
// held for a namespace the client is connected to; after an error the
// transport closes the connection, and nothing of it stays: no socket,
// no dynamic namespace.
func FuzzClientFrames(f *testing.F) {
	const maxPacket = 600
	bin := func(n int) string { return "\x00" + strings.Repeat("\xab", n) }
	f.Add(frames(`2["echo",1]`))
	f.Add(frames(`51-["echo",{"_placeholder":true,"num":0}]`, bin(3)))
	f.Add(frames(`21["echo",{"_placeholder":true,"num":0}]`))
	f.Add(frames(`52-1["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, bin(10), bin(0)))
	f.Add(frames(`65-1["ack"]`, bin(200), bin(200), bin(200), bin(200)))                        // over the bound
	f.Add(frames(`53-["echo",{"_placeholder":true,"num":2}]`, bin(1), bin(1), bin(1)))          // placeholder mismatch
	f.Add(frames(`51-/d-1,["echo",{"_placeholder":true,"num":0}]`, bin(5)))                     // namespace not joined
	f.Add(frames(`0/d-1,`, `51-/d-1,["echo",{"_placeholder":true,"num":0}]`, bin(5), "1/d-1,")) // joined, then left
	f.Add(frames(`0/d-2,{"deny":true}`, `0/d-3,`, `2/d-3,["echo"]`))
	f.Add(frames(`51-["echo",{"_placeholder":true,"num":0}]`, `2["text while pending"]`))
	f.Add(frames(bin(4)))                               // attachment without a header
	f.Add(frames(`5100-["echo"]`, bin(1)))              // at the count bound
	f.Add(frames(`5101-["echo"]`))                      // over the count bound
	f.Add(frames(`01-{}`, bin(1)))                      // CONNECT with attachments
	f.Add(frames("1", `2["after disconnect"]`, bin(1))) // left "/", then binary
	f.Add(frames(`51-["e"`, bin(1)))                    // truncated header
	f.Fuzz(func(t *testing.T, in []byte) {
		srv := New(Config{RecoveryWindow: -1, ConnectTimeout: -1, MaxPacketSize: maxPacket, MaxDynamicNamespaces: 3})
		defer srv.Close()
		echo := func(ev *Event) { _ = ev.Ack(ev.Args...) }
		srv.Of("/").On("echo", echo)
		srv.OfPattern(mustRe(`^/d-[0-9]$`), func(n *Namespace) {
			n.Use(func(s *Socket) error {
				if s.Handshake().Auth["deny"] == true {
					return &ConnectError{Message: "denied"}
				}
				return nil
			})
			n.On("echo", echo)
		})
		conn := newFakeConn()
		c := srv.NewClient(conn, nil)
		if err := c.Text([]byte("0")); err != nil {
			t.Fatal(err)
		}
		for len(in) >= 2 {
			kind, n := in[0], int(in[1])
			in = in[2:]
			n = min(n, len(in))
			msg := in[:n]
			in = in[n:]
			var err error
			if kind == 't' {
				err = c.Text(msg)
			} else {
				err = c.Binary(msg)
			}
			if err != nil {
				if !errors.Is(err, errPacket) && !errors.Is(err, ErrPacketTooLarge) {
					t.Fatalf("error %v is neither a packet error nor ErrPacketTooLarge", err)
				}
				break // the transport closes the connection
			}
			if p := c.pending; p != nil {
				held := len(p.data)
				for _, b := range p.bins {
					held += len(b)
				}
				if held != p.size || p.size > maxPacket || len(p.bins) >= p.attachments || p.attachments > maxAttachments {
					t.Fatalf("pending packet holds %d bytes (counted %d, bound %d), %d of %d attachments", held, p.size, maxPacket, len(p.bins), p.attachments)
				}
				c.mu.Lock()
				joined := c.sockets[p.nsp] != nil
				c.mu.Unlock()
				if !joined {
					t.Fatalf("binary data held for %q, a namespace the client is not connected to", p.nsp)
				}
			}
			conn.texts() // what a writer would take
		}
		c.Close(0)
		for _, n := range srv.Namespaces() {
			if n.Len() != 0 {
				t.Fatalf("namespace %s keeps %d sockets after the connection closed", n.Name(), n.Len())
			}
			if n.dynamic {
				t.Fatalf("dynamic namespace %s stays after the connection closed", n.Name())
			}
		}
	})
}
