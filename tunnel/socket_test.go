package tunnel

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// socketPair is a Socket and the plain TCP connection at its other end:
// the Socket made by NewSocket around a dialed net.TCPConn (the backend's,
// dialed by the proxy) or an accepted one (the client's).
func socketPair(t *testing.T, dialed bool) (*Socket, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	mine, far := c.(*net.TCPConn), a.(*net.TCPConn)
	if !dialed {
		mine, far = far, mine
	}
	s := NewSocket(mine)
	t.Cleanup(func() { s.Close(); far.Close() })
	return s, far
}

// bothKinds runs f on a Socket of each kind.
func bothKinds(t *testing.T, f func(t *testing.T, s *Socket, far *net.TCPConn)) {
	for _, dialed := range []bool{false, true} {
		t.Run(map[bool]string{false: "accepted", true: "dialed"}[dialed], func(t *testing.T) {
			s, far := socketPair(t, dialed)
			f(t, s, far)
		})
	}
}

// A Socket behaves as the net.TCPConn it wraps: bytes both ways, a large
// write waits for room, io.EOF after the peer's FIN.
func TestSocketReadsAndWrites(t *testing.T) { bothKinds(t, readsAndWrites) }

func readsAndWrites(t *testing.T, s *Socket, far *net.TCPConn) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB: more than the socket buffers hold
	got := make(chan []byte)
	go func() { b, _ := io.ReadAll(io.LimitReader(far, int64(len(big)))); got <- b }()
	if n, err := s.Write(big); err != nil || n != len(big) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(big))
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the peer read %d bytes, not what was written", len(b))
	}
	far.Write([]byte("hello"))
	far.CloseWrite()
	b, err := io.ReadAll(s)
	if err != nil || string(b) != "hello" {
		t.Fatalf("ReadAll = %q, %v; want hello, nil (io.EOF at the end)", b, err)
	}
	if n, err := s.Read(nil); n != 0 || err != nil {
		t.Fatalf("an empty Read = %d, %v", n, err)
	}
}

// Deadlines, a closed socket and a peer gone give the errors net.TCPConn
// gives, and a write to a reset peer is an error, not a SIGPIPE.
func TestSocketErrors(t *testing.T) { bothKinds(t, socketErrors) }

func socketErrors(t *testing.T, s *Socket, far *net.TCPConn) {
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := s.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v; want os.ErrDeadlineExceeded", err)
	}
	s.SetReadDeadline(time.Time{})

	far.SetLinger(0)
	far.Close() // a reset
	var err error
	for range 100 { // the first write may still be accepted before the reset is seen
		if _, err = s.Write([]byte("x")); err != nil {
			break
		}
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "write" || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		t.Fatalf("Write to a reset peer: %v; want a *net.OpError for write with ECONNRESET or EPIPE", err)
	}
	s.Close()
	if _, err := s.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v; want net.ErrClosed", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v; want net.ErrClosed", err)
	}
}
