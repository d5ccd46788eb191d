package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// The session's own answers, for what it cannot forward: refused heads and
// routes, a backend that cannot be reached or does not answer.

// headFailed handles a request head that could not be read.
func (s *session) headFailed(err error, n int) {
	var rf *refusal
	switch {
	case errors.As(err, &rf):
		s.refuse(err)
	case errors.Is(err, os.ErrDeadlineExceeded) && n == 0 && s.requests > 0:
		s.tun.End(tunnel.KeepAliveTimeout, "", nil)
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.tun.End(tunnel.HeadTimeout, "", nil)
	case errors.Is(err, io.EOF) && n == 0:
		s.tun.End(tunnel.ClientClosed, "", nil)
	default:
		s.tun.End(tunnel.ClientLost, "", err)
	}
}

// refuse answers a request the proxy will not forward (see refusal); the
// session then ends.
func (s *session) refuse(err error) {
	rf := &refusal{status: http.StatusBadRequest, msg: err.Error(), reason: tunnel.BadRequest}
	errors.As(err, &rf)
	s.status = rf.status
	detail := rf.detail
	switch rf.reason {
	case tunnel.BadRequest:
		detail = rf.msg
	case tunnel.RouteRefused:
		s.srv.floodLog.Warn("routing refused", zap.String("client", s.client), zap.String("path", s.path), zap.String("why", rf.msg))
	}
	s.tun.End(rf.reason, detail, nil)
	s.writeClient(localResponse(s.cors, rf.status, false, rf.fields, rf.msg+"\n"))
}

// writeClient writes a response the proxy made, under the head timeout.
func (s *session) writeClient(b []byte) error {
	s.tun.SetWriteDeadline(time.Now().Add(s.srv.opts.HeadTimeout))
	n, err := s.tc.Write(b)
	s.down += int64(n)
	s.tun.SetWriteDeadline(time.Time{})
	return err
}

// dialFailed answers a request whose backend could not be reached: 503
// for the default backend or a routed one its checks have marked down (the
// runtime is not running), 502 for a routed runtime checked on use.
func (s *session) dialFailed(err error) {
	if s.target != "" && !errors.Is(err, errBackendDown) {
		s.backendFailed(http.StatusBadGateway, tunnel.BackendUnreachable, err)
		return
	}
	s.status = http.StatusServiceUnavailable
	s.tun.End(tunnel.BackendUnreachable, "", err)
	s.writeClient(localResponse(s.cors, http.StatusServiceUnavailable, false, nil, s.srv.unreachableMsg))
}

// backendLost answers a request whose backend connection failed before a
// byte of the response came. Most often the runtime was stopped or
// restarted just then; a new connection tells: refused, the answer is the
// one for a runtime that is not running (dialFailed), as HAProxy's 503;
// accepted, the runtime is there and dropped the request: 502.
func (s *session) backendLost(r tunnel.End, err error) {
	c, derr := s.srv.dial(s.srv.ctx, s.target)
	if derr != nil {
		s.dialFailed(fmt.Errorf("%s: %w; connecting again: %w", r, err, derr))
		return
	}
	c.Close()
	s.backendFailed(http.StatusBadGateway, r, err)
}

// backendFailed answers a failed exchange with the backend.
func (s *session) backendFailed(status int, r tunnel.End, err error) {
	s.status = status
	s.tun.End(r, "", err)
	s.writeClient(localResponse(s.cors, status, false, nil, http.StatusText(status)+": the CloudXR runtime did not answer as expected.\n"))
}

// drain half-closes c and reads what the client still sends for a moment
// before the caller closes it: closing a socket with unread data makes the
// kernel answer with a reset, which can destroy the last response before the
// client has read it.
func drain(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, c, 64<<10)
}
