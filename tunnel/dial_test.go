package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Dial connects on loopback, by IPv4 and IPv6 address and by name, and the
// Socket it gives works both ways with the addresses net.Conn reports.
func TestDialConnects(t *testing.T) {
	for _, c := range []struct{ listen, host string }{
		{"127.0.0.1:0", "127.0.0.1"}, {"127.0.0.1:0", "localhost"}, {"[::1]:0", "::1"},
	} {
		t.Run(c.host, func(t *testing.T) {
			ln, err := net.Listen("tcp", c.listen)
			if err != nil && c.host == "::1" {
				t.Skipf("this host has no IPv6 loopback: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			dialConnects(t, ln, c.host)
		})
	}
}

func dialConnects(t *testing.T, ln net.Listener, host string) {
	port := ln.Addr().(*net.TCPAddr).Port
	var d Dialer
	s, err := d.Dial(context.Background(), net.JoinHostPort(host, strconv.Itoa(port)), time.Second)
	if err != nil {
		t.Fatalf("Dial %s: %v", host, err)
	}
	defer s.Close()
	far, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if s.LocalAddr().String() != far.RemoteAddr().String() || s.RemoteAddr().String() != far.LocalAddr().String() {
		t.Errorf("addresses %v → %v; the far end sees %v → %v", s.LocalAddr(), s.RemoteAddr(), far.RemoteAddr(), far.LocalAddr())
	}
	s.Write([]byte("ping"))
	s.CloseWrite()
	if b, err := io.ReadAll(far); err != nil || string(b) != "ping" {
		t.Errorf("the far end read %q, %v; want ping and a FIN", b, err)
	}
	far.Write([]byte("pong"))
	far.Close()
	if b, err := io.ReadAll(s); err != nil || string(b) != "pong" {
		t.Errorf("the socket read %q, %v; want pong and io.EOF", b, err)
	}
}

// A refused connect, an address Check turns down and a bad address are
// dial errors that say so.
func TestDialFails(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var d Dialer
	_, err := d.Dial(context.Background(), addr, time.Second)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial to a closed port: %v; want a dial *net.OpError with ECONNREFUSED", err)
	}
	no := errors.New("not this one")
	d.Check = func(netip.Addr) error { return no }
	if _, err := d.Dial(context.Background(), addr, time.Second); !errors.Is(err, no) {
		t.Errorf("Dial with a Check that refuses: %v", err)
	}
	for _, bad := range []string{"127.0.0.1", "127.0.0.1:http-alt", "127.0.0.1:70000"} {
		if _, err := (&Dialer{}).Dial(context.Background(), bad, time.Second); err == nil {
			t.Errorf("Dial %q succeeded", bad)
		}
	}
}

// A connect that never completes (the listener's queue is full, so SYNs
// are dropped) ends at the timeout, or when the context is cancelled.
func TestDialWaits(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	unix.Listen(fd, 0) // room for one connection, never accepted
	sa, _ := unix.Getsockname(fd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	var d Dialer
	// Fill the queue; from then on connects wait.
	var filled []*Socket
	defer func() {
		for _, s := range filled {
			s.Close()
		}
	}()
	for range 8 {
		s, err := d.Dial(context.Background(), addr, 100*time.Millisecond)
		if err != nil {
			if !errors.Is(err, errDialTimeout) || !isTimeout(err) {
				t.Fatalf("a connect to a full queue: %v; want a timeout", err)
			}
			break
		}
		filled = append(filled, s)
	}
	if len(filled) == 8 {
		t.Fatal("every connect completed; the queue never filled")
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := d.Dial(ctx, addr, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled connect: %v; want context.Canceled", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the cancelled connect took %v", took)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
