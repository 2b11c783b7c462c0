package server

import "errors"

var (
	// ErrClosed is returned by Serve after Shutdown.
	ErrClosed = errors.New("server closed")
	// ErrBadConfig wraps configuration errors from New.
	ErrBadConfig = errors.New("bad configuration")
)

// Engine.IO error codes, sent as {"code":N,"message":"…"} with HTTP 400.
const (
	codeTransportUnknown   = 0
	codeUnknownSID         = 1
	codeBadHandshakeMethod = 2
	codeBadRequest         = 3
	codeForbidden          = 4
	codeUnsupportedVersion = 5
)

var engineMessages = map[int]string{
	codeTransportUnknown:   "Transport unknown",
	codeUnknownSID:         "Session ID unknown",
	codeBadHandshakeMethod: "Bad handshake method",
	codeBadRequest:         "Bad request",
	codeForbidden:          "Forbidden",
	codeUnsupportedVersion: "Unsupported protocol version",
}
