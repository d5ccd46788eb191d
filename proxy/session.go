package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/pool"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// session is one client connection's HTTP policy (tunnel.Policy): the
// tunnel, which owns the connection's life from accept to close, asks it
// at each step, and it keeps what the session's log line says. Each of its
// answers is a decision over the bytes it is shown: admit the client, run
// the TLS handshake, answer a request head itself or forward it (and
// where), and how the backend's response head reaches the client.
type session struct {
	srv   *Server
	tun   *tunnel.Tunnel
	tc    *tls.Conn // the client's TLS connection, from the handshake on
	start time.Time
	hello helloInfo
	cors  *headerSet // the header set for the current request's answers

	client       string
	limits       *limit.Client // the client's entry in the per-client limits, or nil
	method       string
	path         string
	status       int
	requests     int
	upgrade      bool   // the forwarded request asks for an upgrade
	backendLocal string // the proxy's end of the backend connection, to match the runtime's logs
	target       string // the routed or pooled runtime's host:port (its native port for a native client)
	runtime      string // the pooled runtime (BACKEND_POOL), as the pool names it
	claim        *pool.Claim
	setCookie    string   // a new pool cookie for the upgrade's response
	earlier      []string // the requests answered before the last, for the log line (at most maxEarlier)
}

// Admit reads the PROXY protocol header, when one is required (it names
// the client's real address and the address it dialed), and applies the
// per-client limits on connections and handshakes, before any TLS work is
// done for the client.
func (s *session) Admit(c net.Conn) (pending []byte, ok bool) {
	s.hello.localDst = c.LocalAddr().String()
	if s.srv.opts.ProxyProtocol {
		h, rest, err := readProxyHeader(c)
		if err != nil {
			s.handshakeFailed(failProxyHeader, err)
			return nil, false
		}
		if h.SourceAddr != nil && h.DestinationAddr != nil {
			s.client = h.SourceAddr.String()
			s.hello.localDst = h.DestinationAddr.String()
		}
		pending = rest
	}
	return pending, s.admit()
}

// Handshake runs the TLS handshake, recording what the client's hello
// said, and names why it failed.
func (s *session) Handshake(tc *tls.Conn) bool {
	o := &s.srv.opts
	s.tc = tc
	err := tc.HandshakeContext(context.WithValue(s.srv.ctx, helloKey{}, &s.hello))
	if check := o.CheckName; check != nil && s.hello.seen {
		check(s.hello.requestedName(), s.client)
	}
	if err != nil {
		class, plain := classifyHandshake(err, &s.hello)
		if plain != nil {
			plain.Write(plainHTTPResponse) // still under the handshake deadline
			tunnel.Drain(plain)
		}
		s.handshakeFailed(class, err)
		return false
	}
	o.Observer.HandshakeSucceeded()
	if o.ACMEChallenges && tc.ConnectionState().NegotiatedProtocol == ACMEALPN {
		s.tun.End(tunnel.ACMEChallenge, "", nil) // the validation needs nothing more
		return false
	}
	return true
}

// admit applies the per-client limits.
func (s *session) admit() bool {
	l := s.srv.opts.Limits
	if l == nil {
		return true
	}
	// A source without an IP address (a PROXY header naming a Unix
	// socket) is one client like any other, never an unlimited one.
	ip := limit.NonIP
	if ap, err := netip.ParseAddrPort(s.client); err == nil {
		ip = ap.Addr()
	}
	c, which := l.Connect(ip)
	if c == nil {
		s.tun.End(tunnel.RateLimited, "", nil)
		s.srv.opts.Observer.ClientLimited(which)
		s.srv.floodLog.Warn("client limit reached: connection closed", zap.String("client", s.client), zap.String("limit", which))
		return false
	}
	s.limits = c
	return true
}

