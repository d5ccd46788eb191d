package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/allow"
)

// The backend connect: by IPv4 and IPv6 address and by name, to a socket
// that works both ways with the addresses net.Conn reports; a refused
// connect, and a routed name that resolves where it must not, are errors
// that say so.
func TestDialBackend(t *testing.T) {
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
			addr := net.JoinHostPort(c.host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
			srv := New(Options{Backend: addr, ConnectTimeout: time.Second, ParkAfter: -1})
			defer srv.cancel()
			s, err := srv.dial(context.Background(), &session{})
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
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
			s.(interface{ CloseWrite() error }).CloseWrite()
			if b, err := io.ReadAll(far); err != nil || string(b) != "ping" {
				t.Errorf("the far end read %q, %v; want ping and a FIN", b, err)
			}
			far.Write([]byte("pong"))
			far.Close()
			if b, err := io.ReadAll(s); err != nil || string(b) != "pong" {
				t.Errorf("the socket read %q, %v; want pong and io.EOF", b, err)
			}
		})
	}

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close() // nothing listens there now
	srv := New(Options{Backend: closed, ConnectTimeout: time.Second, ParkAfter: -1})
	defer srv.cancel()
	if _, err := srv.dial(context.Background(), &session{}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial to a closed port: %v; want ECONNREFUSED", err)
	}
	// A routed runtime named on the list but resolving to loopback.
	rt, _ := allow.NewRuntimes([]string{"localhost"}, 49100)
	routed := New(Options{Backend: closed, ConnectTimeout: time.Second, Router: NewRouter(rt, 0), ParkAfter: -1})
	defer routed.cancel()
	if _, err := routed.dial(context.Background(), &session{target: "localhost:1"}); err == nil || !strings.Contains(err.Error(), "must be on ROUTE_ALLOW") {
		t.Errorf("a routed name resolving to loopback: %v", err)
	}
}
