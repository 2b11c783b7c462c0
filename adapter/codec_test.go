package adapter

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// hostile are backplane payloads that once ended every node: lengths that
// claim gigabytes, nesting that overflows the stack, a cut message.
func hostile() map[string][]byte {
	deep := bytes.Repeat([]byte{0x91}, 10_000_000) // 10,000,000 nested arrays
	deep = append(deep, 0xc0)
	deepMap := bytes.Repeat([]byte{0x81, 0xa1, 'a'}, 1_000_000)
	deepMap = append(deepMap, 0xc0)
	valid, err := encodeMsgpack([]any{"uid", map[string]any{"type": 2, "data": []any{"ev", "x"}, "nsp": "/"}, toWire(Options{})})
	if err != nil {
		panic(err)
	}
	return map[string][]byte{
		"array32 of 4G":          []byte("\xdd\xff\xff\xff\xff"),
		"map32 of 4G":            []byte("\xdf\xff\xff\xff\xff"),
		"map with array32 value": []byte("\x81\xa1a\xdd\xff\xff\xff\xff"),
		"str32 of 4G":            []byte("\xdb\xff\xff\xff\xff"),
		"bin32 of 4G":            []byte("\xc6\xff\xff\xff\xff"),
		"ext32 of 4G":            []byte("\xc9\xff\xff\xff\xff\x01"),
		"array16 in array32":     []byte("\x93\xa1u\xdc\xff\xff"),
		"10,000,000 deep arrays": deep,
		"1,000,000 deep maps":    deepMap,
		"truncated broadcast":    valid[:len(valid)-3],
		"trailing bytes":         append(append([]byte{}, valid...), 0xc0),
		"type byte 0xc1":         {0xc1},
		"empty":                  {},
	}
}

func TestDecodeMsgpackRefusesHostileInput(t *testing.T) {
	for name, b := range hostile() {
		t.Run(name, func(t *testing.T) {
			var v any
			if err := decodeMsgpack(b, &v); !errors.Is(err, ErrUndecodable) {
				t.Fatalf("decodeMsgpack: %v, want ErrUndecodable", err)
			}
			if _, _, _, err := decodeBroadcast(b, "/"); !errors.Is(err, ErrUndecodable) {
				t.Fatalf("decodeBroadcast: %v", err)
			}
			if _, err := decodeRequest(b); !errors.Is(err, ErrUndecodable) {
				t.Fatalf("decodeRequest: %v", err)
			}
			if _, err := decodeClusterMsg(b); !errors.Is(err, ErrUndecodable) {
				t.Fatalf("decodeClusterMsg: %v", err)
			}
			data := base64.StdEncoding.EncodeToString(b)
			if len(b) == 0 {
				return // an entry without data is valid
			}
			if _, err := decodeStreamEntry(map[string]any{"uid": "u", "nsp": "/", "type": "3", "data": data}); !errors.Is(err, ErrUndecodable) {
				t.Fatalf("decodeStreamEntry: %v", err)
			}
		})
	}
}

func TestDecodeMsgpackLimits(t *testing.T) {
	t.Run("depth at the limit decodes", func(t *testing.T) {
		b := append(bytes.Repeat([]byte{0x91}, maxDecodeDepth), 0xc0)
		var v any
		if err := decodeMsgpack(b, &v); err != nil {
			t.Fatal(err)
		}
		b = append([]byte{0x91}, b...)
		if err := decodeMsgpack(b, &v); !errors.Is(err, ErrUndecodable) {
			t.Fatalf("one level more: %v", err)
		}
	})
	t.Run("too many values", func(t *testing.T) {
		n := maxDecodeElements // with the array itself: one value too many
		b := append([]byte{0xdd, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, bytes.Repeat([]byte{0x01}, n)...)
		var v any
		if err := decodeMsgpack(b, &v); !errors.Is(err, ErrUndecodable) {
			t.Fatalf("%v", err)
		}
		n--
		b = append([]byte{0xdd, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, bytes.Repeat([]byte{0x01}, n)...)
		if err := decodeMsgpack(b, &v); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		b := append([]byte{0xc6, 0x01, 0, 0, 1}, make([]byte, maxDecodeBytes-4)...)
		var v any
		if err := decodeMsgpack(b, &v); !errors.Is(err, ErrUndecodable) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("every msgpack type walks", func(t *testing.T) {
		v := map[string]any{"s": strings.Repeat("x", 70_000), "b": []byte("bin"), "i": int64(-1 << 40),
			"u": uint64(1 << 63), "f": 1.5, "f32": float32(2.5), "t": true, "n": nil,
			"a": []any{int8(-5), uint16(600), int32(-70_000), map[string]any{}}}
		b, err := encodeMsgpack(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkMsgpack(b); err != nil {
			t.Fatal(err)
		}
		// notepack's undefined (fixext1 type 0) and a timestamp ext.
		for _, ext := range [][]byte{{0xd4, 0, 0}, {0xd6, 0xff, 0, 0, 0, 1}, {0xc7, 2, 5, 1, 2}} {
			if err := checkMsgpack(ext); err != nil {
				t.Fatalf("% x: %v", ext, err)
			}
		}
	})
}

func TestDecodeJSONLimits(t *testing.T) {
	deep := strings.Repeat("[", 10_000_000) + strings.Repeat("]", 10_000_000)
	for name, s := range map[string]string{
		"10,000,000 deep arrays":     deep,
		"deep request":               `{"type":6,"data":` + deep + `}`,
		"more values than the limit": "[" + strings.Repeat("0,", maxDecodeElements) + "0]",
		"larger than the size limit": `{"s":"` + strings.Repeat("x", maxDecodeBytes) + `"}`,
		"truncated":                  `{"type":6,"data":["a"`,
		"unterminated string":        `{"s":"` + strings.Repeat("[", maxDecodeDepth+1) + `"`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeRequest([]byte(s)); !errors.Is(err, ErrUndecodable) {
				t.Fatalf("decodeRequest: %v", err)
			}
			if _, err := decodeClusterMsg([]byte(s)); !errors.Is(err, ErrUndecodable) {
				t.Fatalf("decodeClusterMsg: %v", err)
			}
		})
	}
	t.Run("brackets and quotes inside strings do not count", func(t *testing.T) {
		s := `{"s":"` + strings.Repeat(`[\"{`, maxDecodeDepth+1) + `","type":6}`
		v, err := decodeRequest([]byte(s))
		if err != nil || v["type"] != 6.0 {
			t.Fatalf("%v %v", v, err)
		}
	})
}
