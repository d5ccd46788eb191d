package tunnel

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestEchoBothWays(t *testing.T) { bothPumps(t, testEchoBothWays) }

func testEchoBothWays(t *testing.T) {
	p := openPair(t, Options{}, true)
	p.echo(t, []byte("hello"))
	p.echo(t, bytes.Repeat([]byte("0123456789abcdef"), 8192)) // 128 KiB, many records
	p.client.Close()
	if n, err := p.far.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("backend: %d %v, want EOF", n, err)
	}
	p.far.Close()
	r := p.wait(t)
	if r.End != ClientClosed || r.Up != 5+128<<10 || r.Down != 5+128<<10 {
		t.Errorf("result %+v", r)
	}
}

// A half-closed tunnel whose open way stays quiet ends after the linger
// time, with the first end (the backend's close) and a goodbye.
func TestLingerEnds(t *testing.T) { bothPumps(t, testLingerEnds) }

func testLingerEnds(t *testing.T) {
	const linger = 300 * time.Millisecond
	p := openPair(t, Options{Linger: linger}, true)
	start := time.Now()
	p.far.(*net.TCPConn).CloseWrite()
	p.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client: %v, want EOF (close_notify)", err)
	}
	r := p.wait(t) // the client never closes its half
	if took := time.Since(start); took < linger {
		t.Errorf("ended after %v, before the linger time %v", took, linger)
	}
	if r.End != BackendClosed {
		t.Errorf("result %+v, want the backend's close as the end", r)
	}
}

// The half-close matrix: whichever side closes its half first, the other
// way goes on until its side closes too, and each end reaches the other.
func TestHalfClose(t *testing.T) { bothPumps(t, testHalfClose) }

func testHalfClose(t *testing.T) {
	t.Run("client first", func(t *testing.T) {
		p := openPair(t, Options{}, true)
		p.client.CloseWrite() // close_notify
		p.far.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := p.far.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("backend: %d %v, want EOF", n, err)
		}
		// The way down still works.
		p.far.Write([]byte("late reply"))
		got := make([]byte, 10)
		p.client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(p.client, got); err != nil || string(got) != "late reply" {
			t.Fatalf("client: %q %v", got, err)
		}
		p.far.(*net.TCPConn).CloseWrite()
		if _, err := p.client.Read(got); err != io.EOF {
			t.Errorf("client: %v, want EOF (close_notify)", err)
		}
		if r := p.wait(t); r.End != ClientClosed || r.Goodbye {
			t.Errorf("result %+v", r)
		}
	})
	t.Run("backend first", func(t *testing.T) {
		// The way down starts with the bytes and the FIN both queued: a
		// read returns the bytes without the FIN, and the netpoller will
		// not report the socket again, so the pump must know the FIN is
		// there (TCP_INQ) or read until EAGAIN before it waits.
		p := openPair(t, Options{}, false)
		p.far.Write([]byte("bye"))
		p.far.(*net.TCPConn).CloseWrite()
		p.upgrade()
		got := make([]byte, 3)
		p.client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(p.client, got); err != nil {
			t.Fatal(err)
		}
		if _, err := p.client.Read(got); err != io.EOF {
			t.Fatalf("client: %v, want EOF (close_notify)", err)
		}
		// The way up still works.
		p.client.Write([]byte("ack"))
		p.far.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(p.far, got); err != nil || string(got) != "ack" {
			t.Fatalf("backend: %q %v", got, err)
		}
		p.client.CloseWrite()
		if r := p.wait(t); r.End != BackendClosed || r.Goodbye || r.Down != 3 || r.Up != 3 {
			t.Errorf("result %+v", r)
		}
	})
}

func TestIdleTimeout(t *testing.T) { bothPumps(t, testIdleTimeout) }

func testIdleTimeout(t *testing.T) {
	p := openPair(t, Options{Idle: 200 * time.Millisecond, ResponseIdle: 200 * time.Millisecond}, true)
	p.echo(t, []byte("once"))
	r := p.wait(t)
	if r.End != IdleTimeout || !r.Goodbye {
		t.Errorf("result %+v", r)
	}
}

func TestStop(t *testing.T) { bothPumps(t, testStop) }

func testStop(t *testing.T) {
	for _, tc := range []struct {
		how     StopMode
		goodbye bool
	}{{Graceful, true}, {Cut, false}} {
		p := openPair(t, Options{}, true)
		p.echo(t, []byte("x"))
		p.tun.Stop(tc.how, Shutdown)
		if r := p.wait(t); r.End != Shutdown || r.Goodbye != tc.goodbye {
			t.Errorf("stop %d: result %+v", tc.how, r)
		}
	}
}

func TestBackendBreaksClientGetsGoodbye(t *testing.T) {
	bothPumps(t, testBackendBreaksClientGetsGoodbye)
}

func testBackendBreaksClientGetsGoodbye(t *testing.T) {
	p := openPair(t, Options{}, true)
	p.echo(t, []byte("x"))
	p.far.(*net.TCPConn).SetLinger(0)
	p.far.Close() // a reset
	r := p.wait(t)
	if r.End != BackendLost && r.End != BackendClosed {
		t.Errorf("result %+v", r)
	}
	if r.End == BackendLost && (!r.Goodbye || r.Err == nil) {
		t.Errorf("result %+v: the client should get a goodbye", r)
	}
}

