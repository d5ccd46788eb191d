package proxy

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Dead-peer detection. Signaling sessions sit quiet for hours while media
// flows elsewhere, so idleness is no sign of death; TCP keepalive is. A peer
// that vanished (no FIN, no reset) is found within about a minute, and
// TCP_USER_TIMEOUT bounds how long unacknowledged data may wait.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3}

const userTimeout = 60 * time.Second

// tuneTCP sets keepalive, TCP_USER_TIMEOUT and TCP_NODELAY (signaling
// messages are small and latency-bound) on a connection.
func tuneTCP(c net.Conn) {
	tc := tcpConn(c)
	if tc == nil {
		return
	}
	tc.SetKeepAliveConfig(keepAlive)
	tc.SetNoDelay(true)
	if rc, err := tc.SyscallConn(); err == nil {
		rc.Control(setUserTimeout)
	}
}

// setUserTimeout fits net.Dialer.Control's callback too.
func setUserTimeout(fd uintptr) {
	unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout/time.Millisecond))
}

func dialControl(_, _ string, rc syscall.RawConn) error {
	return rc.Control(setUserTimeout)
}

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
