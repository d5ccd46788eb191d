package proxy

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// upgradeHead is a valid WebSocket upgrade request head with extra header
// lines inserted before the blank line.
func upgradeHead(requestLine string, extra ...string) string {
	return requestLine + "\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + strings.Join(extra, "") + "\r\n"
}

// The hostile corpus: request heads a proxy in front of a runtime must not
// pass on. Each gets its answer (with the header set, so a browser sees
// it) and a close, and the backend is never even connected to.
func TestHostileHeads(t *testing.T) {
	e := start(t)
	ok := "GET /sign_in HTTP/1.1"
	cases := []struct {
		name, head string
		status     int
	}{
		// Request smuggling shapes (RFC 9112 sections 6.1-6.3).
		{"Content-Length with Transfer-Encoding", upgradeHead(ok, "Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n"), 400},
		{"two Content-Lengths", upgradeHead(ok, "Content-Length: 0\r\n", "Content-Length: 5\r\n"), 400},
		{"Content-Length list", upgradeHead(ok, "Content-Length: 5, 5\r\n"), 400},
		{"signed Content-Length", upgradeHead(ok, "Content-Length: +5\r\n"), 400},
		{"body on an upgrade", upgradeHead(ok, "Content-Length: 5\r\n") + "hello", 400},
		{"chunked upgrade", upgradeHead(ok, "Transfer-Encoding: chunked\r\n") + "0\r\n\r\n", 400},
		{"Transfer-Encoding not chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", 501},
		{"Transfer-Encoding on HTTP/1.0", "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"obs-fold", upgradeHead(ok, "X-Folded: a\r\n b\r\n"), 400},
		{"bare LF", strings.ReplaceAll(upgradeHead(ok), "\r\n", "\n") + "\r\n\r\n", 400},
		{"bare CR in a value", upgradeHead(ok, "X-A: a\rb\r\n"), 400},
		{"space before colon", upgradeHead(ok, "Host : evil\r\n"), 400},
		{"two Hosts", upgradeHead(ok, "Host: evil.example\r\n"), 400},
		{"no Host", "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 400},
		// NUL and control characters.
		{"NUL in a name", upgradeHead(ok, "X-\x00A: a\r\n"), 400},
		{"NUL in a value", upgradeHead(ok, "X-A: a\x00b\r\n"), 400},
		{"control character in a value", upgradeHead(ok, "X-A: a\x01b\r\n"), 400},
		{"DEL in a value", upgradeHead(ok, "X-A: a\x7fb\r\n"), 400},
		{"escape in a name", upgradeHead(ok, "X-\x1b[31m: a\r\n"), 400},
		{"NUL in the target", upgradeHead("GET /sign\x00in HTTP/1.1"), 400},
		{"space in the target", upgradeHead("GET /sign in HTTP/1.1"), 400},
		{"tab in the request line", upgradeHead("GET\t/ HTTP/1.1"), 400},
		// Sizes.
		{"oversized URI", upgradeHead("GET /" + strings.Repeat("a", tunnel.MaxHeadSize) + " HTTP/1.1"), 431},
		{"oversized header", upgradeHead(ok, "X-Big: "+strings.Repeat("b", tunnel.MaxHeadSize)+"\r\n"), 431},
		{"many headers", upgradeHead(ok, strings.Repeat("X-N: 1\r\n", 3000)), 431},
		// Targets and protocols the proxy does not serve.
		{"absolute-form", upgradeHead("GET http://10.0.0.1:49100/sign_in HTTP/1.1"), 400},
		{"authority-form", upgradeHead("GET 10.0.0.1:49100 HTTP/1.1"), 400},
		{"asterisk-form GET", upgradeHead("GET * HTTP/1.1"), 400},
		{"CONNECT", "CONNECT 10.0.0.1:49100 HTTP/1.1\r\nHost: 10.0.0.1:49100\r\n\r\n", 501},
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 501}, // cross-site tracing
		{"lower-case method", upgradeHead("get /sign_in HTTP/1.1"), 400},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
		{"HTTP/0.9", "GET /\r\n\r\n", 400},
		{"HTTP/1.2", upgradeHead("GET / HTTP/1.2"), 400},
		{"HTTP/10.1", upgradeHead("GET / HTTP/10.1"), 400},
		{"Upgrade without Connection: upgrade", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", 400},
		{"h2c upgrade", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n", 501},
		// websocket among other protocols: the runtime could pick h2c.
		{"h2c and websocket", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c, websocket\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 501},
		{"websocket and h2c", strings.Replace(upgradeHead(ok), "Upgrade: websocket", "Upgrade: websocket, h2c", 1), 501},
		{"websocket, then h2c in a second field", upgradeHead(ok, "Upgrade: h2c\r\n"), 501},
		{"binary garbage", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			go io.WriteString(c, tc.head) // may be refused before all is written
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			wantCORS(t, resp.Header)
			// A refused head ends the connection: nothing after it is read
			// as a second request.
			if _, err := br.ReadByte(); err == nil {
				t.Error("the connection stayed open after a refused head")
			}
		})
	}
	if n := e.backend.Accepted(); n != 0 {
		t.Errorf("the backend was connected to %d times", n)
	}
	// And the proxy still works.
	if err := e.ws("/sign_in").Echo("after the corpus", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}
