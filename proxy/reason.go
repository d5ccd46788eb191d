package proxy

import "github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"

// reason is why a session ended: the session log's "reason" and the
// sessions_total metric's outcome label. A bad request's reason carries
// the refusal's words after a colon in the log; the label never does.
type reason uint8

const (
	reasonNone reason = iota
	reasonHandshakeFailed
	reasonHeadTimeout
	reasonKeepAliveTimeout
	reasonClientClosed
	reasonClientLost
	reasonBadRequest
	reasonRouteRefused
	reasonResponseComplete
	reasonBackendUnreachable
	reasonBackendLost
	reasonBackendClosedEarly
	reasonResponseTimeout
	reasonBadResponse
	reasonBackendClosed
	reasonIdleTimeout
	reasonShutdown
	reasonBackendDown
	reasonUnauthorized
	reasonAuthNotReady
	reasonRateLimited
)

var reasonNames = [...]string{
	reasonNone:               "unknown",
	reasonHandshakeFailed:    "handshake failed",
	reasonHeadTimeout:        "head timeout",
	reasonKeepAliveTimeout:   "keep-alive timeout",
	reasonClientClosed:       "client closed",
	reasonClientLost:         "client connection lost",
	reasonBadRequest:         "bad request",
	reasonRouteRefused:       "route refused",
	reasonResponseComplete:   "response complete",
	reasonBackendUnreachable: "backend unreachable",
	reasonBackendLost:        "backend connection lost",
	reasonBackendClosedEarly: "backend closed before answering",
	reasonResponseTimeout:    "backend response timeout",
	reasonBadResponse:        "bad backend response",
	reasonBackendClosed:      "backend closed",
	reasonIdleTimeout:        "idle timeout",
	reasonShutdown:           "shutdown",
	reasonBackendDown:        "backend down",
	reasonUnauthorized:       "unauthorized",
	reasonAuthNotReady:       "authentication not ready",
	reasonRateLimited:        "rate limited",
}

func (r reason) String() string { return reasonNames[r] }

// tunnelReason is the session's reason for a tunnel's end.
func tunnelReason(e tunnel.End) reason {
	switch e {
	case tunnel.ClientClosed:
		return reasonClientClosed
	case tunnel.BackendClosed:
		return reasonBackendClosed
	case tunnel.ResponseComplete:
		return reasonResponseComplete
	case tunnel.IdleTimeout:
		return reasonIdleTimeout
	case tunnel.ClientLost:
		return reasonClientLost
	case tunnel.BackendLost:
		return reasonBackendLost
	}
	return reasonNone // Stopped: whoever stopped it gave the reason
}
