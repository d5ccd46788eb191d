package proxy

import (
	"context"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Dead-peer detection. Signaling sessions sit quiet for hours while media
// flows elsewhere, so idleness is no sign of death; TCP keepalive is. A
// client that vanished (no FIN, no reset) is found within about a minute,
// and TCP_USER_TIMEOUT bounds how long unacknowledged data may wait.
const (
	keepIdle    = 30 * time.Second
	keepIntvl   = 10 * time.Second
	keepCount   = 3
	userTimeout = 60 * time.Second
)

// Listen opens the TCP listener with the client-side socket options set
// on the listening socket itself: Linux copies them to every accepted
// socket, which saves five system calls per connection. (Go's own
// per-connection keepalive is switched off for the same reason.)
func Listen(network, addr string) (net.Listener, error) {
	lc := net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = setClientOptions(int(fd)) }); err != nil {
				return err
			}
			return serr
		},
	}
	return lc.Listen(context.Background(), network, addr)
}

func setClientOptions(fd int) error {
	for _, o := range []struct{ level, name, value int }{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(keepIdle / time.Second)},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(keepIntvl / time.Second)},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepCount},
		{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout / time.Millisecond)},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return err
		}
	}
	return nil
}

// backendDialer connects to the runtime. Its sockets get no keepalive:
// the health checks watch the backend, and a backend marked down has its
// sessions closed. Go sets TCP_NODELAY, which signaling latency needs.
var backendDialer = net.Dialer{KeepAlive: -1}

// tcpConn finds the TCP connection under c, or nil.
func tcpConn(c net.Conn) *net.TCPConn {
	switch c := c.(type) {
	case *net.TCPConn:
		return c
	case *pollConn:
		return c.TCPConn
	}
	return nil
}
