//go:build unix

package client

import "syscall"

// setReceiveBuffer sets SO_RCVBUF before connect, which also turns off the
// kernel's receive window autotuning for the socket.
func setReceiveBuffer(bytes int) func(network, address string, rc syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, bytes)
		}); err != nil {
			return err
		}
		return serr
	}
}
