package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStatic(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>demo</h1>"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "app.js"), []byte("console.log(1)"), 0o644))
	must(os.WriteFile(filepath.Join(dir, ".env"), []byte("SECRET=1"), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "sub", "x.txt"), []byte("x"), 0o644))
	must(os.MkdirAll(filepath.Join(dir, ".git"), 0o755))
	must(os.WriteFile(filepath.Join(dir, ".git", "config"), []byte("[core]"), 0o644))
	_, addr := startServer(t, Config{StaticDir: dir})
	base := "http://" + addr
	for _, tc := range []struct {
		name, method, path string
		status             int
		body               string
	}{
		{"index", "GET", "/", 200, "<h1>demo</h1>"},
		{"file", "GET", "/app.js", 200, "console.log(1)"},
		{"file in a directory", "GET", "/sub/x.txt", 200, "x"},
		{"no listing", "GET", "/sub/", 404, ""},
		{"dot file", "GET", "/.env", 404, ""},
		{"dot directory", "GET", "/.git/config", 404, ""},
		{"traversal: the mux cleans the path", "GET", "/../../etc/passwd", 307, "/etc/passwd"},
		{"cleaned traversal", "GET", "/etc/passwd", 404, ""},
		{"encoded traversal", "GET", "/..%2f..%2fetc%2fpasswd", 404, ""},
		{"missing", "GET", "/nope.html", 404, ""},
		{"POST", "POST", "/app.js", 405, `"error"`},
		{"the hub's routes win", "GET", "/healthz", 200, "ok"},
		{"the API's 404 is JSON", "GET", "/api/v1/nope", 404, `"error"`},
		{"Engine.IO keeps its path", "GET", "/socket.io/", 400, `"code"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := fetchBundle(t, tc.method, base+tc.path)
			if res.StatusCode != tc.status || !strings.Contains(string(body), tc.body) {
				t.Fatalf("%s %s: status %d body %.80q; want %d with %q", tc.method, tc.path, res.StatusCode, body, tc.status, tc.body)
			}
			if strings.Contains(string(body), "SECRET") || strings.Contains(string(body), "[core]") || strings.Contains(string(body), "root:") {
				t.Fatalf("leaked a hidden file: %q", body)
			}
		})
	}
}

func TestStaticOff(t *testing.T) {
	_, addr := startServer(t, Config{})
	if res, _ := fetchBundle(t, "GET", "http://"+addr+"/"); res.StatusCode != 404 {
		t.Fatalf("GET / without StaticDir: status %d, want 404", res.StatusCode)
	}
}
