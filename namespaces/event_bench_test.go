package namespaces

import "testing"

// BenchmarkIncomingEvent measures one client event from its text frame to
// its handler: decode, arguments, middleware lookup, the handler call.
func BenchmarkIncomingEvent(b *testing.B) {
	srv := New(Config{})
	defer srv.Close()
	n := 0
	srv.Of("/").On("msg", func(*Event) { n++ })
	p, _ := connectPeer(b, srv, "/", "")
	frame := []byte(`2["msg",{"n":1,"text":"a 100-byte message body, padded out to about one hundred bytes"}]`)
	b.ReportAllocs()
	for b.Loop() {
		if err := p.c.Text(frame); err != nil {
			b.Fatal(err)
		}
	}
	if n == 0 {
		b.Fatal("handler not called")
	}
}
