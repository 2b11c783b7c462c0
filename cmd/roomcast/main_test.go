package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// bin is the roomcast binary the tests run (built once by TestMain).
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "roomcast-cmd")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "roomcast")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the binary with args (and env, ROOMCAST_* of the test's own
// environment removed) and returns its exit code, stdout and stderr.
func run(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROOMCAST_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("roomcast %v still running after 60 s; stderr: %s", args, stderr.String())
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func writeKey(t *testing.T, private bool) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if private {
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	} else {
		der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
		block = &pem.Block{Type: "PUBLIC KEY", Bytes: der}
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// deadPort is a loopback port nothing listens on.
func deadPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestCommands(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // a regular expression; "" = must be empty
		stderr string // idem
	}{
		{"help", []string{"help"}, 0, `roomcast serve \[flags\]`, ""},
		{"--help", []string{"--help"}, 0, `roomcast version`, ""},
		{"-h", []string{"-h"}, 0, `roomcast help`, ""},
		{"no command", nil, 2, "", `usage:`},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"(?s:.*)usage:`},
		{"version", []string{"version"}, 0, `^roomcast \S+ \(.*go1\.\d+.*\)\n$`, ""},
		{"serve -h", []string{"serve", "-h"}, 0, `usage: roomcast serve`, ""},
		{"serve --help", []string{"serve", "--help"}, 0, `env ROOMCAST_ADDR`, ""},
		{"unknown flag", []string{"serve", "--bogus"}, 2, "", `-bogus.*roomcast serve -h`},
		{"stray argument", []string{"serve", "extra"}, 2, "", `unexpected arguments: \[extra\]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, nil, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			for _, out := range []struct{ name, got, want string }{{"stdout", stdout, tc.stdout}, {"stderr", stderr, tc.stderr}} {
				if out.want == "" && out.got != "" || out.want != "" && !regexp.MustCompile(out.want).MatchString(out.got) {
					t.Errorf("%s = %q, want /%s/", out.name, out.got, out.want)
				}
			}
		})
	}
}

func TestServeHelpListsEveryFlagsEnvironmentVariable(t *testing.T) {
	_, stdout, _ := run(t, nil, "serve", "-h")
	// The flags as the flag set defines them.
	o := []string{}
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "  --") {
			o = append(o, strings.Fields(line)[0][2:])
		}
	}
	if len(o) < 30 {
		t.Fatalf("only %d flags in serve -h:\n%s", len(o), stdout)
	}
	for _, name := range o {
		want := regexp.MustCompile(`(?m)^  --` + regexp.QuoteMeta(name) + `\b.*\n.*\n      env ` + envName(name) + `, default `)
		if !want.MatchString(stdout) {
			t.Errorf("--%s: no line %q", name, "env "+envName(name))
		}
	}
	for _, name := range []string{"addr", "adapter", "max-payload", "jwt-public-key", "static", "serve-client", "pprof"} {
		if !strings.Contains(stdout, "  --"+name) {
			t.Errorf("--%s missing from serve -h", name)
		}
	}
}

func TestServeValidation(t *testing.T) {
	pub, priv := writeKey(t, false), writeKey(t, true)
	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string // a regular expression on the whole stderr
	}{
		{"unknown adapter", nil, []string{"--adapter", "foo"}, 2, `^roomcast: --adapter: unknown adapter "foo"; accepted: memory, redis, redis-sharded, redis-streams, nats, nats-jetstream, kafka\n$`},
		{"zero kafka retention", nil, []string{"--adapter", "kafka", "--kafka-retention", "0"}, 2, `^roomcast: --kafka-retention: must be positive, not 0s\n$`},
		{"negative max payload", nil, []string{"--max-payload", "-1"}, 2, `^roomcast: --max-payload: must be a positive number of bytes .*not -1\n$`},
		{"relative path", nil, []string{"--path", "nope"}, 2, `^roomcast: --path: must be an absolute URL path such as /socket.io/.*"nope"\n$`},
		{"both JWT flags", nil, []string{"--jwt-secret", "s", "--jwt-public-key", pub}, 2, `^roomcast: --jwt-secret and --jwt-public-key: give one, not both`},
		{"private key as public key", nil, []string{"--jwt-public-key", priv}, 2, `^roomcast: --jwt-public-key: .*holds a private key \(PRIVATE KEY\); give its public key`},
		{"no key file", nil, []string{"--jwt-public-key", "/nonexistent.pem"}, 2, `^roomcast: --jwt-public-key: .*no such file`},
		{"unknown policy", nil, []string{"--send-queue-policy", "maybe"}, 2, `--send-queue-policy: unknown policy "maybe"; accepted: disconnect, drop-oldest, coalesce`},
		{"unknown log level", nil, []string{"--log-level", "loud"}, 2, `--log-level: unknown level "loud"; accepted: debug, info, warn, error`},
		{"bad namespaces", nil, []string{"--namespaces", "("}, 2, `--namespaces: not a regular expression`},
		{"bad duration", nil, []string{"--ping-interval", "soon"}, 2, `invalid value "soon" for flag -ping-interval`},
		{"zero ping interval", nil, []string{"--ping-interval", "0"}, 2, `--ping-interval: must be a positive duration`},
		{"unknown parser", nil, []string{"--parser", "cbor"}, 2, `^roomcast: --parser: unknown parser "cbor"; accepted: json, msgpack\n$`},
		{"static not a directory", nil, []string{"--static", "/nonexistent"}, 2, `--static: "/nonexistent" is not a readable directory`},
		{"bad environment variable", []string{"ROOMCAST_MAX_PAYLOAD=lots"}, nil, 2, `ROOMCAST_MAX_PAYLOAD="lots" \(--max-payload\)`},
		{"environment variable validated too", []string{"ROOMCAST_ADAPTER=foo"}, nil, 2, `--adapter: unknown adapter "foo"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tc.env, append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...)...)
			if code != tc.code || !regexp.MustCompile(tc.stderr).MatchString(stderr) || stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and /%s/", code, stdout, stderr, tc.code, tc.stderr)
			}
		})
	}
}

