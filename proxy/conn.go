package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// session is one client connection from accept to close: the TLS
// handshake, request heads (preflights and the proxy's own pages are
// answered here), then at most one forwarded exchange: a WebSocket tunnel,
// or one request and its response.
type session struct {
	srv   *Server
	conn  *net.TCPConn // as accepted
	cc    *tunnel.Conn // what crypto/tls reads: conn, after any PROXY header
	tc    *tls.Conn
	start time.Time
	hello helloInfo
	cors  *headerSet // the header set for the current request's answers

	client     string
	limits     *limit.Client // the client's entry in the per-client limits, or nil
	method     string
	path       string
	status     int
	requests   int
	up, down   int64
	backendErr error
	// backendLocal is the proxy's end of the backend connection, to match
	// a session with the runtime's own logs.
	backendLocal string
	target       string // the routed runtime's host:port, when routing by path

	mu         sync.Mutex // guards what follows; a kill comes from other goroutines
	stopped    bool       // killed: the deadlines it set in the past stay there
	reason     reason
	detail     string // a bad request's words, after the reason in the log
	backend    net.Conn
	tun        *tunnel.Tunnel
	forwarding bool // a request went to the backend
}

// serve runs the session in its own goroutine.
func (s *session) serve() {
	if s.handshake() && s.handleRequests() {
		return // the tunnel finishes the session (tunnelDone)
	}
	s.finish(true)
}

// handshake reads any PROXY protocol header, then completes the TLS
// handshake, all under HANDSHAKE_TIMEOUT.
func (s *session) handshake() bool {
	o := &s.srv.opts
	if !s.live(func() { s.conn.SetDeadline(time.Now().Add(o.HandshakeTimeout)) }) {
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
	s.cc = tunnel.NewConn(s.conn, pending)
	s.tc = tls.Server(s.cc, s.srv.tlsConf)
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
	return s.live(func() { s.conn.SetDeadline(time.Time{}) })
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
		s.setReason(reasonRateLimited)
		s.srv.opts.Observer.ClientLimited(which)
		s.srv.floodLog.Warn("client limit reached: connection closed", zap.String("client", s.client), zap.String("limit", which))
		return false
	}
	s.limits = c
	return true
}

// handleRequests reads request heads, answering preflights and the proxy's
// own pages itself, until one request is forwarded or the connection ends.
// It reports whether a tunnel took the session over.
func (s *session) handleRequests() bool {
	// The head buffer is held while heads are read and answered, and given
	// back before a tunnel starts: an idle session must not keep 16 KiB.
	hb := getHeadBuf()
	defer hb.release()
	buf, n := hb.b, 0
	for {
		if !s.live(func() { s.tc.SetReadDeadline(time.Now().Add(s.srv.opts.HeadTimeout)) }) {
			return false
		}
		hl, m, err := readHead(s.tc, buf, n)
		n = m
		if err != nil {
			s.headFailed(err, n)
			return false
		}
		req, err := parseRequestHead(buf[:hl])
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
			return false
		}
		if l := s.srv.opts.Local; l != nil && !req.upgrade && l.Owns(req.method, req.target) {
			if !s.serveLocal(req, buf[:hl]) {
				s.setReason(reasonResponseComplete)
				return false
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
				s.setReason(reasonResponseComplete)
				return false
			}
			n = copy(buf, buf[hl:n])
			continue
		}
		return s.forward(req, &hb, hl, n)
	}
}

