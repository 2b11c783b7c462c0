package namespaces

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkParser compares the two parsers on the packets every broadcast
// encodes and every incoming event decodes: an EVENT with one small
// object, and one with a 1 KiB binary argument (for JSON: a text packet
// with a placeholder and an attachment).
//
//	go test -run '^$' -bench Parser -benchmem -count 3 ./namespaces
func BenchmarkParser(b *testing.B) {
	small := []any{"msg", map[string]any{"text": "a 100-byte message body, padded out to about one hundred bytes", "n": 1}}
	bin := []any{"file", map[string]any{"name": "a.bin"}, make([]byte, 1024)}
	for _, c := range []struct {
		name string
		data []any
	}{{"small", small}, {"binary", bin}} {
		b.Run("encode/json/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				raw, bins, err := encodeData(c.data)
				if err != nil {
					b.Fatal(err)
				}
				_ = encodePacket(typeEvent, "/", -1, raw, len(bins))
			}
		})
		b.Run("encode/msgpack/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encodeMsgpackPacket(typeEvent, "/", -1, c.data); err != nil {
					b.Fatal(err)
				}
			}
		})
		raw, bins, _ := encodeData(c.data)
		text := encodePacket(typeEvent, "/", -1, raw, len(bins))[1:]
		b.Run("decode/json/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := decodePacket(text)
				if err != nil {
					b.Fatal(err)
				}
				if len(bins) > 0 { // as Client.Text and Binary keep them
					p.data = append([]byte(nil), p.data...)
					for _, a := range bins {
						p.bins = append(p.bins, append([]byte(nil), a...))
					}
				}
				if _, err := p.args(); err != nil {
					b.Fatal(err)
				}
			}
		})
		wire, err := msgpack.Marshal(map[string]any{"type": typeEvent, "nsp": "/", "data": c.data})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("decode/msgpack/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeMsgpackPacket(wire); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
