package server

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// heapInuse is the heap in use after a full collection.
func heapInuse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// A client sends binary attachments the server must not keep: before its
// namespace accepted it, more than announced, or more bytes than one
// packet may carry. The server closes the connection at the first frame
// over the line and holds nothing. The old server held every attachment
// until the announced count (up to 1,000 × max payload per connection).
func TestBinaryAttachmentsAreBounded(t *testing.T) {
	const (
		maxPayload = 200_000
		frames     = 98 // the attacker's frames after the header
		frameSize  = maxPayload - 1000
		// heapBound is what the test tolerates the heap growing by: well
		// below the ~19.5 MB the old server held for each case (and above what
		// the test's own client and buffers in flight take on a loaded machine).
		heapBound = 8 << 20
	)
	secret := []byte("attachments-secret")
	auth, err := NewJWT(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(secret)
	core, logs := observer.New(zap.InfoLevel)
	srv, addr := startServer(t, Config{MaxPayload: maxPayload, Auth: auth, Logger: zap.New(core)})

	placeholders := func(n int) string {
		ph := make([]string, n)
		for i := range ph {
			ph[i] = fmt.Sprintf(`{"_placeholder":true,"num":%d}`, i)
		}
		return strings.Join(ph, ",")
	}
	tests := []struct {
		name     string
		connect  string // a CONNECT sent first ("" none)
		accepted bool   // whether that CONNECT is accepted
		header   string // the text frame that starts the binary packet
		code     int
		text     string
	}{
		{name: "before any CONNECT", header: `4599-["e",` + placeholders(99) + `]`, code: 1002, text: "parse error"},
		{name: "after a refused CONNECT", connect: `40{"token":"forged"}`, header: `4599-["e",` + placeholders(99) + `]`, code: 1002, text: "parse error"},
		{name: "to a namespace not joined", connect: `40{"token":"` + token + `"}`, accepted: true, header: `4599-/other,["e",` + placeholders(99) + `]`, code: 1002, text: "parse error"},
		{name: "too many attachments announced", connect: `40{"token":"` + token + `"}`, accepted: true, header: `45500-["e",` + placeholders(500) + `]`, code: 1002, text: "parse error"},
		{name: "more bytes than max payload", connect: `40{"token":"` + token + `"}`, accepted: true, header: `4599-["e",` + placeholders(99) + `]`, code: websocket.CloseMessageTooBig, text: "message too big"},
		{name: "CONNECT with attachments", header: `401-{"token":"` + token + `"}`, code: 1002, text: "parse error"},
		{name: "attachment without a header", code: 1002, text: "parse error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := heapInuse()
			logged := logs.FilterMessage("closing connection on bad packet").Len()
			c := dialRaw(t, addr, 0)
			if tt.connect != "" {
				c.write(tt.connect)
				got := c.read()
				if ok := strings.HasPrefix(got, "40{"); ok != tt.accepted {
					t.Fatalf("CONNECT answered %q", got)
				}
			}
			// The reader takes the close as soon as it comes, while the
			// writer still sends.
			done := make(chan struct{})
			var readErr error
			go func() {
				defer close(done)
				for {
					if _, _, err := c.ws.ReadMessage(); err != nil {
						readErr = err
						return
					}
				}
			}()
			if tt.header != "" {
				c.write(tt.header)
			}
			frame := bytes.Repeat([]byte{0xab}, frameSize)
			sent := 0
		send:
			for ; sent < frames; sent++ {
				select {
				case <-done:
					break send
				default:
				}
				if err := c.ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
					break
				}
			}
			err := errors.New("not closed within 10 s")
			select {
			case <-done:
				err = readErr
			case <-time.After(10 * time.Second):
			}
			// Measure once the server has let the connection go, so a
			// reader still unwinding is not counted as held memory.
			waitFor(t, func() bool { return srv.engine.Len() == 0 })
			grown := heapInuse() - before
			t.Logf("sent %d frames of %d bytes; heap grew by %.1f MB", sent, frameSize, float64(grown)/1e6)
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != tt.code || ce.Text != tt.text {
				t.Errorf("connection ended with %v, want close %d %q", err, tt.code, tt.text)
			}
			// The log line is written before the close frame is queued.
			if n := logs.FilterMessage("closing connection on bad packet").Len() - logged; n != 1 {
				t.Errorf("%d log lines for the bad packet, want 1", n)
			}
			if grown > heapBound {
				t.Errorf("heap grew by %d bytes, want at most %d", grown, heapBound)
			}
		})
	}
}
