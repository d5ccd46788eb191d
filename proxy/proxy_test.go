package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"golang.org/x/sys/unix"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/health"
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

func TestBackendDownGets503ThenRecovers(t *testing.T) {
	// Reserve a port, then free it: the backend is "not started yet".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	e := startWith(t, nil, addr)
	began := time.Now()
	cl, err := wstest.Upgrade(e.dial(), "localhost", "/")
	if err == nil || cl == nil || cl.Response.StatusCode != 503 {
		t.Fatalf("want 503, got %v %v", cl, err)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("503 took %v", d)
	}
	wantCORS(t, cl.Response.Header)
	body, _ := io.ReadAll(cl.Response.Body)
	if !strings.Contains(string(body), addr) || !strings.Contains(string(body), "not reachable") {
		t.Errorf("503 body %q does not name the backend", body)
	}

	b, err := wstest.StartBackend(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ws := e.ws("/")
	if err := ws.Echo("back", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// Half-close in both orders over real TCP: whichever side finishes first,
// the other can still send, and the end of each stream reaches its reader.
func TestHalfClose(t *testing.T) {
	for _, backendFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("backendFirst=%v", backendFirst), func(t *testing.T) {
			raw := rawBackend(t, func(c *net.TCPConn, br *bufio.Reader) {
				if backendFirst {
					io.WriteString(c, "from backend")
					c.CloseWrite()
					got, _ := io.ReadAll(br)
					io.WriteString(c, "") // nothing more may be sent
					if string(got) != "from client" {
						t.Errorf("backend read %q", got)
					}
					return
				}
				got, _ := io.ReadAll(br)
				if string(got) != "from client" {
					t.Errorf("backend read %q", got)
				}
				io.WriteString(c, "from backend")
				c.CloseWrite()
			})
			e := startWith(t, nil, raw)
			c := e.dial()
			br := bufio.NewReader(c)
			io.WriteString(c, wstest.UpgradeRequest("localhost", "/"))
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 101 {
				t.Fatalf("%v %v", resp, err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if backendFirst {
				got, err := io.ReadAll(br) // ends at close_notify
				if string(got) != "from backend" || err != nil {
					t.Fatalf("client read %q, %v", got, err)
				}
				io.WriteString(c, "from client")
				c.CloseWrite()
			} else {
				io.WriteString(c, "from client")
				c.CloseWrite()
				got, err := io.ReadAll(br)
				if string(got) != "from backend" || err != nil {
					t.Fatalf("client read %q, %v", got, err)
				}
			}
			want := "client closed"
			if backendFirst {
				want = "backend closed"
			}
			l := e.sessionLog("status", int64(101))
			if l["reason"] != want {
				t.Errorf("reason %q, want %q", l["reason"], want)
			}
		})
	}
}

// rawBackend answers one upgrade with a 101 and hands the connection to f.
func rawBackend(t *testing.T, f func(*net.TCPConn, *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		f(c.(*net.TCPConn), br)
	}()
	return ln.Addr().String()
}

func TestPlainHTTPOnTLSPort(t *testing.T) {
	e := start(t)
	resp, err := http.Get("http://" + e.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "https://") || !strings.Contains(string(body), "wss://") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestSlowHeadCutOff(t *testing.T) {
	e := start(t, func(o *Options) { o.HeadTimeout = 300 * time.Millisecond })
	c := e.dial()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: loc")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	began := time.Now()
	_, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("want the proxy to close, got %v", err)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
	if l := e.sessionLog("reason", "head timeout"); l == nil {
		t.Error("no head timeout log")
	}
}

func TestIdleTunnelTimeout(t *testing.T) {
	e := start(t, func(o *Options) { o.TunnelTimeout = 400 * time.Millisecond })
	// Traffic in one direction only keeps a session alive past the timeout.
	busy := e.ws("/busy")
	until := time.Now().Add(1200 * time.Millisecond)
	for time.Now().Before(until) {
		if err := busy.Conn.(*tls.Conn).SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := busy.Echo("tick", 5*time.Second); err != nil {
			t.Fatalf("busy session cut: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // pacing the traffic, not waiting for state
	}
	quiet := e.ws("/quiet")
	quiet.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	began := time.Now()
	if _, _, err := quiet.Receive(); err == nil || isTimeout(err) {
		t.Fatalf("quiet session not closed: %v", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("quiet session closed after %v, timeout 400ms", d)
	}
	l := e.sessionLog("path", "/quiet")
	if l["reason"] != "idle timeout" {
		t.Errorf("reason %v", l["reason"])
	}
}

func TestConnectionCap(t *testing.T) {
	e := start(t, func(o *Options) { o.MaxConnections = 1 })
	first := e.ws("/first")
	_, err := tls.Dial("tcp", e.addr, e.tls)
	if err == nil {
		t.Fatal("second connection accepted over the cap")
	}
	if err := first.Echo("still here", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if e.logs.FilterMessage("connection limit reached; refusing a connection").Len() == 0 {
		t.Error("refusal not logged")
	}
}

func TestHandshakeFailureClasses(t *testing.T) {
	e := start(t)
	// A client that does not trust our certificate.
	if _, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "localhost"}); err == nil {
		t.Fatal("untrusting client connected")
	}
	// A client that only speaks TLS 1.1.
	if _, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.tls.RootCAs, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 client connected")
	}
	// A client that says nothing.
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Something that is not TLS (nor HTTP).
	c, err = net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("\x00\x01\x02\x03\x04\x05 not tls"))
	io.ReadAll(c)
	c.Close()
	for _, class := range []string{failRejectedCert, failProtocol, failNoData, failNotTLS} {
		waitFor(t, 5*time.Second, "handshake failure "+class, func() bool {
			return e.logs.FilterMessage("TLS handshake failed").FilterField(zapString("class", class)).Len() > 0
		})
	}
	l := e.logs.FilterMessage("TLS handshake failed").FilterField(zapString("class", failRejectedCert)).All()[0].ContextMap()
	if l["dialed"] != e.addr {
		t.Errorf("dialed %v, want %s", l["dialed"], e.addr)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	e := start(t, func(o *Options) { o.HandshakeTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{0x16, 0x03, 0x01}) // the start of a record, then silence
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); isTimeout(err) {
		t.Fatal("the proxy kept a silent handshake open")
	}
	waitFor(t, 5*time.Second, "timeout class", func() bool {
		return e.logs.FilterMessage("TLS handshake failed").FilterField(zapString("class", failTimeout)).Len() > 0
	})
}

func TestBackendMarkedDownClosesSessions(t *testing.T) {
	b, err := wstest.StartBackend("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	checker := health.New(health.Options{
		Addr: b.Addr(), Interval: 50 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 2,
	})
	e := startWith(t, b, b.Addr(), func(o *Options) { o.Health = checker })
	checker.OnChange(func(s health.State, reason string) { e.srv.BackendChanged(b.Addr(), s, reason) })
	ctx, cancel := context.WithCancel(context.Background())
	checked := make(chan struct{})
	go func() { defer close(checked); checker.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-checked })
	waitFor(t, 5*time.Second, "backend up", func() bool { st, _ := checker.State(); return st == health.Up })

	c := e.ws("/doomed")
	if err := c.Echo("alive", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	b.StopListening() // checks now fail; the session's connection stays
	c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.Receive(); err == nil {
		t.Fatal("session survived the backend being marked down")
	}
	l := e.sessionLog("path", "/doomed")
	if l["reason"] != "backend down" {
		t.Errorf("reason %v", l["reason"])
	}
	if e.logs.FilterMessage("backend marked down: closing its sessions").Len() != 1 {
		t.Error("mark-down not logged once")
	}
}

func TestGracefulShutdown(t *testing.T) {
	e := start(t)
	tunnel := e.ws("/open")
	idle := e.dial() // handshaken, no request yet
	if err := idle.Handshake(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctx) }()

	// The idle connection is closed at once.
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("idle connection not closed: %v", err)
	}
	// New connections are refused.
	waitFor(t, 5*time.Second, "listener closed", func() bool {
		c, err := net.Dial("tcp", e.addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// The open session still works during the grace period...
	if err := tunnel.Echo("during grace", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// ...and is closed when it ends.
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown returned %v", err)
	}
	tunnel.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := tunnel.Receive(); err == nil || isTimeout(err) {
		t.Fatalf("tunnel not closed: %v", err)
	}
	if l := e.sessionLog("path", "/open"); l["reason"] != "shutdown" {
		t.Errorf("reason %v", l["reason"])
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProxyProtocol(t *testing.T) {
	e := start(t, func(o *Options) { o.ProxyProtocol = true })
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	io.WriteString(raw, "PROXY TCP4 203.0.113.7 10.0.0.1 51234 48322\r\n")
	c := tls.Client(raw, e.tls)
	cl, err := wstest.Upgrade(c, "localhost", "/via-lb")
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if l := e.sessionLog("path", "/via-lb"); l["client"] != "203.0.113.7:51234" {
		t.Errorf("client %v", l["client"])
	}

	// Without the header the connection is refused and the reason logged.
	if _, err := tls.Dial("tcp", e.addr, e.tls); err == nil {
		t.Fatal("connection without PROXY header accepted")
	}
	waitFor(t, 5*time.Second, "PROXY failure log", func() bool {
		return e.logs.FilterMessage("TLS handshake failed").FilterField(zapString("class", failProxyHeader)).Len() > 0
	})
}

func TestBackendErrors(t *testing.T) {
	t.Run("garbage is 502", func(t *testing.T) {
		addr := scriptedBackend(t, func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH\r\n\r\n") })
		e := startWith(t, nil, addr)
		cl, _ := wstest.Upgrade(e.dial(), "localhost", "/")
		if cl == nil || cl.Response.StatusCode != 502 {
			t.Fatalf("got %v", cl)
		}
		wantCORS(t, cl.Response.Header)
	})
	t.Run("a close before answering is 502 while the backend is there", func(t *testing.T) {
		addr := scriptedBackend(t, func(c net.Conn) {})
		e := startWith(t, nil, addr)
		cl, _ := wstest.Upgrade(e.dial(), "localhost", "/dropped")
		if cl == nil || cl.Response.StatusCode != 502 {
			t.Fatalf("got %v", cl)
		}
		wantCORS(t, cl.Response.Header)
		if l := e.sessionLog("path", "/dropped"); l["reason"] != "backend closed before answering" {
			t.Errorf("session log: %v", l)
		}
	})
	t.Run("a close before answering is 503 when the backend has gone", func(t *testing.T) {
		// The runtime stops with the upgrade unanswered: it accepts one
		// connection, stops listening, then drops the request.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c, err := ln.Accept()
			ln.Close()
			if err == nil {
				c.Read(make([]byte, 4096))
				c.Close()
			}
		}()
		t.Cleanup(func() { ln.Close(); <-done })
		e := startWith(t, nil, ln.Addr().String())
		cl, _ := wstest.Upgrade(e.dial(), "localhost", "/stopped")
		if cl == nil || cl.Response.StatusCode != 503 {
			t.Fatalf("got %v", cl)
		}
		wantCORS(t, cl.Response.Header)
		l := e.sessionLog("path", "/stopped")
		if l["reason"] != "backend unreachable" || !strings.Contains(fmt.Sprint(l["backend_error"]), "backend closed before answering") {
			t.Errorf("session log: %v", l)
		}
	})
	t.Run("silence is 504", func(t *testing.T) {
		addr := scriptedBackend(t, func(c net.Conn) { io.Copy(io.Discard, c) })
		e := startWith(t, nil, addr, func(o *Options) { o.ResponseTimeout = 300 * time.Millisecond })
		cl, _ := wstest.Upgrade(e.dial(), "localhost", "/")
		if cl == nil || cl.Response.StatusCode != 504 {
			t.Fatalf("got %v", cl)
		}
		wantCORS(t, cl.Response.Header)
	})
}

// scriptedBackend reads a request head and hands the connection to f.
func scriptedBackend(t *testing.T, f func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			var head bytes.Buffer
			br := bufio.NewReader(c)
			for !bytes.HasSuffix(head.Bytes(), []byte("\r\n\r\n")) {
				b, err := br.ReadByte()
				if err != nil {
					break
				}
				head.WriteByte(b)
			}
			f(c)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestTLSPolicy(t *testing.T) {
	e := start(t)
	// ALPN: http/1.1 is chosen even when the client prefers h2.
	c, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.tls.RootCAs, ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("ALPN %q", p)
	}
	c.Close()
	// TLS 1.2 with a CBC suite only, or without forward secrecy: refused.
	for _, suite := range []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA} {
		cfg := &tls.Config{RootCAs: e.tls.RootCAs, ServerName: "localhost", MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}}
		if c, err := tls.Dial("tcp", e.addr, cfg); err == nil {
			c.Close()
			t.Errorf("suite %s accepted", tls.CipherSuiteName(suite))
		}
	}
	// TLS 1.2 with an intermediate suite works.
	cfg := &tls.Config{RootCAs: e.tls.RootCAs, ServerName: "localhost", MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}
	c, err = tls.Dial("tcp", e.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// No session resumption by default, as in the reference container.
	cache := tls.NewLRUClientSessionCache(4)
	for i := range 2 {
		c, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.tls.RootCAs, ServerName: "localhost", ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		// TLS 1.3 tickets arrive after the handshake; a read fetches them.
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		c.Read(make([]byte, 1))
		if c.ConnectionState().DidResume {
			t.Errorf("connection %d resumed a session", i)
		}
		c.Close()
	}
}

// Accepted sockets inherit the listener's keepalive and user timeout, which
// is what lets the proxy skip setting them per connection.
func TestAcceptedSocketsInheritOptions(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rc, _ := a.(*net.TCPConn).SyscallConn()
	rc.Control(func(fd uintptr) {
		for _, o := range []struct {
			name       string
			level, opt int
			want       int
		}{
			{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30},
			{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 10},
			{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 3},
			{"TCP_USER_TIMEOUT", unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 60000},
			{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		} {
			got, err := unix.GetsockoptInt(int(fd), o.level, o.opt)
			if err != nil || got != o.want {
				t.Errorf("%s = %d (%v), want %d", o.name, got, err, o.want)
			}
		}
	})
}

func TestKeyExchangeSetting(t *testing.T) {
	for _, pq := range []bool{true, false} {
		e := start(t, func(o *Options) { o.TLSPostQuantum = pq })
		c, err := tls.Dial("tcp", e.addr, e.tls) // Go's client offers both
		if err != nil {
			t.Fatal(err)
		}
		got := c.ConnectionState().CurveID
		c.Close()
		want := tls.X25519
		if pq {
			want = tls.X25519MLKEM768
		}
		if got != want {
			t.Errorf("TLSPostQuantum=%v: negotiated %v, want %v", pq, got, want)
		}
	}
}

// trickle writes everything in small pieces, so the proxy reads TLS records
// in fragments: the client direction must stage partial records.
type trickle struct {
	net.Conn
	piece int
}

func (t trickle) Write(b []byte) (int, error) {
	for i := 0; i < len(b); i += t.piece {
		if _, err := t.Conn.Write(b[i:min(i+t.piece, len(b))]); err != nil {
			return i, err
		}
	}
	return len(b), nil
}

func TestFragmentedRecords(t *testing.T) {
	for _, park := range []bool{false, true} {
		t.Run(fmt.Sprintf("parking=%v", park), func(t *testing.T) {
			e := start(t, func(o *Options) {
				if park {
					o.ParkAfter = 20 * time.Millisecond
				}
			})
			raw, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			cl, err := wstest.Upgrade(tls.Client(trickle{raw, 7}, e.tls), "localhost", "/trickle")
			if err != nil {
				t.Fatal(err)
			}
			for i, size := range []int{1, 100, 3000, 17000} {
				msg := strings.Repeat(string(rune('a'+i)), size)
				if err := cl.Echo(msg, 10*time.Second); err != nil {
					t.Fatalf("%d bytes: %v", size, err)
				}
			}
		})
	}
}
