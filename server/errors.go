package server

import "errors"

var (
	// ErrClosed is returned by Serve after Shutdown.
	ErrClosed = errors.New("server closed")
	// ErrBadConfig wraps configuration errors from New.
	ErrBadConfig = errors.New("bad configuration")
)
