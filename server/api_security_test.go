package server

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// apiDo sends one API request and returns the status, headers and decoded
// JSON body (the test fails when the body is not a JSON object).
func apiDo(t testing.TB, method, url, contentType, auth, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if method != http.MethodHead {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d with a body that is not a JSON object: %q", method, url, res.StatusCode, raw)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: Content-Type %q", method, url, ct)
		}
	}
	return res.StatusCode, res.Header, out
}

// dialHeaders opens a raw client with extra handshake headers and connects
// to "/" with an auth payload.
func dialHeaders(t testing.TB, addr string, h http.Header, auth string) *rawClient {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/socket.io/?EIO=4&transport=websocket&token=q-secret", h)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c := &rawClient{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	c.read() // open
	c.write("40" + auth)
	if m := c.read(); !strings.HasPrefix(m, "40{") {
		t.Fatalf("connect: %q", m)
	}
	return c
}

func TestAPIOpenOnlyOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default addr", Config{}, true},
		{"127.0.0.1", Config{Addr: "127.0.0.1:0"}, true},
		{"::1", Config{Addr: "[::1]:0"}, true},
		{"localhost", Config{Addr: "localhost:0"}, true},
		{"0.0.0.0 without key", Config{Addr: "0.0.0.0:3000"}, false},
		{"all interfaces without key", Config{Addr: ":3000"}, false},
		{"public IP without key", Config{Addr: "192.0.2.1:3000"}, false},
		{"0.0.0.0 with key", Config{Addr: "0.0.0.0:3000", APIKey: "k"}, true},
		{"0.0.0.0 explicitly insecure", Config{Addr: "0.0.0.0:3000", APIInsecure: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := New(tc.cfg)
			if srv != nil {
				srv.Shutdown(t.Context())
			}
			if tc.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tc.ok {
				if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "--api-key") || !strings.Contains(err.Error(), "--api-insecure") {
					t.Fatalf("New: %v, want ErrBadConfig naming --api-key and --api-insecure", err)
				}
			}
		})
	}
}

// publicListener is a loopback listener that reports an address on every
// interface, as a listener on 0.0.0.0 would.
type publicListener struct{ net.Listener }

func (publicListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero, Port: 3000} }

func TestServeRefusesOpenAPIOnPublicListener(t *testing.T) {
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(t.Context())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(publicListener{ln}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("Serve on 0.0.0.0 without a key: %v, want ErrBadConfig", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve left the refused listener open: %v", err)
	}
}

// A cross-site page can POST text/plain without a preflight: that must not
// disconnect anyone.
func TestAPIRequiresJSONContentType(t *testing.T) {
	_, addr := startServer(t, Config{RecoveryWindow: -1})
	c := dialRaw(t, addr, 0)
	c.connect("/")
	base := "http://" + addr + "/api/v1/"
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		for _, route := range []string{"disconnect", "emit", "rooms", "server-emit"} {
			status, _, body := apiDo(t, http.MethodPost, base+route, ct, "", `{"close":true}`)
			if status != http.StatusUnsupportedMediaType || body["error"] == nil {
				t.Fatalf("POST %s with Content-Type %q: %d %v, want 415 with an error", route, ct, status, body)
			}
		}
	}
	// The socket is still there: an emit to it arrives.
	if status, _, body := apiDo(t, http.MethodPost, base+"emit", "application/json; charset=utf-8", "", `{"event":"still","data":1}`); status != 200 {
		t.Fatalf("emit: %d %v", status, body)
	}
	c.next(`^42\["still",1\]$`)
}

