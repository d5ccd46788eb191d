package proxy

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
)

// fakeLocal owns /local/*; /big streams a body of unknown length.
type fakeLocal struct{}

func (fakeLocal) Owns(method, target string) bool {
	return (method == "GET" || method == "HEAD") && strings.HasPrefix(target, "/local/")
}

func (fakeLocal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/local/big":
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Access-Control-Allow-Origin", "https://handler.example") // replaced by the set
		chunk := strings.Repeat("z", 1000)
		for range 200 {
			io.WriteString(w, chunk)
		}
	case "/local/missing":
		http.NotFound(w, r)
	default:
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "local "+r.URL.Path+" from "+r.RemoteAddr)
	}
}

func TestLocalAnswers(t *testing.T) {
	e := start(t, func(o *Options) { o.Local = fakeLocal{} })
	c := e.dial()
	br := bufio.NewReader(c)
	get := func(method, target string) (*http.Response, string) {
		t.Helper()
		io.WriteString(c, method+" "+target+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
		req, _ := http.NewRequest(method, target, nil)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	// Several answers on one keep-alive connection, each with the set.
	resp, body := get("GET", "/local/a?x=1")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "local /local/a from 127.0.0.1:") || resp.Close {
		t.Fatalf("%d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	wantCORS(t, resp.Header)
	resp, body = get("HEAD", "/local/a")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength <= 0 {
		t.Fatalf("HEAD: %d %q length %d", resp.StatusCode, body, resp.ContentLength)
	}
	resp, _ = get("GET", "/local/missing")
	if resp.StatusCode != 404 {
		t.Fatalf("missing: %d", resp.StatusCode)
	}
	wantCORS(t, resp.Header)
	// A body of unknown length over the buffer limit runs to the close.
	resp, body = get("GET", "/local/big")
	if len(body) != 200000 || !resp.Close {
		t.Fatalf("big: %d bytes, close=%v", len(body), resp.Close)
	}
	wantCORS(t, resp.Header)
	if n := len(e.backend.Requests()); n != 0 {
		t.Errorf("backend saw %d requests", n)
	}

	// Paths the handler does not own still reach the backend.
	ws := e.ws("/local-not/ws")
	if err := ws.Echo("through", 5e9); err != nil {
		t.Fatal(err)
	}
}
