package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/cmd/roomcast-bench/internal/client"
)

// publisher triggers the broadcasts of a fanout.
type publisher interface {
	// publish sends broadcast seq stamped with the current time.
	publish(ctx context.Context, seq int) error
	// settle waits (at most timeout) until every publish is acknowledged
	// and returns how many failed.
	settle(ctx context.Context, timeout time.Duration) (failed int, firstErr string)
	close()
}

func now(epoch int64) int64 { return time.Now().UnixNano() - epoch }

// apiPublisher posts to /api/v1/emit.
type apiPublisher struct {
	cfg    *Config
	url    string
	epoch  int64
	http   *http.Client
	body   []byte
	failed int
	first  string
}

func newAPIPublisher(cfg *Config, base string, epoch int64) *apiPublisher {
	return &apiPublisher{
		cfg:   cfg,
		url:   strings.TrimRight(base, "/") + "/api/v1/emit",
		epoch: epoch,
		http: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 2, DisableCompression: true},
		},
	}
}

func (p *apiPublisher) publish(ctx context.Context, seq int) error {
	b := append(p.body[:0], `{"namespace":`...)
	b = appendJSON(b, p.cfg.Namespace)
	b = append(b, `,"rooms":[`...)
	b = appendJSON(b, p.cfg.Room)
	b = append(b, `],"event":`...)
	b = appendJSON(b, p.cfg.Event)
	b = append(b, `,"data":`...)
	b = appendPayload(b, now(p.epoch), seq, p.cfg.Payload)
	b = append(b, '}')
	p.body = b
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if p.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.APIKey)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		p.fail(err.Error())
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p.fail(fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, body))
	}
	return nil
}

func (p *apiPublisher) fail(msg string) {
	p.failed++
	if p.first == "" {
		p.first = msg
	}
}

func (p *apiPublisher) settle(context.Context, time.Duration) (int, string) { return p.failed, p.first }
func (p *apiPublisher) close()                                              { p.http.CloseIdleConnections() }

func appendJSON(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

// clientPublisher emits the hub's publish event from its own connection
// (which is not in the room).
type clientPublisher struct {
	cfg      *Config
	c        *client.Conn
	epoch    int64
	sent     atomic.Int64
	acked    atomic.Int64
	failed   atomic.Int64
	first    atomic.Pointer[string]
	readDone chan struct{}
	buf      []byte
}

func newClientPublisher(ctx context.Context, cfg *Config, base string, epoch int64) (*clientPublisher, error) {
	d, err := client.NewDialer(client.Options{URL: base, Path: cfg.Path, Namespace: cfg.Namespace, Auth: authJSON(cfg.Token)})
	if err != nil {
		return nil, err
	}
	p := &clientPublisher{cfg: cfg, epoch: epoch, readDone: make(chan struct{})}
	if p.c, err = d.Dial(ctx, p); err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	go func() {
		defer close(p.readDone)
		if err := p.c.ReadLoop(); err != nil {
			p.note(fmt.Sprintf("publisher connection ended: %v", err))
		}
	}()
	return p, nil
}

func (p *clientPublisher) note(msg string) {
	p.first.CompareAndSwap(nil, &msg)
}

func (p *clientPublisher) publish(_ context.Context, seq int) error {
	b := append(p.buf[:0], `{"room":`...)
	b = appendJSON(b, p.cfg.Room)
	b = append(b, `,"event":`...)
	b = appendJSON(b, p.cfg.Event)
	b = append(b, `,"data":`...)
	b = appendPayload(b, now(p.epoch), seq, p.cfg.Payload)
	b = append(b, '}')
	p.buf = b
	p.sent.Add(1)
	if err := p.c.EmitAck(int64(seq), "publish", b); err != nil {
		p.sent.Add(-1)
		p.failed.Add(1)
		p.note(err.Error())
	}
	return nil
}

// HandleEvent ignores events: the publisher is in no room.
func (p *clientPublisher) HandleEvent(_, _ []byte) {}

// HandleAck counts publish acks.
func (p *clientPublisher) HandleAck(_ int64, args []byte) {
	if !bytes.Contains(args, []byte(`"ok":true`)) {
		p.failed.Add(1)
		p.note(fmt.Sprintf("publish refused: %.200s", args))
	}
	p.acked.Add(1)
}

func (p *clientPublisher) settle(ctx context.Context, timeout time.Duration) (int, string) {
	waitFor(ctx, timeout, func() bool { return p.acked.Load() >= p.sent.Load() })
	failed := p.failed.Load() + max(0, p.sent.Load()-p.acked.Load())
	first := ""
	if s := p.first.Load(); s != nil {
		first = *s
	}
	return int(failed), first
}

func (p *clientPublisher) close() {
	_ = p.c.Close()
	<-p.readDone
}

// authJSON is the CONNECT auth payload for a token, nil without one.
func authJSON(token string) []byte {
	if token == "" {
		return nil
	}
	b, _ := json.Marshal(map[string]string{"token": token})
	return b
}
