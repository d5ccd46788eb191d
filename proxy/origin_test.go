package proxy

import (
	"bufio"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/allow"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

func TestAllowedOriginsEndToEnd(t *testing.T) {
	origins, _ := allow.NewOrigins([]string{"https://good.example"})
	e := start(t, func(o *Options) { o.AllowedOrigins = origins })

	// An allowed page: the 101 names its origin, with credentials.
	c := e.ws("/ok", "Origin: https://good.example")
	h := c.Response.Header
	if h.Get("Access-Control-Allow-Origin") != "https://good.example" || h.Get("Access-Control-Allow-Credentials") != "true" ||
		h.Get("Vary") != "Origin" || len(h.Values("Access-Control-Allow-Origin")) != 1 {
		t.Errorf("headers %v", h)
	}
	if err := c.Echo("allowed", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// A page from elsewhere: 403 for the upgrade and the preflight, and
	// the backend never sees them.
	before := len(e.backend.Requests())
	cl, _ := wstest.Upgrade(e.dial(), "localhost", "/hijack", "Origin: https://evil.example")
	if cl == nil || cl.Response.StatusCode != http.StatusForbidden || cl.Response.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin: %v", cl)
	}
	pc := e.dial()
	io.WriteString(pc, "OPTIONS /x HTTP/1.1\r\nHost: localhost\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: GET\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(pc), nil)
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign preflight: %v %v", resp, err)
	}
	if len(e.backend.Requests()) != before {
		t.Error("a refused request reached the backend")
	}
	// A native client sends no Origin: allowed, as it cannot be a page.
	n := e.ws("/native")
	if err := n.Echo("native", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n.Response.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("granted an origin nobody asked for")
	}
}