// forward sends a request to the backend and relays its response: for an
// accepted WebSocket upgrade, the tunnel that follows. hb.b[:hl] is the
// head, hb.b[hl:n] bytes the client sent after it, which go on unchanged.
// It reports whether a tunnel took the session over.
func (s *session) forward(req requestHead, hb *headBuf, hl, n int) bool {
	o := &s.srv.opts
	buf := hb.b
	if err := s.authorize(req); err != nil {
		s.refuse(err)
		return false
	}
	head, rewritten, err := s.backendHead(req, buf[:hl])
	if err != nil {
		s.refuse(err)
		return false
	}
	if req.chunked && !req.upgrade {
		// The way up passes a request's body and nothing after it, so it
		// must know where the body ends without parsing the bytes.
		s.refuse(&refusal{status: http.StatusLengthRequired, msg: "a request body for the runtime needs a Content-Length", reason: reasonBadRequest})
		return false
	}
	backend, err := s.srv.dial(s.srv.ctx, s.target)
	if err != nil {
		s.dialFailed(err)
		return false
	}
	if !s.attach(backend) {
		backend.Close()
		return false
	}

	// The backend gets the request and its body, and nothing the client
	// sent after them: for an upgrade, bytes sent before the 101 wait for
	// it (early); after any other request they are not the runtime's,
	// which is also asked to close after its response, so the proxy knows
	// where the response ends and never has to parse a second one.
	var out, early []byte
	var body int64
	pending := buf[hl:n]
	switch {
	case req.upgrade:
		out = buf[:hl]
		if rewritten {
			out = head
		}
		if len(pending) > 0 {
			early = bytes.Clone(pending)
		}
	default:
		sent := min(int64(len(pending)), req.contentLength)
		out = append(closingRequest(make([]byte, 0, hl+32+int(sent)), head), pending[:sent]...)
		body = req.contentLength - sent
	}
	backend.SetWriteDeadline(time.Now().Add(o.ResponseTimeout))
	s.up += int64(len(out))
	if _, err := backend.Write(out); err != nil {
		s.backendLost(reasonBackendLost, err)
		return false
	}
	backend.SetWriteDeadline(time.Time{})
	// The response head's deadline is set before the tunnel starts, so
	// that a stop, which puts it in the past, cannot be overwritten.
	backend.SetReadDeadline(time.Now().Add(o.ResponseTimeout))
	t := s.openTunnel(backend, body)
	if t == nil {
		return false
	}
	s.respond(t, req, backend, hb, early)
	return true
}

// backendHead is the head as the runtime gets it, and picks the runtime:
// the first path segment's when routing by path (then cut from the
// target), the native signaling port for native clients, and never a
// credential (see credential.go).
func (s *session) backendHead(req requestHead, head []byte) (out []byte, rewritten bool, err error) {
	o := &s.srv.opts
	native := req.native && req.upgrade && o.NativeBackendPort != 0
	if r := o.Router; r != nil {
		addr, rest, err := r.Route(req.target, native)
		if err != nil {
			return nil, false, err
		}
		head, rewritten = rewriteTarget(head, rest), true
		s.target = addr
	} else if native {
		s.target = s.srv.nativeBackend
	}
	if o.Auth != nil {
		head, rewritten = s.srv.credNames.strip(head), true
	}
	return head, rewritten, nil
}

// openTunnel starts the tunnel, unless the session was killed: the
// client's bytes flow to the backend from now on, as a request body must
// reach the backend before it can answer.
func (s *session) openTunnel(backend net.Conn, body int64) *tunnel.Tunnel {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.tun = tunnel.Open(s.cc, s.tc, backend, tunnel.Options{
		Idle:         s.srv.opts.TunnelTimeout,
		ResponseIdle: s.srv.opts.ResponseTimeout,
		Body:         body,
		Parker:       s.srv.parker,
		Done:         s.tunnelDone,
	})
	return s.tun
}

// respond relays the backend's response head to the client with the
// header set, then hands the rest to the tunnel: Upgrade after a 101 (the
// client's early bytes go to the backend first), Relay for a response body
// cut at its declared length, Abandon when the exchange failed.
func (s *session) respond(t *tunnel.Tunnel, req requestHead, backend net.Conn, hb *headBuf, early []byte) {
	buf := hb.b
	hl, n, resp, ok := s.readResponse(t, backend, buf)
	if !ok {
		return
	}
	s.status = resp.status
	upgraded := req.upgrade && resp.status == http.StatusSwitchingProtocols
	if resp.status == http.StatusSwitchingProtocols && !upgraded {
		// 101 to a request that asked for no upgrade: not a response the
		// proxy can relay and still know where the exchange ends.
		s.backendFailed(http.StatusBadGateway, reasonBadResponse, errBadResponse)
		t.Abandon(tunnel.Graceful)
		return
	}

	// The response head with the header set, and whatever came after it
	// (a first WebSocket frame in the same packet as the 101, the start of
	// a body), in one write; nothing past the body's declared length.
	rest := buf[hl:n]
	relay := int64(-1) // until the backend closes
	switch {
	case upgraded:
	case req.method == http.MethodHead:
		rest, relay = rest[:0], 0 // a response to HEAD has no body, whatever it declares
	case resp.contentLength >= 0:
		rest = rest[:min(int64(len(rest)), resp.contentLength)]
		relay = resp.contentLength - int64(len(rest))
	}
	out := append(injectResponse(make([]byte, 0, hl+len(s.cors.block)+len(closeLine)+len(rest)), buf[:hl], !upgraded, s.cors), rest...)
	hb.release()
	if err := s.writeClient(out); err != nil {
		s.setReason(reasonClientLost)
		t.Abandon(tunnel.Cut)
		return
	}
	if !upgraded {
		t.Relay(relay)
		return
	}
	if len(early) > 0 {
		backend.SetWriteDeadline(time.Now().Add(s.srv.opts.ResponseTimeout))
		_, err := backend.Write(early)
		backend.SetWriteDeadline(time.Time{})
		if err != nil {
			s.backendErr = err
			s.setReason(reasonBackendLost)
			t.Abandon(tunnel.Graceful)
			return
		}
		s.up += int64(len(early))
	}
	t.Upgrade()
}

