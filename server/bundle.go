package server

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// clientDist holds the socket.io-client browser bundle, copied unmodified
// from node_modules/socket.io-client/dist/ (and its package.json) by
// `make bundle` before `go build`. Only its README is in git: a binary
// built without that step serves 404 with a hint instead of the files.
//
//go:embed clientdist
var clientDist embed.FS

// clientFiles are the names served under Config.Path, as Node's socket.io
// does with serveClient (the msgpack build too: it ships in the same
// package).
var clientFiles = []string{
	"socket.io.js", "socket.io.js.map",
	"socket.io.min.js", "socket.io.min.js.map",
	"socket.io.esm.min.js", "socket.io.esm.min.js.map",
	"socket.io.msgpack.min.js", "socket.io.msgpack.min.js.map",
}

// ClientConfig configures serving the socket.io browser client at
// <Path>socket.io.js (and .min.js, .esm.min.js, .msgpack.min.js, their
// .map files), as Node's socket.io does by default (its serveClient).
type ClientConfig struct {
	// Disabled leaves those routes to the Engine.IO handler (as
	// serveClient: false does). Default false: served.
	Disabled bool
	// Dir, when set, is a directory holding the files (a copy of
	// socket.io-client's dist/ and, for the ETag, its package.json), read
	// once by New. "": the files embedded at build time.
	Dir string
}

// clientBundle is the loaded browser client.
type clientBundle struct {
	files   fs.FS
	etag    string // `"<socket.io-client version>"`, as Node's ETag
	version string

	mu  sync.Mutex
	gz  map[string][]byte // gzip-compressed files, made on first request
	raw map[string][]byte
}

// routeClient adds the browser client's routes to the mux, unless
// Config.Client.Disabled. Missing files are answered 404 (and logged here).
func (srv *Server) routeClient() {
	if srv.cfg.Client.Disabled {
		return
	}
	var files fs.FS
	if dir := srv.cfg.Client.Dir; dir != "" {
		files = os.DirFS(dir)
	} else {
		files, _ = fs.Sub(clientDist, "clientdist") // a valid, embedded name
	}
	if _, err := fs.Stat(files, "socket.io.js"); err != nil {
		srv.log.Warn("no socket.io client bundle: /socket.io/socket.io.js answers 404", zap.String("dir", srv.cfg.Client.Dir), zap.Error(err))
	}
	b := &clientBundle{files: files, gz: map[string][]byte{}, raw: map[string][]byte{}}
	b.version = clientVersion(files)
	b.etag = `"` + b.version + `"`
	for _, name := range clientFiles {
		srv.mux.HandleFunc("GET "+srv.cfg.Path+name, func(w http.ResponseWriter, r *http.Request) { b.serve(w, r, name) })
	}
}

// EmbeddedClientVersion is the version of the socket.io browser client
// built into this binary ("" when it was built without one).
func EmbeddedClientVersion() string {
	files, _ := fs.Sub(clientDist, "clientdist")
	if _, err := fs.Stat(files, "socket.io.js"); err != nil {
		return ""
	}
	return clientVersion(files)
}

// clientVersion is the version in the bundle's package.json; without one,
// the time the bundle was loaded (so ETags still change between builds).
func clientVersion(files fs.FS) string {
	var pkg struct {
		Version string `json:"version"`
	}
	if data, err := fs.ReadFile(files, "package.json"); err == nil && json.Unmarshal(data, &pkg) == nil && pkg.Version != "" {
		return pkg.Version
	}
	return "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

func (b *clientBundle) serve(w http.ResponseWriter, r *http.Request, name string) {
	data, err := b.load(name)
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]any{
			"error": "the socket.io client bundle is not in this build: run `make bundle` before `go build`, or give --client-dir",
		})
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=0")
	h.Set("ETag", b.etag)
	h.Add("Vary", "Accept-Encoding")
	// Public files: a page of any origin may also import the ESM build.
	h.Set("Access-Control-Allow-Origin", "*")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, b.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if strings.HasSuffix(name, ".map") {
		h.Set("Content-Type", "application/json; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/javascript; charset=utf-8")
	}
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		data = b.gzipped(name, data)
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(data)
}

// load reads a file once and keeps it.
func (b *clientBundle) load(name string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if data, ok := b.raw[name]; ok {
		return data, nil
	}
	data, err := fs.ReadFile(b.files, name)
	if err != nil {
		return nil, err
	}
	b.raw[name] = data
	return data, nil
}

// gzipped compresses a file once and keeps it.
func (b *clientBundle) gzipped(name string, data []byte) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if z, ok := b.gz[name]; ok {
		return z
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(data)
	zw.Close()
	b.gz[name] = buf.Bytes()
	return b.gz[name]
}

// etagMatch reports whether an If-None-Match header names etag (weak or
// strong, in a list, or "*").
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip (a
// q=0 refuses it).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
