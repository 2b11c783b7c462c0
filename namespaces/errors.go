package namespaces

import (
	"errors"

	"github.com/roomcast/roomcast/clients"
)

var (
	// ErrAckTimeout fails an emit whose ack did not arrive in time.
	ErrAckTimeout = clients.ErrAckTimeout
	// ErrDisconnected fails an emit with ack whose socket went away.
	ErrDisconnected = clients.ErrDisconnected
	// ErrNoAck is returned by Event.Ack when the client asked for none.
	ErrNoAck = errors.New("the client asked for no ack")
	// ErrAckSent is returned by Event.Ack when called twice.
	ErrAckSent = errors.New("ack already sent")
	// ErrEventName refuses an emit with an empty or reserved event name.
	ErrEventName = errors.New("invalid event name")
	errEncode    = errors.New("cannot encode the emit's arguments")
	// ErrPacketTooLarge closes a connection whose packet, text and binary
	// attachments together, is over Config.MaxPacketSize.
	ErrPacketTooLarge error = packetTooLarge{}
	// ErrTooManyNamespaces is the connect_error of a CONNECT that would
	// create a dynamic namespace over Config.MaxDynamicNamespaces.
	ErrTooManyNamespaces = errors.New("too many namespaces")
	// ErrInvalidNamespace is the connect_error of an unknown namespace; its
	// text is the reference server's, which clients may match on.
	//lint:ignore ST1005 the protocol's message
	ErrInvalidNamespace = errors.New("Invalid namespace")
)

// ConnectError refuses a connection from connect middleware; the client
// gets a connect_error with Message and Data.
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }
