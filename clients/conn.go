package clients

import (
	"crypto/rand"
	"encoding/base64"
)

// Conn is a connection's transport side as the socket layer sees it.
type Conn interface {
	// ID is the Engine.IO session id.
	ID() string
	// Send queues p; it never blocks. A full queue under the disconnect
	// policy closes the connection (asynchronously).
	Send(p *Packet)
	// Close ends the connection; it is idempotent and returns at once.
	// Graceful reasons flush what is queued first.
	Close(r Reason)
	// Transport names the current transport: "polling" or "websocket".
	Transport() string
}

// NewID makes a random 20-character URL-safe id.
func NewID() string {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
