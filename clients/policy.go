package clients

import "fmt"

// Policy says what a full queue does with a new droppable packet.
type Policy uint8

const (
	policyDefault Policy = iota
	// Disconnect closes the connection with reason "send queue full".
	Disconnect
	// DropOldest drops the oldest droppable packets until the new one fits.
	DropOldest
	// Coalesce replaces a queued packet carrying the same key, keeping its
	// place; without a match it behaves like DropOldest.
	Coalesce
)

// DefaultPolicy is the policy of a queue configured with none.
const DefaultPolicy = Disconnect

func (p Policy) String() string {
	switch p {
	case Disconnect:
		return "disconnect"
	case DropOldest:
		return "drop-oldest"
	case Coalesce:
		return "coalesce"
	}
	return "default"
}

// ParsePolicy reads a policy name as used by flags.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "disconnect", "":
		return Disconnect, nil
	case "drop-oldest":
		return DropOldest, nil
	case "coalesce":
		return Coalesce, nil
	}
	return 0, fmt.Errorf("unknown send queue policy %q (want disconnect, drop-oldest or coalesce)", s)
}
