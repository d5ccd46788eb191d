package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

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
