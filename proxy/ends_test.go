package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// How sessions end, as the log line says it (issue 19): the error behind
// an end reaches the line, and the first end wins.

// upgraded opens a session through the proxy to a raw backend that answers
// 101 and hands its side to f.
func upgraded(t *testing.T, f func(*net.TCPConn, *bufio.Reader)) (*env, net.Conn, *bufio.Reader) {
	t.Helper()
	e := startWith(t, nil, rawBackend(t, f))
	c := e.dial()
	br := bufio.NewReader(c)
	io.WriteString(c, wstest.UpgradeRequest("localhost", "/ends"))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("%v %v", resp, err)
	}
	return e, c, br
}

// A backend lost after the upgrade (a reset): the line has the reason and
// the backend's error.
func TestBackendLostErrorLogged(t *testing.T) {
	reset := make(chan struct{})
	e, c, br := upgraded(t, func(bc *net.TCPConn, _ *bufio.Reader) {
		<-reset
		bc.SetLinger(0)
		bc.Close()
	})
	io.WriteString(c, "ping") // the way up is running
	close(reset)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, br)
	l := e.sessionLog("path", "/ends")
	if l["reason"] != "backend connection lost" && l["reason"] != "backend closed" {
		t.Fatalf("reason %v", l["reason"])
	}
	if l["reason"] == "backend connection lost" && !strings.Contains(fmt.Sprint(l["backend_error"]), "reset") {
		t.Errorf("backend_error %q for %v", l["backend_error"], l["reason"])
	}
}

// A client lost after the upgrade: its error is on the line.
func TestClientLostErrorLogged(t *testing.T) {
	e, c, _ := upgraded(t, func(bc *net.TCPConn, br *bufio.Reader) {
		// Keep sending until the proxy gives up, so that it writes to
		// the client after its reset and the backend never closes first.
		buf := make([]byte, 16<<10)
		for {
			if _, err := bc.Write(buf); err != nil {
				return
			}
		}
	})
	raw := c.(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn)
	raw.SetLinger(0)
	raw.Close() // a reset
	l := e.sessionLog("path", "/ends")
	if l["reason"] != "client connection lost" || l["client_error"] == nil || l["client_error"] == "" {
		t.Errorf("reason %v, client_error %q", l["reason"], l["client_error"])
	}
}

// The first end wins: a tunnel whose client closed its half, stopped by a
// shutdown while it lingers, ended because the client closed; a tunnel
// stopped before anything else ended by the shutdown.
func TestFirstEndWins(t *testing.T) {
	for _, halfClosedFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("halfClosedFirst=%v", halfClosedFirst), func(t *testing.T) {
			got := make(chan struct{})
			e, c, _ := upgraded(t, func(bc *net.TCPConn, br *bufio.Reader) {
				if halfClosedFirst {
					io.ReadAll(br) // the client's half ends
					close(got)
				}
				br.ReadByte() // then wait: the backend never closes
			})
			if halfClosedFirst {
				c.(interface{ CloseWrite() error }).CloseWrite()
				<-got
			}
			e.srv.killAll(tunnel.Shutdown, nil)
			want := "shutdown"
			if halfClosedFirst {
				want = "client closed"
			}
			if l := e.sessionLog("path", "/ends"); l["reason"] != want {
				t.Errorf("reason %v, want %v", l["reason"], want)
			}
		})
	}
}

// The session line names a backend only when one was dialed, and a
// keep-alive session that served several requests lists the earlier ones
// (issue 20: a 401 named a runtime never contacted; "/" then
// "/favicon.ico" logged only the last).
func TestSessionLineSaysWhatWasServed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("right\n"), 0o600)
	s, err := auth.NewStatic(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, func(o *Options) {
		o.Local = fakeLocal{}
		o.Auth, o.AuthQueryParam, o.AuthCookie = s, "token", "cxr_token"
	})
	cl, _ := wstest.Upgrade(e.dial(), "localhost", "/refused")
	if cl == nil || cl.Response.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%v", cl)
	}
	l := e.sessionLog("path", "/refused")
	if _, named := l["backend"]; named || l["backend_conn"] != nil {
		t.Errorf("a refused request's line names a backend: %v", l)
	}
	if _, listed := l["earlier_requests"]; listed {
		t.Errorf("one request, yet earlier ones listed: %v", l)
	}

	c := e.dial()
	br := bufio.NewReader(c)
	for _, target := range []string{"/local/a", "/local/missing", "/local/last"} {
		io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	c.Close()
	l = e.sessionLog("path", "/local/last")
	if got := fmt.Sprint(l["earlier_requests"]); got != "[GET /local/a 200 GET /local/missing 404]" || l["requests"] != int64(3) {
		t.Errorf("earlier requests %s, requests %v", got, l["requests"])
	}

	ok := e.ws("/sign_in?token=right")
	ok.Close()
	if l := e.sessionLog("path", "/sign_in"); l["backend"] != e.backend.Addr() || l["backend_conn"] == nil {
		t.Errorf("a forwarded session's line: %v", l)
	}
}