func TestAPIErrorsAreJSON(t *testing.T) {
	_, addr := startServer(t, Config{APIKey: "s3cret"})
	base := "http://" + addr + "/api/v1/"
	t.Run("401 with WWW-Authenticate", func(t *testing.T) {
		for _, auth := range []string{"", "Bearer wrong", "Basic czNjcmV0", "Bearers3cret", "s3cret"} {
			status, h, body := apiDo(t, http.MethodPost, base+"emit", "application/json", auth, `{"event":"e"}`)
			if status != http.StatusUnauthorized || body["error"] == nil || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("auth %q: %d %v WWW-Authenticate %q", auth, status, body, h.Get("WWW-Authenticate"))
			}
		}
	})
	t.Run("Bearer scheme in any case", func(t *testing.T) {
		for _, auth := range []string{"Bearer s3cret", "bearer s3cret", "BEARER s3cret", "Bearer  s3cret "} {
			if status, _, body := apiDo(t, http.MethodPost, base+"emit", "application/json", auth, `{"event":"e"}`); status != 200 {
				t.Fatalf("auth %q: %d %v", auth, status, body)
			}
		}
	})
	const key = "Bearer s3cret"
	t.Run("404", func(t *testing.T) {
		for _, path := range []string{"nope", "emit/x", "../v2/emit"} {
			status, _, body := apiDo(t, http.MethodGet, base+path, "", key, "")
			if status != http.StatusNotFound || body["error"] == nil {
				t.Fatalf("GET %s: %d %v", path, status, body)
			}
		}
	})
	t.Run("405 with Allow", func(t *testing.T) {
		for _, tc := range []struct{ method, route, allow string }{
			{http.MethodGet, "emit", "POST"},
			{http.MethodPut, "rooms", "POST"},
			{http.MethodPost, "sockets", "GET, HEAD"},
			{http.MethodDelete, "disconnect", "POST"},
		} {
			status, h, body := apiDo(t, tc.method, base+tc.route, "application/json", key, `{}`)
			if status != http.StatusMethodNotAllowed || body["error"] == nil || h.Get("Allow") != tc.allow {
				t.Fatalf("%s %s: %d %v Allow %q, want 405 Allow %q", tc.method, tc.route, status, body, h.Get("Allow"), tc.allow)
			}
		}
	})
	t.Run("400", func(t *testing.T) {
		for _, tc := range []struct{ route, body string }{
			{"emit", `{"event":"e"} {"event":"f"}`},
			{"emit", `{"event":"e","ack":true,"timeout":-1}`},
			{"emit", `{"event":"e","ack":true,"timeout":99999999999999}`},
			{"emit", `{"event":"e","nope":1}`},
			{"rooms", `{"join":"a"}`},
		} {
			status, _, body := apiDo(t, http.MethodPost, base+tc.route, "application/json", key, tc.body)
			if status != http.StatusBadRequest || body["error"] == nil {
				t.Fatalf("%s %s: %d %v, want 400", tc.route, tc.body, status, body)
			}
		}
	})
	t.Run("413", func(t *testing.T) {
		big := `{"event":"e","data":"` + strings.Repeat("x", DefaultMaxPayload) + `"}`
		status, _, body := apiDo(t, http.MethodPost, base+"emit", "application/json", key, big)
		if status != http.StatusRequestEntityTooLarge || body["error"] == nil {
			t.Fatalf("%d %v", status, body)
		}
	})
}

func TestAPISocketsRedactsSecrets(t *testing.T) {
	_, addr := startServer(t, Config{})
	h := http.Header{}
	h.Set("Authorization", "Bearer header-secret")
	h.Set("Cookie", "sid=cookie-secret")
	h.Set("X-Api-Key", "key-secret")
	h.Set("X-Trace", "visible-header")
	dialHeaders(t, addr, h, `{"token":"jwt-secret","password":"pw-secret","nested":{"apiKey":"nested-secret","room":"visible-nested"},"name":"visible-name"}`)

	res, err := http.Get("http://" + addr + "/api/v1/sockets")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, raw)
	}
	for _, secret := range []string{"header-secret", "cookie-secret", "key-secret", "jwt-secret", "pw-secret", "nested-secret", "q-secret"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("/api/v1/sockets shows %q: %s", secret, raw)
		}
	}
	for _, visible := range []string{"visible-header", "visible-name", "visible-nested", Redacted} {
		if !strings.Contains(string(raw), visible) {
			t.Errorf("/api/v1/sockets lacks %q: %s", visible, raw)
		}
	}
}

// TestAPIPreflightGetsNoCORS: the API never answers a browser preflight
// with CORS headers, so a cross-site page cannot send it JSON.
func TestAPIPreflightGetsNoCORS(t *testing.T) {
	_, addr := startServer(t, Config{})
	req, _ := http.NewRequest(http.MethodOptions, "http://"+addr+"/api/v1/disconnect", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if v := res.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Fatalf("preflight of the API answered Access-Control-Allow-Origin %q", v)
	}
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("OPTIONS: %d, want 405", res.StatusCode)
	}
}
