package server

import (
	"net/http"
	"os"
	"path"
	"strings"

	"go.uber.org/zap"
)

// routeStatic serves the files of Config.StaticDir at "/" (the routes of
// the server itself win: a file cannot shadow <Path>, /api/, /healthz, …).
// A directory is served through its index.html only (no listings); names
// with a dot segment (.git, .env) are not served.
func (srv *Server) routeStatic() {
	dir := srv.cfg.StaticDir
	if dir == "" {
		return
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		srv.log.Warn("static directory is not readable: / answers 404", zap.String("dir", dir), zap.Error(err))
	}
	files := http.FileServer(staticFS{http.Dir(dir)})
	// "/" and not "GET /": a method pattern would conflict with the
	// method-less routes (Path, /api/) in net/http's mux.
	srv.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method " + r.Method + " not allowed; use GET"})
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
}

// staticFS hides dot files and directories without an index.html.
type staticFS struct{ root http.FileSystem }

func (s staticFS) Open(name string) (http.File, error) {
	for _, seg := range strings.Split(name, "/") {
		if strings.HasPrefix(seg, ".") {
			return nil, os.ErrNotExist
		}
	}
	f, err := s.root.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		index, err := s.root.Open(path.Join(name, "index.html"))
		if err != nil {
			f.Close()
			return nil, os.ErrNotExist
		}
		index.Close()
	}
	return f, nil
}
