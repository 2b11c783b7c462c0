package server

import "testing"

// A number beyond float64 in an event keeps the connection open (it was
// closed with 1002 parse error) and echoes back as the client wrote it.
func TestWideNumberKeepsConnection(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialRaw(t, addr, 0)
	c.connect("/")
	c.write(`421["echo",1e400,{"n":-1e999}]`)
	if ans := c.read(); ans != `431[1e400,{"n":-1e999}]` {
		t.Fatalf("echo answer %q", ans)
	}
}
