package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// session is one client connection from accept to close, as the proxy
// sees it: the TLS handshake, request heads (preflights and the proxy's own
// pages are answered here), then at most one forwarded exchange, a
// WebSocket tunnel or one request and its response. Its life (state, stop,
// end) is its tunnel.Tunnel's, made at accept; the tunnel calls finish,
// once, when the last of the session's goroutines ends.
type session struct {
	srv   *Server
	tun   *tunnel.Tunnel
	conn  *net.TCPConn // as accepted
	tc    *tls.Conn
	start time.Time
	hello helloInfo
	cors  *headerSet // the header set for the current request's answers

	client       string
	limits       *limit.Client // the client's entry in the per-client limits, or nil
	method       string
	path         string
	status       int
	requests     int
	up, down     int64    // bytes the session's own goroutine moved; the ways add theirs
	backendLocal string   // the proxy's end of the backend connection, to match the runtime's logs
	target       string   // the routed runtime's host:port, when routing by path
	earlier      []string // the requests answered before the last, for the log line (at most maxEarlier)
}

// serve runs the session on its own goroutine: the handshake, then request
// heads until one is forwarded. When the forwarded exchange runs its way
// down on this goroutine (Relay, Upgrade), the session ends with the ways;
// otherwise this goroutine's part ends here (Abandon). Either way the
// tunnel calls finish once the last part has ended.
func (s *session) serve() {
	if s.handshake() && s.handleRequests() {
		return // the way down ran here; it, or the way up, ends the session
	}
	s.tun.Abandon()
}

// handshake reads any PROXY protocol header, then completes the TLS
// handshake, all under HANDSHAKE_TIMEOUT.
func (s *session) handshake() bool {
	o := &s.srv.opts
	if !s.tun.SetDeadline(time.Now().Add(o.HandshakeTimeout)) {
		return false
	}
	s.hello.localDst = s.conn.LocalAddr().String()
	var pending []byte
	if o.ProxyProtocol {
		// The header names the client's real address and the address it
		// dialed.
		h, rest, err := readProxyHeader(s.conn)
		if err != nil {
			s.handshakeFailed(failProxyHeader, err)
			return false
		}
		if h.SourceAddr != nil && h.DestinationAddr != nil {
			s.client = h.SourceAddr.String()
			s.hello.localDst = h.DestinationAddr.String()
		}
		pending = rest
	}
	if !s.admit() {
		return false
	}
	s.tc = s.tun.UseConn(pending, s.srv.tlsConf)
	err := s.tc.HandshakeContext(context.WithValue(s.srv.ctx, helloKey{}, &s.hello))
	if check := o.CheckName; check != nil && s.hello.seen {
		check(s.hello.requestedName(), s.client)
	}
	if err != nil {
		class, plain := classifyHandshake(err, &s.hello)
		if plain != nil {
			plain.Write(plainHTTPResponse) // still under the handshake deadline
			drain(plain)
		}
		s.handshakeFailed(class, err)
		return false
	}
	o.Observer.HandshakeSucceeded()
	return s.tun.SetDeadline(time.Time{})
}

// admit applies the per-client limits on connections and handshakes,
// before any TLS work is done for the client.
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

// handleRequests runs the session's exchanges and then, when a response
// was relayed, its way down on this goroutine; it reports whether the way
// down ran. The head buffer is this function's alone: the exchanges read
// heads into it, and it is given back before the way down runs, so that a
// long session does not keep 16 KiB.
func (s *session) handleRequests() bool {
	hb := getHeadBuf()
	down, ok := s.exchange(hb.b)
	hb.release()
	return ok && s.runDown(down)
}

// wayDown is what follows a response head relayed to the client: an
// upgraded tunnel (and the bytes the client sent before the 101), or a
// response body of relay bytes (-1: until the backend closes).
type wayDown struct {
	upgrade bool
	early   []byte
	relay   int64
	chunked *chunkedEnd // a chunked body's framing, to stop at its end
	backend net.Conn
}

