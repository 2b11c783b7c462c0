//go:build !unix

package client

import "syscall"

// setReceiveBuffer is a no-op where SO_RCVBUF cannot be set this way.
func setReceiveBuffer(int) func(network, address string, rc syscall.RawConn) error {
	return nil
}
