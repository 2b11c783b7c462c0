package server

import (
	"net/http"
	"strconv"
)

// cors sets the CORS headers of an allowed origin. An origin listed in
// CORSOrigins is reflected with Access-Control-Allow-Credentials (cookies
// and HTTP auth); any other origin allowed by "*" (or an empty list) gets
// Access-Control-Allow-Origin "*" and no credentials, so no page can make
// credentialed requests unless it is listed by name.
func (srv *Server) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || !srv.originAllowed(r) {
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	listed := false
	for _, o := range srv.cfg.CORSOrigins {
		if o == origin && o != "*" {
			listed = true
			break
		}
	}
	if listed {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	} else {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET,POST,OPTIONS")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		h.Set("Access-Control-Max-Age", strconv.Itoa(86400))
	}
}

// originAllowed: a request without Origin, any origin with "*" or an empty
// CORSOrigins, else an origin listed exactly.
func (srv *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(srv.cfg.CORSOrigins) == 0 {
		return true
	}
	for _, o := range srv.cfg.CORSOrigins {
		if o == "*" || o == origin {
			return true
		}
	}
	return false
}
