package namespaces

import "fmt"

// Parser is the wire format of socket.io packets. Every client of a
// server speaks the server's parser, as with the reference server's
// parser option.
type Parser int

const (
	// ParserJSON is the default parser of socket.io (socket.io-parser):
	// a text message per packet, binary values as attachments.
	ParserJSON Parser = iota
	// ParserMsgpack is socket.io-msgpack-parser: each packet is one binary
	// message, a msgpack map {type, nsp, data, id}, binary values inline.
	ParserMsgpack
)

// ParseParser reads a parser name: "json" (or "") or "msgpack".
func ParseParser(s string) (Parser, error) {
	switch s {
	case "", "json":
		return ParserJSON, nil
	case "msgpack":
		return ParserMsgpack, nil
	}
	return ParserJSON, fmt.Errorf("unknown parser %q (accepted: json, msgpack)", s)
}

func (p Parser) String() string {
	if p == ParserMsgpack {
		return "msgpack"
	}
	return "json"
}
