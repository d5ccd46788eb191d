package tunnel

// End is why a session ended: the one list the session log's "reason",
// the sessions_total metric's outcome label and the tests all use. The
// first end recorded wins (Tunnel.End, and the ends the tunnel sees
// itself); later ones, such as a shutdown that comes while a half-closed
// tunnel lingers, do not replace it.
type End uint8

const (
	Unknown            End = iota // nothing recorded an end
	HandshakeFailed               // the TLS handshake failed (logged apart)
	HeadTimeout                   // no whole request head within HEAD_TIMEOUT
	KeepAliveTimeout              // no next request within HEAD_TIMEOUT
	ClientClosed                  // the client closed its half
	ClientLost                    // reading from or writing to the client failed
	BadRequest                    // a head the proxy refuses (its words go in the detail)
	RouteRefused                  // routing by path: a target not allowed or malformed
	ResponseComplete              // the response was complete
	BackendUnreachable            // the backend could not be connected to
	BackendLost                   // reading from or writing to the backend failed
	BackendClosedEarly            // the backend closed before answering
	ResponseTimeout               // the backend did not answer within RESPONSE_TIMEOUT
	BadResponse                   // the backend's response head was not HTTP
	BackendClosed                 // the backend closed its half
	IdleTimeout                   // no byte either way for the idle time
	Shutdown                      // the proxy is stopping
	BackendDown                   // the backend's checks marked it down
	Unauthorized                  // a credential refused
	AuthNotReady                  // the identity provider's keys have never loaded
	RateLimited                   // a per-client limit refused
	ACMEChallenge                 // an ACME CA's TLS-ALPN-01 validation handshake, answered
	PoolFull                      // BACKEND_POOL: no runtime up and free (503)
	PoolUnavailable               // BACKEND_POOL: the claims' store (the Kubernetes API) could not be asked (503)
	ClaimLost                     // BACKEND_POOL: the session's claim on its runtime could not be kept
	PoolUserLimit                 // BACKEND_POOL: the user already holds POOL_MAX_PER_USER runtimes through another replica (429)
	Replaced                      // BACKEND_POOL: closed for the same user's new session
)

var endNames = [...]string{
	Unknown:            "unknown",
	HandshakeFailed:    "handshake failed",
	HeadTimeout:        "head timeout",
	KeepAliveTimeout:   "keep-alive timeout",
	ClientClosed:       "client closed",
	ClientLost:         "client connection lost",
	BadRequest:         "bad request",
	RouteRefused:       "route refused",
	ResponseComplete:   "response complete",
	BackendUnreachable: "backend unreachable",
	BackendLost:        "backend connection lost",
	BackendClosedEarly: "backend closed before answering",
	ResponseTimeout:    "backend response timeout",
	BadResponse:        "bad backend response",
	BackendClosed:      "backend closed",
	IdleTimeout:        "idle timeout",
	Shutdown:           "shutdown",
	BackendDown:        "backend down",
	Unauthorized:       "unauthorized",
	AuthNotReady:       "authentication not ready",
	RateLimited:        "rate limited",
	ACMEChallenge:      "acme challenge answered",
	PoolFull:           "pool full",
	PoolUnavailable:    "pool unavailable",
	ClaimLost:          "pool claim lost",
	PoolUserLimit:      "pool user limit",
	Replaced:           "replaced by the user's new session",
}

func (e End) String() string { return endNames[e] }

// BackendSide reports whether the end's error, if any, is the backend's
// (the log's backend_error) rather than the client's (client_error).
func (e End) BackendSide() bool {
	switch e {
	case BackendUnreachable, BackendLost, BackendClosedEarly, ResponseTimeout, BadResponse, BackendClosed, BackendDown:
		return true
	}
	return false
}
