package clients

// Reason is why a connection ended: an Engine.IO reason or backpressure.
// Its String feeds the log field and the metric label, and the socket
// layer's disconnect reasons, so the set is small and fixed. The strings
// follow Engine.IO's and Socket.IO's where they have one.
type Reason uint8

const (
	ReasonNone              Reason = iota
	ReasonTransportClose           // the peer closed the transport
	ReasonTransportError           // reading or writing failed
	ReasonPingTimeout              // no pong within the ping timeout
	ReasonParseError               // the peer sent a packet we cannot decode
	ReasonServerShutdown           // graceful shutdown
	ReasonForcedClose              // the peer sent an Engine.IO close
	ReasonForcedServerClose        // server code closed the connection
	ReasonQueueFull                // the send queue overflowed (policy disconnect)
	ReasonWriteTimeout             // a write missed its deadline
	ReasonPayloadTooLarge          // a message over maxPayload
)

var reasonNames = [...]string{
	ReasonNone:              "none",
	ReasonTransportClose:    "transport close",
	ReasonTransportError:    "transport error",
	ReasonPingTimeout:       "ping timeout",
	ReasonParseError:        "parse error",
	ReasonServerShutdown:    "server shutting down",
	ReasonForcedClose:       "forced close",
	ReasonForcedServerClose: "forced server close",
	ReasonQueueFull:         "send queue full",
	ReasonWriteTimeout:      "Send timeout",
	ReasonPayloadTooLarge:   "message too big",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// WSCloseCode is the WebSocket close code sent for this reason.
func (r Reason) WSCloseCode() int {
	switch r {
	case ReasonQueueFull, ReasonWriteTimeout:
		return 1008 // policy violation
	case ReasonPayloadTooLarge:
		return 1009
	case ReasonParseError:
		return 1002
	case ReasonServerShutdown:
		return 1001 // going away
	}
	return 1000
}
