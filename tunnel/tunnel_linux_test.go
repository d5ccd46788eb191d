//go:build linux

package tunnel

import (
	"bytes"
	"net"
	"runtime"
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

// BenchmarkIdleSession measures what a quiet upgraded session holds on each
// pump, the figure the README gives per platform: Go heap and goroutine
// stacks in use, and goroutines, per session, once the raw pump's ways have
// parked. The test's own ends (the client's TLS connection, the backend's
// socket) are counted too, the same on both pumps, so the difference between
// the two is what the portable pump adds. Run it with -benchtime=1x:
//
//	go test -run '^$' -bench IdleSession -benchtime=1x ./tunnel
func BenchmarkIdleSession(b *testing.B) {
	for _, portable := range []bool{false, true} {
		b.Run(map[bool]string{false: "raw-parked", true: "portable"}[portable], func(b *testing.B) {
			portablePump = portable
			defer func() { portablePump = false }()
			pk, err := NewParker(50 * time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			defer pk.Close()
			const n = 500
			for range b.N {
				heap0, goroutines0 := inUse()
				pairs := make([]*pair, n)
				for i := range pairs {
					pairs[i] = openPair(b, Options{Parker: pk}, true)
					pairs[i].echo(b, []byte("hello"))
				}
				if !portable {
					deadline := time.Now().Add(10 * time.Second)
					for pk.Parked() != 2*n {
						if time.Now().After(deadline) {
							b.Fatalf("%d of %d ways parked", pk.Parked(), 2*n)
						}
						time.Sleep(10 * time.Millisecond)
					}
				}
				heap, goroutines := inUse()
				b.ReportMetric(float64(heap-heap0)/n/1024, "KiB/session")
				b.ReportMetric(float64(goroutines-goroutines0)/n, "goroutines/session")
				for _, p := range pairs {
					p.client.Close()
					p.far.Close()
					p.tun.Stop(Cut, Shutdown)
					p.down.Wait()
				}
			}
		})
	}
}

// inUse returns the Go heap and stacks in use after a collection, and the
// number of goroutines.
func inUse() (bytes uint64, goroutines int) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse, runtime.NumGoroutine()
}