// exchange reads request heads into buf, answering preflights and the
// proxy's own pages itself, until one request is forwarded and its
// response head relayed (ok), or the connection ends.
func (s *session) exchange(buf []byte) (down wayDown, ok bool) {
	n := 0
	for {
		if !s.tun.SetReadDeadline(time.Now().Add(s.srv.opts.HeadTimeout)) {
			return down, false
		}
		hl, m, err := readHead(s.tc, buf, n)
		n = m
		if err != nil {
			s.headFailed(err, n)
			return down, false
		}
		req, err := parseRequestHead(buf[:hl])
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
			return down, false
		}
		if l := s.srv.opts.Local; l != nil && !req.upgrade && l.Owns(req.method, req.target) {
			if !s.serveLocal(req, buf[:hl]) {
				s.tun.End(tunnel.ResponseComplete, "", nil)
				return down, false
			}
			n = copy(buf, buf[hl:n])
			continue
		}
		if req.method == http.MethodOptions && !req.upgrade {
			// CORS and Private Network Access preflights never reach the
			// runtime, which does not know them.
			keep := !req.close && !req.hasBody
			s.status = http.StatusOK
			if err := s.writeClient(preflight(s.cors, keep)); err != nil || !keep {
				s.tun.End(tunnel.ResponseComplete, "", nil)
				return down, false
			}
			n = copy(buf, buf[hl:n])
			continue
		}
		return s.forward(req, buf, hl, n)
	}
}

// forward sends a request to the backend and relays its response head.
// buf[:hl] is the head, buf[hl:n] bytes the client sent after it; buf
// then holds the response head.
func (s *session) forward(req requestHead, buf []byte, hl, n int) (down wayDown, ok bool) {
	if err := s.authorize(req); err != nil {
		s.refuse(err)
		return down, false
	}
	head, err := s.backendHead(req, buf[:hl])
	if err != nil {
		s.refuse(err)
		return down, false
	}
	if req.chunked && !req.upgrade {
		// The way up passes a request's body and nothing after it, so it
		// must know where the body ends without parsing the bytes.
		s.refuse(&refusal{status: http.StatusLengthRequired, msg: "a request body for the runtime needs a Content-Length", reason: tunnel.BadRequest})
		return down, false
	}
	backend, err := s.srv.dial(s.srv.ctx, s.target)
	if err != nil {
		s.dialFailed(err)
		return down, false
	}
	if !s.tun.Attach(backend) {
		backend.Close()
		return down, false
	}
	s.backendLocal = backend.LocalAddr().String()
	early, ok := s.sendRequest(req, backend, head, buf[hl:n])
	if !ok {
		return down, false
	}
	return s.respond(req, backend, buf, early)
}

// sendRequest writes the request to the backend and opens the tunnel.
// The backend gets the request and its body, and nothing the client sent
// after them: for an upgrade, bytes sent before the 101 wait for it (early,
// returned); after any other request they are not the runtime's, which is
// also asked to close after its response, so the proxy knows where the
// response ends and never has to parse a second one.
func (s *session) sendRequest(req requestHead, backend net.Conn, head, pending []byte) (early []byte, ok bool) {
	out, body := head, int64(0)
	if req.upgrade {
		if len(pending) > 0 {
			early = bytes.Clone(pending)
		}
	} else {
		sent := min(int64(len(pending)), req.contentLength)
		out = append(closingRequest(make([]byte, 0, len(head)+32+int(sent)), head), pending[:sent]...)
		body = req.contentLength - sent
	}
	timeout := s.srv.opts.ResponseTimeout
	if !s.tun.SetBackendDeadlines(time.Time{}, time.Now().Add(timeout)) {
		return nil, false
	}
	s.up += int64(len(out))
	if _, err := backend.Write(out); err != nil {
		s.backendLost(tunnel.BackendLost, err)
		return nil, false
	}
	// The response head's deadline is set through the tunnel, so that a
	// stop, which puts it in the past, cannot be overwritten.
	if !s.tun.SetBackendDeadlines(time.Now().Add(timeout), time.Time{}) {
		return nil, false
	}
	s.tun.Open(body)
	return early, true
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
	} else if native {
		s.target = s.srv.nativeBackend
	}
	if o.Auth != nil {
		head = s.srv.credNames.strip(head)
	}
	return head, nil
}

