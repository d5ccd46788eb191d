package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

func zapString(k, v string) zap.Field { return zap.String(k, v) }

// wantCORS checks the header set on a response.
func wantCORS(t *testing.T, h http.Header) {
	t.Helper()
	for _, f := range corsFields {
		if got := h.Values(f.name); len(got) != 1 || got[0] != f.value {
			t.Errorf("%s = %q, want exactly [%q]", f.name, got, f.value)
		}
	}
}

func TestUpgradeEchoAndHeaders(t *testing.T) {
	e := start(t)
	c := e.ws("/sign_in?peer_id=abc&x=1%202", "Origin: https://client.example", "X-Custom: kept")
	if c.Response.StatusCode != 101 {
		t.Fatalf("status %d", c.Response.StatusCode)
	}
	wantCORS(t, c.Response.Header)
	if got := c.Response.Header.Get("Sec-WebSocket-Accept"); got == "" {
		t.Error("backend's own Sec-WebSocket-Accept header was lost")
	}
	for i := range 20 {
		if err := c.Echo(fmt.Sprintf("message %d %s", i, strings.Repeat("x", i*1000)), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	l := e.sessionLog("path", "/sign_in?peer_id=abc&x=1%202")
	if l["status"] != int64(101) || l["method"] != "GET" || l["tls"] != "TLS 1.3" || l["sni"] != "localhost" {
		t.Errorf("log line %v", l)
	}
	if l["bytes_in"].(int64) < 20000 || l["bytes_out"].(int64) < 20000 {
		t.Errorf("byte counts too small: %v", l)
	}
}

// The head reaches the backend byte for byte: path, query, every header.
func TestHeadForwardedUnchanged(t *testing.T) {
	e := start(t)
	c := e.dial()
	head := "GET /cloudxr/10.0.3.17/sign_in?peer_id=1&token=a%2Fb HTTP/1.1\r\nHost: proxy.example:48322\r\n" +
		"upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\nX-Weird:   spaced value  \r\nCookie: a=b\r\n\r\n"
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("response %v, %v", resp, err)
	}
	got := <-e.backend.NextRequest()
	if string(got.Raw) != head {
		t.Errorf("backend got\n%q\nwant\n%q", got.Raw, head)
	}
}

// A first frame that arrives in the same packet as a head is not lost, in
// either direction.
func TestBytesAfterHeadsKept(t *testing.T) {
	first := wstest.AppendFrame(nil, wstest.OpText, []byte("server speaks first"), false)
	b, err := wstest.StartBackendWith("127.0.0.1:0", func(b *wstest.Backend) { b.FirstFrame = first })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	e := startWith(t, b, b.Addr())

	c := e.dial()
	// Client side: the head and a frame in one write.
	msg := wstest.AppendFrame(nil, wstest.OpText, []byte("client speaks at once"), true)
	if _, err := c.Write(append([]byte(wstest.UpgradeRequest("localhost", "/")), msg...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("response %v, %v", resp, err)
	}
	wantCORS(t, resp.Header)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []string{"server speaks first", "client speaks at once"} {
		_, p, err := wstest.ReadFrame(br)
		if err != nil || string(p) != want {
			t.Fatalf("got %q, %v; want %q", p, err, want)
		}
	}
}

func TestPreflightAnsweredLocally(t *testing.T) {
	e := start(t)
	c := e.dial()
	br := bufio.NewReader(c)
	// Two preflights and then the upgrade on one keep-alive connection,
	// as a browser does.
	for range 2 {
		io.WriteString(c, "OPTIONS /sign_in HTTP/1.1\r\nHost: localhost\r\nOrigin: https://public.example\r\n"+
			"Access-Control-Request-Method: GET\r\nAccess-Control-Request-Private-Network: true\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "OK" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("preflight answered %d %q %v", resp.StatusCode, body, resp.Header)
		}
		wantCORS(t, resp.Header)
		if resp.Header.Get("Access-Control-Max-Age") == "" {
			t.Error("no Access-Control-Max-Age")
		}
	}
	cl, err := wstest.Upgrade(c, "localhost", "/after-preflight")
	if err != nil {
		t.Fatal(err)
	}
	wantCORS(t, cl.Response.Header)
	if err := cl.Echo("hi", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.backend.Requests() {
		if r.Method == "OPTIONS" {
			t.Fatal("a preflight reached the backend")
		}
	}
}

func TestPlainRequestsForwardedWithHeaders(t *testing.T) {
	e := start(t)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: e.tls}}
	defer hc.CloseIdleConnections()
	for _, path := range []string{"/", "/status?x=1"} {
		resp, err := hc.Get("https://" + e.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "backend: GET "+path+"\n" {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
		}
		wantCORS(t, resp.Header)
		if resp.Header.Get("X-Backend") != "yes" {
			t.Error("backend's own header lost")
		}
	}
	// A POST body and a HEAD (no body despite Content-Length) go through.
	resp, err := hc.Post("https://"+e.addr+"/p", "text/plain", strings.NewReader(strings.Repeat("b", 100000)))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	resp, err = hc.Head("https://" + e.addr + "/h")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	wantCORS(t, resp.Header)
}