// relay copies a response of known length and stops; the bytes the
// backend sends after it are not passed on.
func TestRelayStopsAtLimit(t *testing.T) { bothPumps(t, testRelayStopsAtLimit) }

func testRelayStopsAtLimit(t *testing.T) {
	p := openPair(t, Options{}, false)
	down := make(chan struct{})
	go func() { defer close(down); p.tun.relay(5, nil) }()
	p.far.Write([]byte("12345 and more"))
	r := p.wait(t)
	<-down
	if r.End != ResponseComplete || r.Down != 5 || !r.Goodbye {
		t.Errorf("result %+v", r)
	}
	got, _ := io.ReadAll(p.client)
	if string(got) != "12345" {
		t.Errorf("client got %q", got)
	}
}

func TestAbandon(t *testing.T) { bothPumps(t, testAbandon) }

func testAbandon(t *testing.T) {
	p := openPairBody(t, Options{}, false, 4)
	p.client.Write([]byte("body"))
	got := make([]byte, 4)
	p.far.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(p.far, got); err != nil {
		t.Fatal(err) // the way up runs before any response
	}
	p.tun.End(BackendClosedEarly, "", nil)
	p.tun.abandon()
	if r := p.wait(t); r.End != BackendClosedEarly || r.Up != 4 || !r.Goodbye {
		t.Errorf("result %+v", r)
	}
}

// The way up passes the request's body and nothing after it: a pipelined
// request, or bytes sent before an upgrade is accepted, never reach a
// backend that would take them as a request the proxy has not checked.
func TestWayUpPassesOnlyTheBody(t *testing.T) { bothPumps(t, testWayUpPassesOnlyTheBody) }

func testWayUpPassesOnlyTheBody(t *testing.T) {
	p := openPairBody(t, Options{}, false, 4)
	p.client.Write([]byte("bodyGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"))
	body := make([]byte, 4)
	p.far.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(p.far, body); err != nil || string(body) != "body" {
		t.Fatalf("the backend got %q (%v)", body, err)
	}
	// The backend's response: the tunnel stops after it and closes the
	// backend, so the far end then reads all else it was ever sent.
	down := make(chan struct{})
	go func() { defer close(down); p.tun.relay(2, nil) }()
	p.far.Write([]byte("ok"))
	r := p.wait(t)
	<-down
	if got, err := io.ReadAll(p.far); len(got) != 0 || err != nil {
		t.Errorf("after the body the backend got %q (%v)", got, err)
	}
	if r.End != ResponseComplete || r.Up != 4 || !r.Goodbye {
		t.Errorf("result %+v", r)
	}
}

func TestWayUpWaitsForTheUpgrade(t *testing.T) { bothPumps(t, testWayUpWaitsForTheUpgrade) }

func testWayUpWaitsForTheUpgrade(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		p := openPair(t, Options{}, false)
		p.client.Write([]byte("GET /smuggled HTTP/1.1\r\n\r\n"))
		down := make(chan struct{})
		go func() { defer close(down); p.tun.relay(3, nil) }()
		p.far.Write([]byte("404"))
		p.wait(t)
		<-down
		p.far.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, _ := io.ReadAll(p.far); len(got) != 0 {
			t.Errorf("the backend got %q before any upgrade", got)
		}
	})
	t.Run("accepted", func(t *testing.T) {
		p := openPair(t, Options{}, false)
		p.client.Write([]byte("early"))
		p.upgrade()
		got := make([]byte, 5)
		p.far.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(p.far, got); err != nil || string(got) != "early" {
			t.Fatalf("after the upgrade the backend got %q (%v)", got, err)
		}
		p.echo(t, []byte("then both ways"))
	})
}

// A tunnel relies on crypto/tls keeping a connection usable after a read
// that returned a temporary error (Conn's "would block" when nothing is
// staged): readFromUntil's error only becomes the connection's final error
// when it is not a temporary net.Error. See
// https://github.com/golang/go/blob/go1.26.0/src/crypto/tls/conn.go#L629-L636
// If a Go release changes that, every tunnel breaks after its first quiet
// moment; this test says so first.
func TestTLSReadSurvivesTemporaryError(t *testing.T) {
	// Not through a tunnel: the server side is read by hand, the client's
	// ciphertext staged a few bytes at a time.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	done := make(chan error, 1)
	var server *tls.Conn
	var cc *Conn
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		cc = NewConn(c.(*net.TCPConn), nil)
		server = tls.Server(cc, serverConfig(t))
		done <- server.Handshake()
	}()
	client, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	msg := bytes.Repeat([]byte("signaling "), 100)
	client.Write(msg)
	// Take the whole record off the socket, then stage it in pieces.
	raw := make([]byte, 4096)
	cc.Socket.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := cc.Socket.Read(raw)
	if err != nil {
		t.Fatal(err)
	}
	cc.staged = true
	var got []byte
	buf := make([]byte, 4096)
	for off := 0; off < n; off += 7 {
		cc.stage = raw[off:min(off+7, n)]
		for {
			m, err := server.Read(buf)
			got = append(got, buf[:m]...)
			if m > 0 {
				continue
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("after %d of %d bytes staged: %v; crypto/tls no longer survives a temporary read error, "+
					"which the tunnel's staged reads rely on (tunnel/conn.go)", off, n, err)
			}
			break
		}
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes of %d through staged pieces", len(got), len(msg))
	}
}
