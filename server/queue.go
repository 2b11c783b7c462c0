package server

import (
	"github.com/roomcast/roomcast/clients"
	"github.com/roomcast/roomcast/namespaces"
)

// The send queue's configuration, as the connection layer defines it.
type (
	// QueueConfig bounds each connection's send queue (Config.Queue).
	QueueConfig = clients.QueueConfig
	// Policy is what a full send queue does.
	Policy = clients.Policy
)

// Defaults of QueueConfig's zero fields.
const (
	DefaultQueueBytes   = clients.DefaultMaxBytes
	DefaultQueuePackets = clients.DefaultMaxPackets
)

// ParsePolicy parses a policy name: disconnect, drop-oldest or coalesce.
func ParsePolicy(s string) (Policy, error) { return clients.ParsePolicy(s) }

// Parser is the socket.io wire format of every client (Config.Parser).
type Parser = namespaces.Parser

// The parsers: ParserJSON (socket.io-parser, the zero value) and
// ParserMsgpack (socket.io-msgpack-parser).
const (
	ParserJSON    = namespaces.ParserJSON
	ParserMsgpack = namespaces.ParserMsgpack
)

// ParseParser parses a parser name: json or msgpack.
func ParseParser(s string) (Parser, error) { return namespaces.ParseParser(s) }
