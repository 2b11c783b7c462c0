package bench

import (
	"encoding/json"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, size := range []int{0, 20, 100, 1000} {
		p := appendPayload(nil, 123456789, 42, size)
		if !json.Valid(p) {
			t.Fatalf("size %d: invalid JSON %s", size, p)
		}
		if size >= 40 && len(p) != size {
			t.Errorf("size %d: got %d bytes", size, len(p))
		}
		ts, seq, ok := parsePayload(p)
		if !ok || ts != 123456789 || seq != 42 {
			t.Errorf("size %d: parse = %d %d %v", size, ts, seq, ok)
		}
	}
}

func TestParsePayload(t *testing.T) {
	tests := []struct {
		name string
		in   string
		t, s int64
		ok   bool
	}{
		{"ours", `{"t":5,"s":6,"p":"xx"}`, 5, 6, true},
		{"sorted keys", `{"p":"x","s":2,"t":1}`, 1, 2, true},
		{"recovery offset after", `{"t":5,"s":6,"p":"x"},"MzQ1Njc4"`, 5, 6, true},
		{"float from a float64 round trip", `{"s":3,"t":1.2345e+09}`, 1234500000, 3, true},
		{"spaces and nesting", `{ "x" : {"t":9,"s":[1,"}"]} , "t" : 7 , "s" : 8 }`, 7, 8, true},
		{"escaped key", `{"a\"b":1,"t":1,"s":2}`, 1, 2, true},
		{"missing s", `{"t":1}`, 0, 0, false},
		{"not an object", `[1,2]`, 0, 0, false},
		{"empty", ``, 0, 0, false},
		{"truncated", `{"t":1,"s":`, 0, 0, false},
		{"string t", `{"t":"1","s":2}`, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, s, ok := parsePayload([]byte(tc.in))
			if ok != tc.ok || (ok && (ts != tc.t || s != tc.s)) {
				t.Fatalf("parsePayload(%s) = %d, %d, %v; want %d, %d, %v", tc.in, ts, s, ok, tc.t, tc.s, tc.ok)
			}
		})
	}
}
