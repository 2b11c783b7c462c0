package server

import "github.com/roomcast/roomcast/clients"

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