// Request decides on a request head: preflights and the proxy's own
// pages are answered here; anything else goes to the runtime, with its
// credential checked and taken out, and its target routed.
func (s *session) Request(head []byte, room int) (f tunnel.Forward, next bool) {
	req, err := parseRequestHead(head)
	s.noteEarlier()
	s.requests++
	s.method, s.path = req.method, req.target
	if s.srv.opts.Auth != nil {
		s.path = s.srv.credNames.redactTarget(req.target) // the log never holds a token
	}
	s.cors = s.srv.corsFor(req.origin)
	if err == nil {
		err = s.srv.checkOrigin(req)
	}
	if err != nil {
		s.refuse(err)
		return f, false
	}
	if l := s.srv.opts.Local; l != nil && !req.upgrade && l.Owns(req.method, req.target) {
		if !s.serveLocal(req, head) {
			s.tun.End(tunnel.ResponseComplete, "", nil)
			return f, false
		}
		return f, true
	}
	if req.method == http.MethodOptions && !req.upgrade {
		// CORS and Private Network Access preflights never reach the
		// runtime, which does not know them.
		keep := !req.close && !req.hasBody
		s.status = http.StatusOK
		if _, err := s.tun.Write(preflight(s.cors, keep)); err != nil || !keep {
			s.tun.End(tunnel.ResponseComplete, "", nil)
			return f, false
		}
		return f, true
	}
	return s.forward(req, head, room)
}

// forward is a request for the runtime: authorized, routed, and as the
// runtime gets it. After any request but an upgrade the runtime is asked
// to close after its response, so the tunnel knows where it ends.
func (s *session) forward(req requestHead, head []byte, room int) (f tunnel.Forward, next bool) {
	if err := s.authorize(req); err != nil {
		s.refuse(err)
		return f, false
	}
	head, err := s.backendHead(req, head)
	if err != nil {
		s.refuse(err)
		return f, false
	}
	if req.chunked && !req.upgrade {
		// The way up passes a request's body and nothing after it, so it
		// must know where the body ends without parsing the bytes.
		s.refuse(&refusal{status: http.StatusLengthRequired, msg: "a request body for the runtime needs a Content-Length", reason: tunnel.BadRequest})
		return f, false
	}
	if !req.upgrade {
		head = closingRequest(make([]byte, 0, len(head)+32+room), head)
	}
	s.upgrade = req.upgrade
	return tunnel.Forward{Head: head, Body: req.contentLength, Upgrade: req.upgrade, NoBody: req.method == http.MethodHead}, false
}

// Dial connects to the runtime the request was routed to.
func (s *session) Dial(ctx context.Context) (net.Conn, error) {
	c, err := s.srv.dial(ctx, s)
	if err == nil {
		s.backendLocal = c.LocalAddr().String()
	}
	return c, err
}

// backendHead is the head as the runtime gets it, and picks the runtime:
// the first path segment's when routing by path (then cut from the
// target), the native signaling port for native clients, and never a
// credential (see credential.go).
func (s *session) backendHead(req requestHead, head []byte) ([]byte, error) {
	o := &s.srv.opts
	native := req.native && req.upgrade && o.NativeBackendPort != 0
	if r := o.Router; r != nil {
		addr, rest, err := r.Route(req.target, native)
		if err != nil {
			return nil, err
		}
		head = rewriteTarget(head, rest)
		s.target = addr
	} else if o.Pool != nil {
		if err := s.claimRuntime(req, native); err != nil {
			return nil, err
		}
	} else if native {
		s.target = s.srv.nativeBackend
	}
	if o.Auth != nil {
		head = s.srv.credNames.strip(head)
	}
	if o.Pool != nil && req.cookie != "" {
		head = s.srv.poolCookie.stripCookieOnly(head) // the runtime never sees who its user is
	}
	return head, nil
}

// Response is the backend's response head as the client gets it: with
// the header set, and saying the connection closes after it unless it is
// an upgrade. An answer at all tells the health checks the runtime is up.
func (s *session) Response(head []byte, room int) (tunnel.Reply, error) {
	resp, err := parseResponseHead(head)
	if err != nil {
		return tunnel.Reply{}, err
	}
	s.srv.answered(s)
	s.status = resp.status
	final := resp.status >= 200 || resp.status == http.StatusSwitchingProtocols
	closing := final && !(s.upgrade && resp.status == http.StatusSwitchingProtocols)
	out := injectResponse(make([]byte, 0, len(head)+len(s.cors.block)+len(closeLine)+len(s.setCookie)+16+room), head, closing, s.cors)
	if s.setCookie != "" && resp.status == http.StatusSwitchingProtocols {
		// The browser keeps the pool cookie, and sends it on its reconnect.
		out = rewriteHead(make([]byte, 0, len(out)+len(s.setCookie)+16), out, nil, []byte("Set-Cookie: "+s.setCookie+"\r\n"))
	}
	return tunnel.Reply{Head: out, Status: resp.status, Length: resp.contentLength, Chunked: resp.chunked}, nil
}
