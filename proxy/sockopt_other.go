//go:build !linux

package proxy

import (
	"context"
	"net"
	"time"
)

// Listen opens the TCP listener; Go sets the keepalive of each accepted
// socket (keepalive is CLIENT_KEEPALIVE; 0 means defaultKeepalive). There
// is no TCP_USER_TIMEOUT here: data a vanished client never acknowledges
// waits for the system's retransmission limit instead.
func Listen(network, addr string, keepalive time.Duration) (net.Listener, error) {
	dp := deadPeerFor(keepalive)
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: dp.idle, Interval: dp.interval, Count: dp.count,
	}}
	return lc.Listen(context.Background(), network, addr)
}

// SetListenerOptions does nothing here: a listener inherited from the
// process an upgrade took over from gives its sockets Go's default
// keepalive (15 s) rather than CLIENT_KEEPALIVE's.
func SetListenerOptions(net.Listener, time.Duration) error { return nil }
