package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// pollingHandshake opens a polling session, connects it to "/" and returns
// its sid.
func pollingHandshake(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var hs struct{ Sid string }
	if len(body) < 2 || json.Unmarshal(body[1:], &hs) != nil || hs.Sid == "" {
		t.Fatalf("handshake answer %q", body)
	}
	if code, got := pollPost(t, addr, hs.Sid, "40"); code != http.StatusOK {
		t.Fatalf("POST 40: %d %q", code, got)
	}
	resp, err = http.Get("http://" + addr + "/socket.io/?EIO=4&transport=polling&sid=" + hs.Sid)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "40{") {
		t.Fatalf("connect answer %q", body)
	}
	return hs.Sid
}

func pollPost(t *testing.T, addr, sid, payload string) (int, string) {
	t.Helper()
	r, err := http.Post("http://"+addr+"/socket.io/?EIO=4&transport=polling&sid="+sid, "text/plain;charset=UTF-8", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}
