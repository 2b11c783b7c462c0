package adapter

import "testing"

// A session record from the sessions topic decodes within the limits or is
// refused with ErrUndecodable; what decodes encodes again to a record that
// decodes to the same session.
func FuzzKafkaSession(f *testing.F) {
	real, err := encodeMsgpack(map[string]any{"sid": "s1", "pid": "p1", "rooms": []string{"s1", "r"},
		"data": map[string]any{"user": "ann", "bin": []byte{1, 2}}, "base": "0-7", "expires": int64(1_900_000_000_000)})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds(real) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeKafkaSession(b)
		if err != nil {
			return
		}
		if len(s.raw) != len(b) {
			t.Fatalf("raw of %d bytes from %d", len(s.raw), len(b))
		}
		v, err := decodeKafkaSessionMap(b)
		if err != nil {
			t.Fatalf("decoded once, not twice: %v", err)
		}
		sess := sessionOf(v)
		if !sess.Expires.Equal(s.expires) {
			t.Fatalf("ends %v and %v", sess.Expires, s.expires)
		}
		again, err := encodeMsgpack(map[string]any{"sid": sess.ID, "pid": sess.PID, "rooms": sess.Rooms,
			"data": plain1(sess.Data), "base": sess.Base, "expires": sess.Expires.UnixMilli()})
		if err != nil {
			return // a value msgpack cannot encode again (NaN keys and the like)
		}
		s2, err := decodeKafkaSession(again)
		if err != nil {
			t.Fatalf("re-encoded session does not decode: %v", err)
		}
		if s2.pid != sess.PID || !s2.expires.Equal(sess.Expires) {
			t.Fatalf("re-encoded session differs: %+v vs %+v", s2, sess)
		}
	})
}
