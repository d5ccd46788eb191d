//go:build linux

package tunnel

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestQuietWaysParkAndWake(t *testing.T) {
	pk, err := NewParker(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer pk.Close()
	p := openPair(t, Options{Parker: pk}, true)
	p.echo(t, []byte("first"))
	testutil.WaitFor(t, 5*time.Second, "both ways parked", func() bool { return pk.Parked() == 2 })
	for i := range 3 {
		p.echo(t, bytes.Repeat([]byte{byte(i)}, 40000)) // wakes both ways
		testutil.WaitFor(t, 5*time.Second, "parked again", func() bool { return pk.Parked() == 2 })
	}
	p.tun.Stop(Graceful, Shutdown) // wakes the parked ways so they end
	if r := p.wait(t); r.End != Shutdown || pk.Parked() != 0 {
		t.Errorf("result %+v, %d parked", r, pk.Parked())
	}
}

func TestParkedIdleTimeout(t *testing.T) {
	pk, err := NewParker(30 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer pk.Close()
	p := openPair(t, Options{Parker: pk, Idle: 300 * time.Millisecond}, true)
	testutil.WaitFor(t, 5*time.Second, "both ways parked", func() bool { return pk.Parked() == 2 })
	if r := p.wait(t); r.End != IdleTimeout {
		t.Errorf("result %+v", r)
	}
}

// The pump waits for readability only when readPending says nothing is
// left; a FIN queued behind the bytes must count, or the way would wait for
// an edge that never comes (see the pump in way.go).
func TestReadPendingSeesFIN(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, _ := c.(*net.TCPConn).SyscallConn()
	rc.Control(func(fd uintptr) { enableInq(int(fd)) })
	var oob inqBuf
	read := func(buf []byte) (n int, more bool, err error) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		rerr := rc.Read(func(fd uintptr) bool {
			n, more, err = readPending(int(fd), buf, &oob)
			return err != unix.EAGAIN
		})
		if rerr != nil {
			t.Fatal(rerr)
		}
		return
	}

	peer.Write([]byte("hello"))
	if n, more, err := read(make([]byte, 64)); n != 5 || more || err != nil {
		t.Fatalf("bytes alone: %d more=%v %v; want 5, nothing pending", n, more, err)
	}
	peer.Write([]byte("bye"))
	peer.(*net.TCPConn).CloseWrite()
	// Wait until the bytes are queued (on loopback the FIN comes with
	// them); SIOCINQ looks without reading.
	testutil.WaitFor(t, 5*time.Second, "the bytes queued", func() bool {
		var inq int
		rc.Control(func(fd uintptr) { inq, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		return inq == 3
	})
	if n, more, err := read(make([]byte, 64)); n != 3 || !more || err != nil {
		t.Fatalf("bytes with a FIN behind them: %d more=%v %v; want 3 and the FIN pending", n, more, err)
	}
	if n, _, err := read(make([]byte, 64)); n != 0 || err != nil {
		t.Fatalf("after the bytes: %d %v, want the end of stream", n, err)
	}
}
