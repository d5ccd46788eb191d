package proxy

import (
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// The session's own answers, for what it cannot forward: refused heads and
// routes, a backend that cannot be reached or does not answer.

// Failed answers an exchange the tunnel saw fail before a response head
// was relayed (see tunnel.Policy).
func (s *session) Failed(e tunnel.End, err error) {
	switch e {
	case tunnel.BadRequest: // the head was too large
		s.refuse(&refusal{status: http.StatusRequestHeaderFieldsTooLarge, msg: "request head larger than 16 KiB", reason: tunnel.BadRequest})
	case tunnel.BackendUnreachable:
		s.dialFailed(err)
	case tunnel.BackendLost, tunnel.BackendClosedEarly:
		s.backendLost(e, err)
	case tunnel.ResponseTimeout:
		s.backendFailed(http.StatusGatewayTimeout, e, err)
	default:
		s.backendFailed(http.StatusBadGateway, e, err)
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
	s.tun.Write(localResponse(s.cors, rf.status, false, rf.fields, rf.msg+"\n"))
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
	s.tun.Write(localResponse(s.cors, http.StatusServiceUnavailable, false, nil, s.srv.unreachableMsg))
}

// backendLost answers a request whose backend connection failed before a
// byte of the response came. Most often the runtime was stopped or
// restarted just then; a new connection tells: refused, the answer is the
// one for a runtime that is not running (dialFailed), as HAProxy's 503;
// accepted, the runtime is there and dropped the request: 502.
func (s *session) backendLost(r tunnel.End, err error) {
	c, derr := s.srv.dial(s.srv.ctx, s)
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
	s.tun.Write(localResponse(s.cors, status, false, nil, http.StatusText(status)+": the CloudXR runtime did not answer as expected.\n"))
}
