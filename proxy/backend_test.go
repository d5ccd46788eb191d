package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/health"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

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

// A session that merely connects to the backend's port does not mark a
// backend the checks have down as up: another program may hold the port.
// One that gets an HTTP answer does (issue 20).
func TestOnlyAnAnswerMarksTheBackendUp(t *testing.T) {
	ssh := testutil.ServeEach(t, testutil.SSHGreeting) // where the runtime should be
	h := health.New(health.Options{Addr: ssh, Interval: time.Hour, Timeout: time.Second, Rise: 1, Fall: 1, Probe: health.HTTP})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { h.Run(ctx); close(ran) }()
	t.Cleanup(func() { cancel(); <-ran })
	waitFor(t, 5*time.Second, "the first check", func() bool { st, _ := h.State(); return st == health.Down })

	e := startWith(t, nil, ssh, func(o *Options) { o.Health = h })
	cl, _ := wstest.Upgrade(e.dial(), "localhost", "/")
	if cl == nil || cl.Response.StatusCode != http.StatusBadGateway {
		t.Fatalf("want 502 from the SSH server, got %v", cl)
	}
	if st, _ := h.State(); st != health.Down {
		t.Errorf("a connect to another program marked the backend %v", st)
	}

	// A checker that found nothing (its port closed) has the backend down;
	// a session that gets its 101 from the runtime marks it up.
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closed.Close()
	h2 := health.New(health.Options{Addr: closed.Addr().String(), Interval: time.Hour, Timeout: time.Second, Rise: 5, Fall: 1})
	ctx2, cancel2 := context.WithCancel(context.Background())
	ran2 := make(chan struct{})
	go func() { h2.Run(ctx2); close(ran2) }()
	t.Cleanup(func() { cancel2(); <-ran2 })
	waitFor(t, 5*time.Second, "the first check", func() bool { st, _ := h2.State(); return st == health.Down })
	e2 := start(t, func(o *Options) { o.Health = h2 })
	ws := e2.ws("/")
	ws.Close()
	if st, _ := h2.State(); st != health.Up {
		t.Errorf("a session that got its 101: %v", st)
	}
}