// tunnelDone is the tunnel's Done: the session ends with it.
func (s *session) tunnelDone(r tunnel.Result) {
	s.up += r.Up
	s.down += r.Down
	if rs := tunnelReason(r.End); rs != reasonNone {
		// What ended the tunnel first; a kill that came while it was
		// already ending (a half-closed tunnel's linger) does not count.
		s.mu.Lock()
		s.reason, s.detail = rs, ""
		s.mu.Unlock()
	}
	s.finish(r.Goodbye)
}

// finish closes the connections and writes the session's log line. With
// goodbye, the client first gets close_notify and a FIN, and what it still
// sends is read for a moment.
func (s *session) finish(goodbye bool) {
	if goodbye && s.tc != nil && s.tc.ConnectionState().HandshakeComplete {
		s.tc.CloseWrite() // close_notify; drain sends the FIN
		drain(s.conn)
	}
	s.conn.Close()
	if s.limits != nil {
		s.srv.opts.Limits.Disconnect(s.limits)
	}
	s.mu.Lock()
	if s.backend != nil && s.tun == nil {
		s.backend.Close() // a tunnel closes its own
	}
	reason, detail := s.reason, s.detail
	s.mu.Unlock()
	s.srv.forget(s)
	defer s.srv.wg.Done()
	if s.tc == nil || reason == reasonHandshakeFailed {
		return // logged as a handshake failure
	}
	s.srv.opts.Observer.SessionEnded(reason.String(), s.up, s.down, time.Since(s.start))
	s.logEnd(reason, detail)
}

// kill ends the session from another goroutine (shutdown, backend down).
// The client gets a goodbye, not a reset.
func (s *session) kill(r reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setReasonLocked(r, "")
	s.stopped = true
	if s.tun != nil {
		s.tun.Stop(tunnel.Graceful)
		return
	}
	// Wake the session's goroutine wherever it waits. A response being
	// written may finish (haltWriteGrace), or the goodbye after it would
	// land inside a torn record.
	s.conn.SetReadDeadline(time.Unix(1, 0))
	s.conn.SetWriteDeadline(time.Now().Add(haltWriteGrace))
	if s.backend != nil {
		s.backend.SetDeadline(time.Unix(1, 0))
	}
}

// haltWriteGrace bounds a write to the client that a kill lets finish.
const haltWriteGrace = 2 * time.Second

// live runs set, which sets deadlines, unless the session was killed: the
// kill's deadlines must stay. It reports whether the session is alive.
func (s *session) live(set func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		set()
	}
	return !s.stopped
}

func (s *session) killed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// attach records the backend connection, unless the session was killed.
func (s *session) attach(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.backend = c
	s.backendLocal = c.LocalAddr().String()
	s.forwarding = true
	return true
}

// setReason records why the session ends; the first reason stays.
func (s *session) setReason(r reason) {
	s.mu.Lock()
	s.setReasonLocked(r, "")
	s.mu.Unlock()
}

func (s *session) setReasonLocked(r reason, detail string) {
	if s.reason == reasonNone {
		s.reason, s.detail = r, detail
	}
}
