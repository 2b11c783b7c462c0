package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// apiFuzzRoutes are the POST routes whose JSON bodies the fuzzer feeds.
var apiFuzzRoutes = []string{"/api/v1/emit", "/api/v1/rooms", "/api/v1/disconnect", "/api/v1/server-emit"}

// FuzzAPIBodies feeds the HTTP API's JSON decoding (emit, rooms,
// disconnect, server-emit and their selectors) real and hostile bodies: the
// answer is always a JSON object, 200 (only for a body that is valid JSON)
// or a 4xx/504 with an error, never a panic.
//
//	go test -run '^$' -fuzz FuzzAPIBodies -fuzztime 60s ./server/
func FuzzAPIBodies(f *testing.F) {
	seeds := []string{
		`{"event":"e","data":{"a":[1,2,3]}}`,
		`{"namespace":"/","rooms":["news"],"except":["muted"],"event":"headline","data":"hi","volatile":true,"coalesce":"k"}`,
		`{"event":"poll","ack":true,"timeout":10}`,
		`{"join":["a","b"],"leave":["c"]}`,
		`{"rooms":["r"],"close":true}`,
		`{"namespace":"/","event":"roomcast:ping","ack":true}`,
		`{"namespace":"/nope","event":"e"}`,
		`{}`, ``, `null`, `[]`, `"x"`, `{"event":"e"} trailing`,
		`{"event":1}`, `{"rooms":"r"}`, `{"rooms":[1]}`, `{"close":"yes"}`, `{"ack":1}`,
		`{"event":"e","ack":true,"timeout":1e400}`,
		`{"event":"e","ack":true,"timeout":9223372036854775807}`,
		`{"event":"e","ack":true,"timeout":-9223372036854775808}`,
		`{"event":"e","data":1e999999}`,
		`{"event":"e","data":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
		strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000),
		`{"event":"e","data":"\ud800"}`, "{\"event\":\"\xff\"}",
		`{"event":"connect"}`, `{"event":"disconnect","rooms":[""]}`,
		`{"namespace":"` + strings.Repeat("/", 1000) + `","event":"e"}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	srv, err := New(Config{RecoveryWindow: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Shutdown(f.Context()) })
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := apiFuzzRoutes[int(route)%len(apiFuzzRoutes)]
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %q: %d with a body that is not a JSON object: %q", path, body, rec.Code, rec.Body.Bytes())
		}
		switch rec.Code {
		case http.StatusOK:
			if out["ok"] != true {
				t.Fatalf("%s %q: 200 %v", path, body, out)
			}
			// Accepted only when the whole body is one JSON value.
			if !json.Valid(body) {
				t.Fatalf("%s %q: 200 for a body that is not valid JSON", path, body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusGatewayTimeout:
			if msg, _ := out["error"].(string); msg == "" {
				t.Fatalf("%s %q: %d without an error message: %v", path, body, rec.Code, out)
			}
		default:
			t.Fatalf("%s %q: status %d %v", path, body, rec.Code, out)
		}
	})
}
