package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startNATS runs a nats-server with JetStream on a free port until the
// test ends and returns its URL.
func startNATS(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatal("nats-server is required for the NATS tests: install it (Debian: apt-get install nats-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nats-server did not listen within 60 s")
		}
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", port)
}

func TestNATSFlagsValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"max age under JetStream's minimum", []string{"--nats-max-age", "50ms"}, `^roomcast: --nats-max-age: must be at least 100ms \(JetStream's minimum\), not 50ms\n$`},
		{"no max messages", []string{"--nats-max-msgs", "0"}, `^roomcast: --nats-max-msgs: must be a positive number of messages \(default 100000\), not 0\n$`},
		{"no replicas", []string{"--nats-replicas", "0"}, `^roomcast: --nats-replicas: must be 1 to 5, not 0\n$`},
		{"too many replicas", []string{"--nats-replicas", "6"}, `^roomcast: --nats-replicas: must be 1 to 5, not 6\n$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, nil, append([]string{"serve", "--addr", "127.0.0.1:0", "--adapter", "nats-jetstream"}, tc.args...)...)
			if code != 2 || stdout != "" || !regexp.MustCompile(tc.stderr).MatchString(stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and /%s/", code, stdout, stderr, tc.stderr)
			}
		})
	}
}

// --nats-replicas reaches JetStream: 3 replicas on one server is its
// refusal, one line, exit code 1.
func TestNATSReplicasRefusedByJetStream(t *testing.T) {
	url := startNATS(t)
	code, stdout, stderr := run(t, nil, "serve", "--addr", "127.0.0.1:0", "--log-level", "error", "--adapter", "nats-jetstream", "--nats-url", url, "--nats-replicas", "3")
	if code != 1 || stdout != "" || !regexp.MustCompile(`^roomcast: adapter: jetstream: stream ROOMCAST: .*replicas > 1 not supported in non-clustered mode\n$`).MatchString(stderr) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// --nats-max-age, --nats-max-msgs and --nats-replicas (and their
// environment variables) make the stream's configuration.
func TestNATSRetentionFlagsMakeTheStream(t *testing.T) {
	url := startNATS(t)
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--adapter", "nats-jetstream", "--nats-url", url,
		"--nats-max-age", "90s", "--nats-replicas", "1")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "ROOMCAST_NATS_MAX_MSGS=7"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	listening := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				listening <- struct{}{}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case <-listening:
	case <-time.After(60 * time.Second):
		t.Fatal("no listening line within 60 s")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "ROOMCAST")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; c.MaxAge != 90*time.Second || c.MaxMsgs != 7 || c.Replicas != 1 {
		t.Fatalf("stream max age %v, max messages %d, replicas %d; want 90s, 7, 1", c.MaxAge, c.MaxMsgs, c.Replicas)
	}
}
