package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/health"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// The server's side facing the runtimes: dialing a session's backend, and
// what the health checks say about it.

// BackendChanged is a health checker's callback: when a backend is marked
// down, sessions connected to it are closed (HAProxy's "on-marked-down
// shutdown-sessions"), since the runtime behind them is gone. addr is the
// default backend or a routed runtime's address.
func (s *Server) BackendChanged(addr string, st health.State, reason string) {
	if st != health.Down {
		return
	}
	n := s.killAll(tunnel.BackendDown, func(sess *session) bool {
		return sess.tun.Forwarding() && cmp.Or(sess.runtime, sess.target, s.opts.Backend) == addr
	})
	if n > 0 {
		s.log.Warn("backend marked down: closing its sessions", zap.String("backend", addr), zap.String("reason", reason), zap.Int("sessions", n))
	}
}

// killAll ends every session that match selects (nil: all).
func (s *Server) killAll(r tunnel.End, match func(*session) bool) int {
	s.mu.Lock()
	var victims []*session
	for sess := range s.sessions {
		if match == nil || match(sess) {
			victims = append(victims, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range victims {
		sess.tun.Stop(tunnel.Graceful, r)
	}
	return len(victims)
}

// errBackendDown is a failed dial to a backend its checks had marked down:
// answered 503 (known down) rather than 502.
var errBackendDown = errors.New("backend marked down")

// dial connects to the session's backend: the default one, a routed
// runtime or a pooled one. While the checks have it marked down a dial is
// still tried, with a short timeout: a restarted runtime is then usable at
// once instead of after HEALTH_CHECK_RISE checks (see answered).
func (s *Server) dial(ctx context.Context, sess *session) (net.Conn, error) {
	addr := cmp.Or(sess.target, s.opts.Backend)
	h := s.checkerOf(sess)
	timeout := s.opts.ConnectTimeout
	wasUp := true
	if h != nil {
		if st, _ := h.State(); st != health.Up {
			wasUp = false
			timeout = min(timeout, downDialTimeout)
		}
	}
	d := &s.dialer
	if sess.target != "" && sess.runtime == "" {
		d = &s.routedDialer
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if !wasUp {
			return nil, fmt.Errorf("dialing backend: %w: %w", errBackendDown, err)
		}
		return nil, fmt.Errorf("dialing backend: %w", err)
	}
	return tunnel.NewSocket(c.(*net.TCPConn)), nil // raw reads and writes (see tunnel.Socket)
}

// checkerOf is the health checker of the session's backend, or nil.
func (s *Server) checkerOf(sess *session) *health.Checker {
	switch {
	case sess.runtime != "":
		if s.opts.PoolHealth != nil {
			return s.opts.PoolHealth(sess.runtime)
		}
		return nil
	case sess.target != "":
		return s.opts.RouteHealth[sess.target]
	}
	return s.opts.Health
}

// answered is told that the backend answered a session's request with an
// HTTP response head: a backend the checks have marked down is then up at
// once, the best evidence there is. A connect alone is not: another
// program may hold the runtime's port.
func (s *Server) answered(sess *session) {
	h := s.checkerOf(sess)
	if h == nil {
		return
	}
	if st, _ := h.State(); st != health.Up {
		h.Observe()
	}
}
