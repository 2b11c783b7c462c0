package server

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// readBody reads a request body of at most max bytes, within timeout
// (none when timeout <= 0): a body that announces more than it sends holds
// its request, goroutine and socket no longer. The deadline ends with the
// body: net/http clears it when the body reaches EOF and it starts its own
// read for the peer going away (TestAPIAckOutlivesReadTimeout). After an
// error it stays, so net/http does not wait for the rest of the body.
// Errors: *http.MaxBytesError over max, one with Timeout() true when slow.
func readBody(w http.ResponseWriter, r *http.Request, max int, timeout time.Duration) ([]byte, error) {
	if timeout > 0 {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, int64(max)))
}

// isTimeout tells whether err is a deadline passing.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
