package clients

import (
	"bytes"
	"testing"
)

// FuzzPollingPayload feeds decodePayload arbitrary polling bodies. It must
// not panic; its output is bounded by its input; and what it decodes
// encodes back (encodeMessage) to a payload that decodes to the same
// messages.
//
//	go test -run '^$' -fuzz FuzzPollingPayload -fuzztime 30s ./server/
func FuzzPollingPayload(f *testing.F) {
	for _, seed := range []string{
		``,                               // empty body
		`40`,                             // CONNECT
		`42["echo","hi"]`,                // one text event
		"40\x1e42[\"echo\",\"hi\"]\x1e3", // several, with a pong
		`451-["up",{"_placeholder":true,"num":0}]` + "\x1ebAQID", // binary event + attachment
		"bAAEC/w==\x1eb\x1e4ok",                                  // binary with padding, an empty binary, text
		"42[\"a\"]\x1e",                                          // trailing separator (split input)
		"\x1e\x1e",                                               // only separators
		"b!!notbase64",                                           // bad base64
		"bQUJD\nRA==",                                            // base64 with a newline
		"bQQ",                                                    // base64 missing its padding
		"4\xff\xfe\x1e4é",                                        // invalid and multi-byte UTF-8
		"2probe\x1e5\x1e6\x1e1",                                  // control packets
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := decodePayload(body)
		if err != nil {
			if msgs != nil {
				t.Fatalf("error %v with %d messages", err, len(msgs))
			}
			if !bytes.Contains(body, []byte{'b'}) {
				t.Fatalf("error %v on a payload with no binary message", err)
			}
			return
		}
		if len(body) == 0 {
			if len(msgs) != 0 {
				t.Fatalf("empty body gave %d messages", len(msgs))
			}
			return
		}
		if want := bytes.Count(body, []byte{recordSep}) + 1; len(msgs) != want {
			t.Fatalf("%d messages, want %d (separators + 1)", len(msgs), want)
		}
		total := 0
		for _, m := range msgs {
			total += len(m.data)
			if !m.binary && (bytes.IndexByte(m.data, recordSep) >= 0 || (len(m.data) > 0 && m.data[0] == 'b')) {
				t.Fatalf("text message %q holds a separator or starts with b", m.data)
			}
		}
		if total > len(body) {
			t.Fatalf("decoded %d bytes from a %d-byte body", total, len(body))
		}

		// Round trip: encode what was decoded, decode it again.
		var buf bytes.Buffer
		for i, m := range msgs {
			if i > 0 {
				buf.WriteByte(recordSep)
			}
			encodeMessage(&buf, m.data, m.binary)
		}
		again, err := decodePayload(buf.Bytes())
		if err != nil {
			t.Fatalf("re-encoded payload %q does not decode: %v", buf.Bytes(), err)
		}
		if len(again) != len(msgs) {
			t.Fatalf("round trip: %d messages, want %d", len(again), len(msgs))
		}
		for i := range again {
			if again[i].binary != msgs[i].binary || !bytes.Equal(again[i].data, msgs[i].data) {
				t.Fatalf("round trip: message %d is %q (binary %v), want %q (binary %v)", i, again[i].data, again[i].binary, msgs[i].data, msgs[i].binary)
			}
		}
	})
}
