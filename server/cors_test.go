package server

import (
	"net/http"
	"testing"
)

func TestCORS(t *testing.T) {
	const listed = "https://app.example"
	for _, tc := range []struct {
		name    string
		origins []string
		origin  string
		status  int // of the handshake GET
		acao    string
		creds   bool
	}{
		{"default: any origin, no credentials", nil, "https://evil.example", 200, "*", false},
		{"default: null origin, no credentials", nil, "null", 200, "*", false},
		{"star: any origin, no credentials", []string{"*"}, "https://evil.example", 200, "*", false},
		{"list: listed origin reflected with credentials", []string{listed}, listed, 200, listed, true},
		{"list: other origin refused", []string{listed}, "https://evil.example", 403, "", false},
		{"list: null refused", []string{listed}, "null", 403, "", false},
		{"list and star: listed gets credentials", []string{listed, "*"}, listed, 200, listed, true},
		{"list and star: others get star", []string{listed, "*"}, "https://other.example", 200, "*", false},
		{"no Origin header: no CORS", []string{listed}, "", 200, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startServer(t, Config{CORSOrigins: tc.origins})
			for _, method := range []string{http.MethodOptions, http.MethodGet} {
				req, _ := http.NewRequest(method, "http://"+addr+"/socket.io/?EIO=4&transport=polling", nil)
				if tc.origin != "" {
					req.Header.Set("Origin", tc.origin)
				}
				if method == http.MethodOptions {
					req.Header.Set("Access-Control-Request-Method", "GET")
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				h := res.Header
				if method == http.MethodGet && res.StatusCode != tc.status {
					t.Errorf("GET: status %d, want %d", res.StatusCode, tc.status)
				}
				if got := h.Get("Access-Control-Allow-Origin"); got != tc.acao {
					t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", method, got, tc.acao)
				}
				if got := h.Get("Access-Control-Allow-Credentials") == "true"; got != tc.creds {
					t.Errorf("%s: Access-Control-Allow-Credentials %q, want credentials=%v", method, h.Get("Access-Control-Allow-Credentials"), tc.creds)
				}
				if tc.creds && h.Get("Vary") != "Origin" {
					t.Errorf("%s: Vary %q, want Origin", method, h.Get("Vary"))
				}
			}
		})
	}
}
