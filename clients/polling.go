package clients

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// The record separator between packets of a polling payload.
const recordSep = '\x1e'

// begin marks a polling request of one method active. A second one at the
// same time breaks the protocol (and would break the order of packets):
// it gets 400 and the session closes. A POST once the session has moved to
// WebSocket gets 400 too (as Node answers it), and the session goes on: the
// WebSocket is its only reader now.
func (s *session) begin(w http.ResponseWriter, active *bool, method string) bool {
	s.mu.Lock()
	if method == http.MethodPost && s.transport != transportPolling {
		s.mu.Unlock()
		engineError(w, http.StatusBadRequest, codeBadRequest)
		return false
	}
	if *active {
		s.mu.Unlock()
		s.log().Info("closing connection on overlapping polling request", zap.String("method", method))
		engineError(w, http.StatusBadRequest, codeBadRequest)
		s.Close(ReasonTransportError)
		return false
	}
	*active = true
	s.mu.Unlock()
	return true
}

func (s *session) end(active *bool) {
	s.mu.Lock()
	*active = false
	s.postDone.Broadcast()
	s.mu.Unlock()
}

// poll answers a polling GET with what is queued, waiting for data when the
// queue is empty. One GET at a time per session.
func (s *session) poll(w http.ResponseWriter, r *http.Request) {
	if !s.begin(w, &s.getActive, "GET") {
		return
	}
	defer s.end(&s.getActive)

	var entries []Entry
	for {
		entries = s.q.Take(entries[:0])
		if len(entries) > 0 {
			break
		}
		if closed, _ := s.isClosed(); closed {
			// A GET pending as the peer closes ends with a noop, as
			// Node's engine.io answers it; else the close packet.
			s.mu.Lock()
			last := closePacket
			if s.byPeer {
				last = noopPacket
			}
			s.mu.Unlock()
			s.writePayload(w, []Entry{{Packet: last}})
			return
		}
		if s.Transport() != transportPolling {
			s.writePayload(w, []Entry{{Packet: noopPacket}})
			return
		}
		select {
		case <-s.pollWake:
		case <-r.Context().Done():
			// The request went away: whatever we would write is lost, so
			// the session cannot go on in order.
			s.Close(ReasonTransportClose)
			return
		}
	}
	s.srv.stats.taken(entries)
	end := false
	for i := range entries {
		if entries[i].Packet == closeMarker {
			entries[i] = Entry{Packet: closePacket}
			entries = entries[:i+1]
			end = true
			break
		}
	}
	if err := s.writePayload(w, entries); err != nil {
		reason := ReasonTransportError
		if errors.Is(err, errWriteTimeout) {
			reason = ReasonWriteTimeout
		}
		s.Close(reason)
		return
	}
	s.srv.stats.sent(entries)
	if end {
		s.q.Close()
	}
}

var errWriteTimeout = errors.New("write timeout")

