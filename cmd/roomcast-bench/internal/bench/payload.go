package bench

import (
	"bytes"
	"strconv"
)

// Broadcast payloads are JSON objects {"t":<ns>,"s":<seq>,"p":"<padding>"}:
// t is the send time in nanoseconds since the run's epoch (small enough to
// survive a trip through a float64 in Node or a Go map[string]any), s the
// broadcast's sequence number, p pads the object to the requested size.

// appendPayload appends the payload of broadcast seq sent at t, padded to
// about size bytes.
func appendPayload(dst []byte, t int64, seq int, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, `,"s":`...)
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, `,"p":"`...)
	if pad := size - (len(dst) - start) - 2; pad > 0 {
		for range pad {
			dst = append(dst, 'x')
		}
	}
	return append(dst, `"}`...)
}

// echoPayload returns a constant object of about size bytes for echo.
func echoPayload(size int) []byte {
	return appendPayload(nil, 0, 0, size)
}

// parsePayload finds t and s in the first argument of an event, a JSON
// object possibly followed by more arguments (servers with connection state
// recovery append an offset). Keys may come in any order; nested values
// are skipped. Numbers may be written as floats ("1.5e+06") by servers that
// decode into float64.
func parsePayload(args []byte) (t, s int64, ok bool) {
	i := skipWS(args, 0)
	if i >= len(args) || args[i] != '{' {
		return 0, 0, false
	}
	i++
	var haveT, haveS bool
	for n := 0; n < 64; n++ { // bounded: our payload has three keys
		i = skipWS(args, i)
		if i >= len(args) {
			return 0, 0, false
		}
		if args[i] == '}' {
			break
		}
		if args[i] == ',' {
			i++
			continue
		}
		if args[i] != '"' {
			return 0, 0, false
		}
		keyEnd := skipString(args, i)
		if keyEnd < 0 {
			return 0, 0, false
		}
		key := args[i+1 : keyEnd-1]
		i = skipWS(args, keyEnd)
		if i >= len(args) || args[i] != ':' {
			return 0, 0, false
		}
		i = skipWS(args, i+1)
		end := skipValue(args, i)
		if end < 0 {
			return 0, 0, false
		}
		switch {
		case bytes.Equal(key, []byte("t")):
			t, haveT = number(args[i:end])
		case bytes.Equal(key, []byte("s")):
			s, haveS = number(args[i:end])
		}
		i = end
	}
	return t, s, haveT && haveS
}

func number(b []byte) (int64, bool) {
	if v, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		return v, true
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, false
	}
	return int64(f), true
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the JSON string starting at b[i]
// (which is '"'), or -1.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j)
				if j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}
