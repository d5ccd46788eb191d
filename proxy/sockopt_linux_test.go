//go:build linux

package proxy

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// Accepted sockets inherit the listener's keepalive and user timeout, which
// is what lets the proxy skip setting them per connection.
func TestAcceptedSocketsInheritOptions(t *testing.T) {
	ln, err := Listen("tcp", "127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rc, _ := a.(*net.TCPConn).SyscallConn()
	rc.Control(func(fd uintptr) {
		for _, o := range []struct {
			name       string
			level, opt int
			want       int
		}{
			{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30},
			{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 10},
			{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 3},
			{"TCP_USER_TIMEOUT", unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 60000},
			{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		} {
			got, err := unix.GetsockoptInt(int(fd), o.level, o.opt)
			if err != nil || got != o.want {
				t.Errorf("%s = %d (%v), want %d", o.name, got, err, o.want)
			}
		}
	})
}
