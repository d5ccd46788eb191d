//go:build linux

package proxy

import (
	"context"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Listen opens the TCP listener with the client-side socket options set
// on the listening socket itself: Linux copies them to every accepted
// socket, which saves five system calls per connection. (Go's own
// per-connection keepalive is switched off for the same reason.)
// keepalive is CLIENT_KEEPALIVE; 0 means defaultKeepalive.
func Listen(network, addr string, keepalive time.Duration) (net.Listener, error) {
	dp := deadPeerFor(keepalive)
	lc := net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = setClientOptions(int(fd), dp) }); err != nil {
				return err
			}
			return serr
		},
	}
	return lc.Listen(context.Background(), network, addr)
}

func setClientOptions(fd int, dp deadPeer) error {
	for _, o := range []struct{ level, name, value int }{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(dp.idle / time.Second)},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(dp.interval / time.Second)},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, dp.count},
		{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(dp.userTimeout / time.Millisecond)},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return err
		}
	}
	return nil
}

// SetListenerOptions sets on ln (made by Listen, or inherited from the
// process an upgrade took over from, with that one's settings) the
// options accepted sockets inherit, for keepalive (CLIENT_KEEPALIVE).
func SetListenerOptions(ln net.Listener, keepalive time.Duration) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	dp := deadPeerFor(keepalive)
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setClientOptions(int(fd), dp) }); err != nil {
		return err
	}
	return serr
}
