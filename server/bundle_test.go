package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// get requests url with headers and returns the response and its body.
func fetchBundle(t *testing.T, method, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	// No transparent gzip: the test sets Accept-Encoding itself.
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func clientDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range clientFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("/* "+name+" */ "+strings.Repeat("x", 1000)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"socket.io-client","version":"9.9.9"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestClientBundle(t *testing.T) {
	dir := clientDir(t)
	_, addr := startServer(t, Config{Client: ClientConfig{Dir: dir}})
	base := "http://" + addr + "/socket.io/"
	for _, name := range clientFiles {
		t.Run(name, func(t *testing.T) {
			want, _ := os.ReadFile(filepath.Join(dir, name))
			res, body := fetchBundle(t, "GET", base+name+"?v=1")
			if res.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Fatalf("status %d, body %.40q; want 200 and the file", res.StatusCode, body)
			}
			ct := "application/javascript; charset=utf-8"
			if strings.HasSuffix(name, ".map") {
				ct = "application/json; charset=utf-8"
			}
			for k, v := range map[string]string{"Content-Type": ct, "ETag": `"9.9.9"`, "Cache-Control": "public, max-age=0"} {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
	t.Run("304 on If-None-Match", func(t *testing.T) {
		for _, inm := range []string{`"9.9.9"`, `W/"9.9.9"`, `"other", "9.9.9"`, `*`} {
			res, body := fetchBundle(t, "GET", base+"socket.io.js", "If-None-Match", inm)
			if res.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Errorf("If-None-Match %s: status %d with %d bytes, want 304 and no body", inm, res.StatusCode, len(body))
			}
		}
		res, _ := fetchBundle(t, "GET", base+"socket.io.js", "If-None-Match", `"9.9.8"`)
		if res.StatusCode != 200 {
			t.Errorf("stale ETag: status %d, want 200", res.StatusCode)
		}
	})
	t.Run("gzip", func(t *testing.T) {
		want, _ := os.ReadFile(filepath.Join(dir, "socket.io.min.js"))
		res, body := fetchBundle(t, "GET", base+"socket.io.min.js", "Accept-Encoding", "br, gzip;q=0.8")
		if res.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding %q, want gzip", res.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("gunzipped body differs from the file (err %v)", err)
		}
		res, _ = fetchBundle(t, "GET", base+"socket.io.min.js", "Accept-Encoding", "gzip;q=0")
		if res.Header.Get("Content-Encoding") != "" {
			t.Fatalf("gzip;q=0 still compressed")
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		res, body := fetchBundle(t, "HEAD", base+"socket.io.js")
		if res.StatusCode != 200 || len(body) != 0 || res.Header.Get("Content-Length") == "" {
			t.Fatalf("HEAD: status %d, %d body bytes, Content-Length %q", res.StatusCode, len(body), res.Header.Get("Content-Length"))
		}
	})
	t.Run("other names stay Engine.IO", func(t *testing.T) {
		res, body := fetchBundle(t, "GET", base+"socket.io.jsx")
		if res.StatusCode != 400 || !strings.Contains(string(body), `"code":`) {
			t.Fatalf("status %d body %s, want the Engine.IO 400", res.StatusCode, body)
		}
	})
}

func TestClientBundleDisabled(t *testing.T) {
	_, addr := startServer(t, Config{Client: ClientConfig{Disabled: true, Dir: clientDir(t)}})
	res, body := fetchBundle(t, "GET", "http://"+addr+"/socket.io/socket.io.js")
	// As Node with serveClient: false: the Engine.IO handler answers.
	if res.StatusCode != 400 || !strings.Contains(string(body), "Unsupported protocol version") {
		t.Fatalf("status %d body %s, want Engine.IO's 400", res.StatusCode, body)
	}
}

func TestClientBundleCustomPath(t *testing.T) {
	_, addr := startServer(t, Config{Path: "/rt/", Client: ClientConfig{Dir: clientDir(t)}})
	if res, _ := fetchBundle(t, "GET", "http://"+addr+"/rt/socket.io.js"); res.StatusCode != 200 {
		t.Fatalf("status %d, want 200 under the custom path", res.StatusCode)
	}
}

func TestClientBundleMissing(t *testing.T) {
	// A directory without the files: 404 with a JSON hint, not a crash.
	_, addr := startServer(t, Config{Client: ClientConfig{Dir: t.TempDir()}})
	res, body := fetchBundle(t, "GET", "http://"+addr+"/socket.io/socket.io.js")
	var e struct{ Error string }
	if res.StatusCode != 404 || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "make bundle") {
		t.Fatalf("status %d body %s, want 404 with a hint", res.StatusCode, body)
	}
}

// TestClientBundleEmbedded checks the embedded files, when `make bundle`
// put them in the build, are socket.io-client's own.
func TestClientBundleEmbedded(t *testing.T) {
	_, addr := startServer(t, Config{})
	res, body := fetchBundle(t, "GET", "http://"+addr+"/socket.io/socket.io.js")
	data, err := clientDist.ReadFile("clientdist/socket.io.js")
	if err != nil {
		if res.StatusCode != 404 {
			t.Fatalf("no embedded bundle but status %d", res.StatusCode)
		}
		return
	}
	if res.StatusCode != 200 || !bytes.Equal(body, data) || !strings.Contains(string(body), "Socket.IO v") {
		t.Fatalf("status %d, %d bytes; want the embedded socket.io.js", res.StatusCode, len(body))
	}
	if res.Header.Get("ETag") == "" || res.Header.Get("ETag")[1] < '0' || res.Header.Get("ETag")[1] > '9' {
		t.Fatalf("ETag %q, want the client version", res.Header.Get("ETag"))
	}
}