// respond reads the backend's response head and relays it to the client
// with the header set, with whatever came after it up to the body's
// declared length, and says which way down follows.
func (s *session) respond(req requestHead, backend net.Conn, buf []byte, early []byte) (down wayDown, ok bool) {
	hl, n, resp, ok := s.readResponse(backend, buf)
	if !ok {
		return down, false
	}
	s.srv.answered(s.target)
	s.status = resp.status
	down = wayDown{upgrade: req.upgrade && resp.status == http.StatusSwitchingProtocols, early: early, relay: -1, backend: backend}
	if resp.status == http.StatusSwitchingProtocols && !down.upgrade {
		// 101 to a request that asked for no upgrade: not a response the
		// proxy can relay and still know where the exchange ends.
		s.backendFailed(http.StatusBadGateway, tunnel.BadResponse, errBadResponse)
		return down, false
	}
	// The response head with the header set, and whatever came after it
	// (a first WebSocket frame in the same packet as the 101, the start of
	// a body), in one write; nothing past the body's declared length.
	rest := buf[hl:n]
	switch {
	case down.upgrade:
	case req.method == http.MethodHead:
		rest, down.relay = rest[:0], 0 // a response to HEAD has no body, whatever it declares
	case resp.contentLength >= 0:
		rest = rest[:min(int64(len(rest)), resp.contentLength)]
		down.relay = resp.contentLength - int64(len(rest))
	case resp.chunked:
		down.chunked = &chunkedEnd{}
		n, done := down.chunked.scan(rest)
		if rest = rest[:n]; done {
			down.chunked, down.relay = nil, 0
		}
	}
	out := append(injectResponse(make([]byte, 0, hl+len(s.cors.block)+len(closeLine)+len(rest)), buf[:hl], !down.upgrade, s.cors), rest...)
	if err := s.writeClient(out); err != nil {
		s.tun.End(tunnel.ClientLost, "", err)
		return down, false
	}
	return down, true
}

// readResponse reads the backend's response head into buf, relaying
// interim responses (100 Continue). When the exchange fails it answers the
// client and returns false.
func (s *session) readResponse(backend net.Conn, buf []byte) (hl, n int, resp responseHead, ok bool) {
	for {
		var err error
		hl, n, err = readHead(backend, buf, n)
		if err == nil {
			resp, err = parseResponseHead(buf[:hl])
		}
		switch {
		case err != nil && s.tun.Stopping():
			return 0, 0, resp, false // the client went away, or the session was stopped
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.backendFailed(http.StatusGatewayTimeout, tunnel.ResponseTimeout, err)
		case n == 0:
			s.backendLost(tunnel.BackendClosedEarly, err)
		case err != nil:
			s.backendFailed(http.StatusBadGateway, tunnel.BadResponse, err)
		case resp.status >= 200 || resp.status == http.StatusSwitchingProtocols:
			return hl, n, resp, true
		default:
			// An interim response: relay it and read on.
			if err := s.writeClient(injectResponse(nil, buf[:hl], false, s.cors)); err != nil {
				s.tun.End(tunnel.ClientLost, "", err)
				return 0, 0, resp, false
			}
			n = copy(buf, buf[hl:n])
			continue
		}
		return 0, 0, resp, false
	}
}

// runDown runs the way down on this goroutine: the response body (Relay),
// or, after a 101, the client's early bytes and then the tunnel both ways
// (Upgrade). It reports whether the way down ran.
func (s *session) runDown(d wayDown) bool {
	switch {
	case d.chunked != nil:
		s.tun.RelayUntil(d.chunked.scan)
		return true
	case !d.upgrade:
		s.tun.Relay(d.relay)
		return true
	}
	if len(d.early) > 0 {
		if !s.tun.SetBackendDeadlines(time.Time{}, time.Now().Add(s.srv.opts.ResponseTimeout)) {
			return false
		}
		if _, err := d.backend.Write(d.early); err != nil {
			s.tun.End(tunnel.BackendLost, "", err)
			return false
		}
		s.up += int64(len(d.early))
		s.tun.SetBackendDeadlines(time.Time{}, time.Time{})
	}
	s.tun.Upgrade()
	return true
}