func TestUnreachableRedisIsOneLine(t *testing.T) {
	for _, adapter := range []string{"redis", "redis-sharded", "redis-streams"} {
		t.Run(adapter, func(t *testing.T) {
			url := fmt.Sprintf("redis://:hunter2@127.0.0.1:%d/0", deadPort(t))
			code, stdout, stderr := run(t, nil, "serve", "--addr", "127.0.0.1:0", "--adapter", adapter, "--redis-url", url)
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if code != 1 || stdout != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "roomcast: --redis-url redis://:xxxxx@127.0.0.1:") || !strings.Contains(lines[0], "Redis not reachable") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and one line naming --redis-url", code, stdout, stderr)
			}
			if strings.Contains(stderr, "hunter2") {
				t.Fatal("the Redis password is in the error")
			}
		})
	}
}

// TestAPIErrorsAreJSON runs the server and checks every kind of HTTP API
// error answers a JSON {"error": "…"}.
func TestAPIErrorsAreJSON(t *testing.T) {
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--api-key", "k", "--max-payload", "1000")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addrc <- line.Addr
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	var base string
	select {
	case addr := <-addrc:
		base = "http://" + addr
	case <-time.After(60 * time.Second):
		t.Fatal("no listening line within 60 s")
	}
	for _, tc := range []struct {
		name, method, path, ctype, key, body string
		status                               int
	}{
		{"no key", "POST", "/api/v1/emit", "application/json", "", `{"event":"e"}`, 401},
		{"wrong key", "POST", "/api/v1/emit", "application/json", "x", `{"event":"e"}`, 401},
		{"unknown route", "GET", "/api/v1/nope", "", "k", "", 404},
		{"unknown API version", "GET", "/api/v2/sockets", "", "k", "", 404},
		{"wrong method", "GET", "/api/v1/emit", "", "k", "", 405},
		{"not JSON content type", "POST", "/api/v1/emit", "text/plain", "k", `{"event":"e"}`, 415},
		{"bad JSON", "POST", "/api/v1/emit", "application/json", "k", `{"event":`, 400},
		{"unknown field", "POST", "/api/v1/emit", "application/json", "k", `{"event":"e","bogus":1}`, 400},
		{"no event", "POST", "/api/v1/emit", "application/json", "k", `{}`, 400},
		{"too large", "POST", "/api/v1/emit", "application/json", "k", `{"event":"` + strings.Repeat("x", 2000) + `"}`, 413},
		{"bad timeout", "POST", "/api/v1/emit", "application/json", "k", `{"event":"e","ack":true,"timeout":-5}`, 400},
		{"bad namespace", "GET", "/api/v1/sockets?namespace=nope", "", "k", "", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			var e struct {
				Error string `json:"error"`
			}
			if res.StatusCode != tc.status || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") || json.Unmarshal(body, &e) != nil || e.Error == "" {
				t.Fatalf("status %d, Content-Type %q, body %q; want %d and a JSON {error}", res.StatusCode, res.Header.Get("Content-Type"), body, tc.status)
			}
		})
	}
}
