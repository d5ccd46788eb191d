//go:build e2e

package e2e

// A TCP relay that can be cut off as a network partition is: the bytes stop
// flowing both ways while every connection stays open on both sides, with
// no refusal and no reset, so a peer learns of it only from its own
// timeouts. Healing lets the held bytes through, as TCP retransmits them
// once the path is back.

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
)

// relay forwards connections from its own loopback address to one address.
type relay struct {
	ln net.Listener
	to string

	mu     sync.Mutex
	open   chan struct{} // closed while the link is up
	conns  map[net.Conn]struct{}
	closed chan struct{}
	wg     sync.WaitGroup
}

// startRelay relays to the address to until the test ends.
func startRelay(t *testing.T, to string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, to: to, open: make(chan struct{}), conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	close(r.open)
	r.wg.Go(r.acceptLoop)
	t.Cleanup(r.Close)
	return r
}

// Addr is the relay's own address.
func (r *relay) Addr() string { return r.ln.Addr().String() }

// Partition stops every byte, on the connections open and on those still
// to come, until Heal.
func (r *relay) Partition() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.open:
		r.open = make(chan struct{})
	default: // already cut
	}
}

// Heal lets the bytes flow again, those held first.
func (r *relay) Heal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.open:
	default:
		close(r.open)
	}
}

// Close stops the relay and closes every connection through it.
func (r *relay) Close() {
	r.mu.Lock()
	select {
	case <-r.closed:
		r.mu.Unlock()
		return
	default:
	}
	close(r.closed)
	r.ln.Close()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *relay) acceptLoop() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return // closed
		}
		up, err := net.Dial("tcp", r.to)
		if err != nil {
			c.Close()
			continue
		}
		if !r.track(c, up) {
			return
		}
		r.wg.Go(func() { r.pumpUntilPartitioned(up, c) })
		r.wg.Go(func() { r.pumpUntilPartitioned(c, up) })
	}
}

// track records a connection pair, or closes it when the relay is closed.
func (r *relay) track(cs ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.closed:
		for _, c := range cs {
			c.Close()
		}
		return false
	default:
	}
	for _, c := range cs {
		r.conns[c] = struct{}{}
	}
	return true
}

// gate is closed while the link is up.
func (r *relay) gate() chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.open
}

// pumpUntilPartitioned copies src to dst, each read held while the link is
// cut. When either side ends, both connections are closed.
func (r *relay) pumpUntilPartitioned(dst, src net.Conn) {
	defer func() {
		r.mu.Lock()
		delete(r.conns, src)
		delete(r.conns, dst)
		r.mu.Unlock()
		src.Close()
		dst.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-r.gate():
			case <-r.closed:
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, a reset, or the relay closed
		}
	}
}

// The relay itself: bytes pass, are held while partitioned with both
// connections open, and arrive once healed.
func TestRelayPartition(t *testing.T) {
	echo := testutil.ServeEach(t, func(c net.Conn) { io.Copy(c, c) })
	r := startRelay(t, echo)
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip := func(msg string, wait time.Duration) error {
		c.SetDeadline(time.Now().Add(wait))
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		buf := make([]byte, len(msg))
		_, err := io.ReadFull(c, buf)
		return err
	}
	if err := roundTrip("up", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r.Partition()
	if err := roundTrip("cut", 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("through the partition: %v, want the read to time out with the connection open", err)
	}
	r.Heal()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len("cut"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "cut" {
		t.Fatalf("once healed: %q, %v; want the held bytes", buf, err)
	}
}
