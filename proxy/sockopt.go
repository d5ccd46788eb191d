package proxy

import (
	"net"
	"net/netip"
	"syscall"
	"time"
)

// backendDialer connects to the runtime. Its sockets get no keepalive:
// the health checks watch the backend, and a backend marked down has its
// sessions closed. Go sets TCP_NODELAY, which signaling latency needs.
//
// It is the library's: a hand-written connect with x/sys (about 25
// allocations and two goroutine hand-offs less per session) measured
// 1.01 (0.83-1.16) of net.Dialer's CPU per session with X25519 and 0.96
// (0.86-1.07) with the default key exchange, in 10 alternating rounds
// (bench -baseline, bench/README.md item 22): inside the noise, so not
// worth its 231 lines.
var backendDialer = net.Dialer{KeepAlive: -1}

// checkResolved makes a dialer's Control from a check of each address a
// target resolved to, just before its connect.
func checkResolved(check func(netip.Addr) error) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		return check(ap.Addr().Unmap())
	}
}

// defaultKeepalive is what Listen uses for 0 (CLIENT_KEEPALIVE's default too).
const defaultKeepalive = 30 * time.Second

// Dead-peer detection. Signaling sessions sit quiet for hours while media
// flows elsewhere, so idleness is no sign of death; TCP keepalive is. With
// keepalive k, a client that vanished (no FIN, no reset) is found after k
// idle plus three unanswered probes k/3 apart (a minute by default), and
// TCP_USER_TIMEOUT (2k) bounds how long unacknowledged data may wait.
type deadPeer struct {
	idle, interval, userTimeout time.Duration
	count                       int
}

func deadPeerFor(k time.Duration) deadPeer {
	if k <= 0 {
		k = defaultKeepalive
	}
	return deadPeer{idle: k, interval: max(k/3, time.Second), count: 3, userTimeout: 2 * k}
}
