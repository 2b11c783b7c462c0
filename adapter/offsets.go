package adapter

import (
	"strconv"
	"strings"
)

// OffsetAfter tells whether recovery offset a comes after b. It reads the
// offsets of every adapter: base-36 counters (Memory and the adapters built
// on it) and "<ms>-<seq>" log positions (Redis stream entry ids, and the
// stream sequences of JetStream as "0-<seq>"). "" comes before everything;
// an offset it cannot read counts as after.
func OffsetAfter(a, b string) bool {
	if a == "" || b == "" {
		return a != ""
	}
	a1, a2, okA := parseOffset(a)
	b1, b2, okB := parseOffset(b)
	if !okA || !okB {
		return true
	}
	return a1 > b1 || (a1 == b1 && a2 > b2)
}

func parseOffset(o string) (uint64, uint64, bool) {
	if i := strings.IndexByte(o, '-'); i >= 0 {
		x, err1 := strconv.ParseUint(o[:i], 10, 64)
		y, err2 := strconv.ParseUint(o[i+1:], 10, 64)
		return x, y, err1 == nil && err2 == nil
	}
	x, err := strconv.ParseUint(o, 36, 64)
	return x, 0, err == nil
}
