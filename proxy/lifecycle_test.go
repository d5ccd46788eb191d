package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

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
	t.Parallel() // it waits; it measures nothing another test could move
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
