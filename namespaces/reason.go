package namespaces

import "github.com/roomcast/roomcast/clients"

// Reason is why a socket ended: its connection's reason (see
// clients.Reason) or a Socket.IO one, a namespace left. Its String feeds
// the disconnect event, the log field and the metric label; the strings
// are Socket.IO's where Socket.IO has one.
type Reason uint8

const (
	ReasonNone                      Reason = iota
	ReasonTransportClose                   // the peer closed the transport
	ReasonTransportError                   // reading or writing failed
	ReasonPingTimeout                      // no pong within the ping timeout
	ReasonParseError                       // the peer sent a packet we cannot decode
	ReasonServerNamespaceDisconnect        // server code disconnected the socket
	ReasonClientNamespaceDisconnect        // the client left the namespace
	ReasonServerShutdown                   // graceful shutdown
	ReasonForcedClose                      // the peer sent an Engine.IO close
	ReasonForcedServerClose                // server code closed the connection
	ReasonQueueFull                        // the send queue overflowed (policy disconnect)
	ReasonWriteTimeout                     // a write missed its deadline
	ReasonPayloadTooLarge                  // a message over maxPayload
)

var reasonNames = [...]string{
	ReasonNone:                      "none",
	ReasonTransportClose:            clients.ReasonTransportClose.String(),
	ReasonTransportError:            clients.ReasonTransportError.String(),
	ReasonPingTimeout:               clients.ReasonPingTimeout.String(),
	ReasonParseError:                clients.ReasonParseError.String(),
	ReasonServerNamespaceDisconnect: "server namespace disconnect",
	ReasonClientNamespaceDisconnect: "client namespace disconnect",
	ReasonServerShutdown:            clients.ReasonServerShutdown.String(),
	ReasonForcedClose:               clients.ReasonForcedClose.String(),
	ReasonForcedServerClose:         clients.ReasonForcedServerClose.String(),
	ReasonQueueFull:                 clients.ReasonQueueFull.String(),
	ReasonWriteTimeout:              clients.ReasonWriteTimeout.String(),
	ReasonPayloadTooLarge:           clients.ReasonPayloadTooLarge.String(),
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// fromConn maps a connection's reason to the socket's.
var fromConn = map[clients.Reason]Reason{
	clients.ReasonNone:              ReasonNone,
	clients.ReasonTransportClose:    ReasonTransportClose,
	clients.ReasonTransportError:    ReasonTransportError,
	clients.ReasonPingTimeout:       ReasonPingTimeout,
	clients.ReasonParseError:        ReasonParseError,
	clients.ReasonServerShutdown:    ReasonServerShutdown,
	clients.ReasonForcedClose:       ReasonForcedClose,
	clients.ReasonForcedServerClose: ReasonForcedServerClose,
	clients.ReasonQueueFull:         ReasonQueueFull,
	clients.ReasonWriteTimeout:      ReasonWriteTimeout,
	clients.ReasonPayloadTooLarge:   ReasonPayloadTooLarge,
}

// ReasonOf is the socket reason of a connection that ended for r.
func ReasonOf(r clients.Reason) Reason {
	if sr, ok := fromConn[r]; ok {
		return sr
	}
	return ReasonTransportError
}

// Recoverable tells whether a socket that ended for this reason keeps its
// session for connection state recovery (the peer did not mean to leave).
func (r Reason) Recoverable() bool {
	switch r {
	case ReasonTransportClose, ReasonTransportError, ReasonPingTimeout, ReasonForcedClose,
		ReasonServerShutdown, ReasonQueueFull, ReasonWriteTimeout:
		return true
	}
	return false
}

// packetTooLarge is ErrPacketTooLarge: it is clients.ErrTooLarge, so the
// transport closes the connection with ReasonPayloadTooLarge.
type packetTooLarge struct{}

func (packetTooLarge) Error() string        { return "socket.io packet too large" }
func (packetTooLarge) Is(target error) bool { return target == clients.ErrTooLarge }
