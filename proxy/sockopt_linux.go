//go:build linux

package proxy

import (
	"context"
	"fmt"
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

type sockopt struct{ level, name, value int }

// clientOptions are the socket options for dp, set on the listener for
// the accepted sockets to inherit.
func clientOptions(dp deadPeer) []sockopt {
	return []sockopt{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(dp.idle / time.Second)},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(dp.interval / time.Second)},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, dp.count},
		{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(dp.userTimeout / time.Millisecond)},
	}
}

func setClientOptions(fd int, dp deadPeer) error {
	for _, o := range clientOptions(dp) {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return err
		}
	}
	return nil
}

// SetListenerOptions gives ln (inherited from the process an upgrade took
// over from, with that one's settings) the keepalive options accepted
// sockets inherit (CLIENT_KEEPALIVE), where they differ. Some systems
// refuse to change TCP_USER_TIMEOUT on a listening socket: the error then
// says the new value applies after a restart.
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
	err = rc.Control(func(fd uintptr) {
		for _, o := range clientOptions(dp) {
			if v, err := unix.GetsockoptInt(int(fd), o.level, o.name); err == nil && v == o.value {
				continue
			}
			if err := unix.SetsockoptInt(int(fd), o.level, o.name, o.value); err != nil {
				serr = fmt.Errorf("this system does not let the listener taken over be changed: it may keep the previous process's CLIENT_KEEPALIVE until a restart: %w", err)
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
