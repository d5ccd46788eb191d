package proxy

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

func FuzzParseRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c, websocket\r\nConnection: Upgrade\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hl := tunnel.HeadEnd(b)
		if hl < 0 {
			return
		}
		head := b[:hl]
		r, err := parseRequestHead(head)
		if err != nil {
			return
		}
		// What we accept, Go's own strict parser accepts too, and agrees
		// on method and target: the backend sees the request we saw.
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("accepted %q, net/http refuses: %v", head, err)
		}
		if req.Method != r.method || req.RequestURI != r.target {
			t.Fatalf("%q: we read %s %s, net/http %s %s", head, r.method, r.target, req.Method, req.RequestURI)
		}
		// An upgrade goes on only when every protocol it offers, as
		// net/http reads the Upgrade fields, is websocket.
		if r.upgrade {
			for _, v := range req.Header.Values("Upgrade") {
				for p := range strings.SplitSeq(v, ",") {
					if p = strings.TrimSpace(p); p != "" && !strings.EqualFold(p, "websocket") {
						t.Fatalf("%q: forwarded as a WebSocket upgrade although it offers %q", head, p)
					}
				}
			}
		}
		// Rewriting for the backend keeps the head parseable, with
		// Connection: close exactly once.
		out := closingRequest(nil, head)
		if _, err := parseRequestHead(out); err != nil && !r.upgrade {
			t.Fatalf("rewritten head %q refused: %v", out, err)
		}
		if n := bytes.Count(bytes.ToLower(out), []byte("\r\nconnection:")); n != 1 {
			t.Fatalf("%d Connection fields in %q", n, out)
		}
	})
}

func FuzzInjectResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: x\r\nContent-Length: 0\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, b []byte, closing bool) {
		hl := tunnel.HeadEnd(b)
		if hl < 0 {
			return
		}
		head := b[:hl]
		if _, err := parseResponseHead(head); err != nil {
			return
		}
		out := injectResponse(nil, head, closing, anyOrigin)
		if _, err := parseResponseHead(out); err != nil {
			t.Fatalf("injected head %q no longer parses: %v", out, err)
		}
		// Each header of the set appears exactly once.
		lower := bytes.ToLower(out)
		for _, f := range corsFields {
			if n := bytes.Count(lower, []byte("\r\n"+strings.ToLower(f.name)+":")); n != 1 {
				t.Fatalf("%s appears %d times in %q", f.name, n, out)
			}
		}
		if !bytes.HasSuffix(out, []byte("\r\n\r\n")) || bytes.Count(out, []byte("\r\n\r\n")) != 1 {
			t.Fatalf("head boundary broken: %q", out)
		}
	})
}