// writePayload writes packets as one polling payload: text packets as they
// are, binary ones as "b" + base64, separated by the record separator.
func (s *session) writePayload(w http.ResponseWriter, entries []Entry) error {
	var buf bytes.Buffer
	first := true
	for _, e := range entries {
		for _, f := range e.Packet.Frames {
			if !first {
				buf.WriteByte(recordSep)
			}
			first = false
			encodeMessage(&buf, f.Data, f.Binary)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	if t := s.srv.cfg.WriteTimeout; t > 0 {
		rc.SetWriteDeadline(time.Now().Add(t))
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return classifyWriteErr(err)
	}
	if err := rc.Flush(); err != nil {
		return classifyWriteErr(err)
	}
	return nil
}

func classifyWriteErr(err error) error {
	if IsTimeout(err) {
		return errWriteTimeout
	}
	return err
}

// post handles a polling POST: the packets in its body, in order.
func (s *session) post(w http.ResponseWriter, r *http.Request) {
	if !s.begin(w, &s.postActive, "POST") {
		return
	}
	defer s.end(&s.postActive)
	if r.Header.Get("Content-Type") == "application/octet-stream" {
		engineError(w, http.StatusBadRequest, codeBadRequest)
		s.protocolError(errors.New("binary polling body (Engine.IO 3)"))
		return
	}
	timeout := s.srv.cfg.ReadTimeout
	body, err := ReadBody(w, r, s.srv.cfg.MaxPayload, timeout)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			s.log().Info("closing connection on oversized polling body", zap.Int("max_payload", s.srv.cfg.MaxPayload))
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			s.Close(ReasonPayloadTooLarge)
		case IsTimeout(err):
			s.log().Info("closing connection on slow polling body", zap.Duration("read_timeout", timeout))
			w.Header().Set("Connection", "close")
			http.Error(w, "request body timeout", http.StatusRequestTimeout)
			s.Close(ReasonTransportError)
		default:
			s.Close(ReasonTransportError)
		}
		return
	}
	msgs, err := decodePayload(body)
	if err != nil {
		s.protocolError(err)
		engineError(w, http.StatusBadRequest, codeBadRequest)
		return
	}
	for _, m := range msgs {
		res := s.onMessage(m.data, m.binary)
		if res == msgBadPacket {
			engineError(w, http.StatusBadRequest, codeBadRequest)
			return
		}
		// Data the Receiver refused was a valid Engine.IO message: the
		// POST is answered "ok" (as Node answers it) and the session,
		// closed, ends.
		if res != msgOK {
			break
		}
	}
	w.Header().Set("Content-Type", "text/html")
	w.Write([]byte("ok"))
}

// message is one Engine.IO message of a polling payload.
type message struct {
	data   []byte
	binary bool
}

var errBadBase64 = errors.New("bad base64 in polling payload")

// decodePayload splits a polling payload into its messages: separated by
// the record separator, a binary one written as "b" + standard base64. An
// empty body holds no message; an empty message between separators is
// kept (and refused by the session as an empty packet). Text messages
// share body's memory. The whole payload is decoded before any message is
// handled, so a bad one refuses the payload as a whole. The output is never
// larger than body: base64 shrinks, and there are at most as many messages
// as separators plus one.
func decodePayload(body []byte) ([]message, error) {
	if len(body) == 0 {
		return nil, nil
	}
	msgs := make([]message, 0, bytes.Count(body, []byte{recordSep})+1)
	for {
		pkt, rest, more := bytes.Cut(body, []byte{recordSep})
		m := message{data: pkt}
		if len(pkt) > 0 && pkt[0] == 'b' {
			dec := make([]byte, base64.StdEncoding.DecodedLen(len(pkt)-1))
			n, err := base64.StdEncoding.Decode(dec, pkt[1:])
			if err != nil {
				return nil, errBadBase64
			}
			m = message{data: dec[:n], binary: true}
		}
		msgs = append(msgs, m)
		if !more {
			return msgs, nil
		}
		body = rest
	}
}

// encodeMessage appends one message to a polling payload, the inverse of
// decodePayload for a message that is binary or is text without the
// record separator and not starting with "b" (every Engine.IO text packet
// starts with its type digit).
func encodeMessage(buf *bytes.Buffer, data []byte, binary bool) {
	if !binary {
		buf.Write(data)
		return
	}
	buf.WriteByte('b')
	enc := base64.NewEncoder(base64.StdEncoding, buf)
	enc.Write(data)
	enc.Close()
}

// ReadBody reads a request body of at most max bytes, within timeout
// (none when timeout <= 0): a body that announces more than it sends holds
// its request, goroutine and socket no longer. The deadline ends with the
// body: net/http clears it when the body reaches EOF and starts its own
// read for the peer going away, so a handler may wait on after reading.
// After an error it stays, so net/http does not wait for the rest of the
// body. Errors: *http.MaxBytesError over max, one IsTimeout tells when
// slow. The polling transport reads its POSTs with it; so may other
// handlers of the same server (the HTTP API does).
func ReadBody(w http.ResponseWriter, r *http.Request, max int, timeout time.Duration) ([]byte, error) {
	if timeout > 0 {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, int64(max)))
}

// IsTimeout tells whether err is a deadline passing.
func IsTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
