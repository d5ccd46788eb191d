package proxy

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// session is one client connection from accept to close: the TLS
// handshake, request heads (preflights are answered here), then at most one
// forwarded exchange or WebSocket tunnel.
type session struct {
	srv   *Server
	conn  *net.TCPConn // as accepted
	pc    *pollConn    // what crypto/tls reads: conn, after any PROXY header
	tc    *tls.Conn
	start time.Time
	hello helloInfo

	client     string
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

	lastActive  atomic.Int64 // unix nanos of the last byte read either way
	idle        atomic.Int64 // the idle timeout now in force, in nanoseconds
	tunnel      atomic.Bool  // the backend accepted the upgrade
	hs          *headerSet   // the CORS set for the current request
	lingerUntil atomic.Int64 // unix nanos; set once one direction has ended
	halted      atomic.Bool  // reads and writes are being stopped
	aborted     atomic.Bool  // no goodbye: killed, or a side broke
	clientDone  atomic.Bool  // the client closed its half cleanly
	closeSent   atomic.Bool  // close_notify and FIN went to the client

	tasks atomic.Int32 // pump tasks not yet ended (see pump.go)

	mu         sync.Mutex    // guards the fields below
	dirs       [2]*direction // up, down; set as the pump starts
	backend    net.Conn
	forwarding bool
	reason     string
}

// setReason records why the session ends; the first reason stays.
func (s *session) setReason(r string) {
	s.mu.Lock()
	if s.reason == "" {
		s.reason = r
	}
	s.mu.Unlock()
}

// kill ends the session from another goroutine (shutdown, backend down).
func (s *session) kill(reason string) {
	s.setReason(reason)
	s.halt() // the client is fine: it gets a goodbye, not a reset
}

// haltWriteGrace bounds a write to the client that a halt lets finish.
const haltWriteGrace = 2 * time.Second

// abort halts the session and skips the graceful close.
func (s *session) abort() {
	s.aborted.Store(true)
	s.halt()
}

// halt wakes every blocked read and write of the session with a deadline
// in the past; the session's own goroutine then closes the connections.
func (s *session) halt() {
	s.halted.Store(true)
	past := time.Unix(1, 0)
	if s.aborted.Load() {
		s.conn.SetDeadline(past)
	} else {
		// A goodbye follows: a record being written to the client may
		// finish (within haltWriteGrace), or the close_notify after it
		// would land inside a torn record and the client would see a bad
		// record MAC instead of a clean end.
		s.conn.SetReadDeadline(past)
		s.conn.SetWriteDeadline(time.Now().Add(haltWriteGrace))
	}
	s.mu.Lock()
	if s.backend != nil {
		s.backend.SetDeadline(past)
	}
	s.mu.Unlock()
	s.unparkAll()
}

// serve runs the session in its own goroutine.
func (s *session) serve() {
	if s.handshake() && s.handleRequests() {
		return // the pump finishes the session
	}
	s.finish()
}

func (s *session) handshake() bool {
	o := &s.srv.opts
	deadline := time.Now().Add(o.HandshakeTimeout)
	s.conn.SetDeadline(deadline)
	pc := newPollConn(s.conn)
	s.pc = pc
	s.hello.localDst = s.conn.LocalAddr().String()
	if o.ProxyProtocol {
		// The header comes first, under the handshake deadline; it names
		// the client's real address and the address it dialed.
		h, err := pc.readProxyHeader(deadline)
		if err != nil {
			s.handshakeFailed(failProxyHeader, err)
			return false
		}
		if h.SourceAddr != nil && h.DestinationAddr != nil {
			s.client = h.SourceAddr.String()
			s.hello.localDst = h.DestinationAddr.String()
		}
	}
	s.tc = tls.Server(pc, s.srv.tlsConf)
	ctx := context.WithValue(s.srv.ctx, helloKey{}, &s.hello)
	err := s.tc.HandshakeContext(ctx)
	if check := s.srv.opts.CheckName; check != nil && s.hello.seen {
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
	s.conn.SetDeadline(time.Time{})
	s.srv.opts.Observer.HandshakeSucceeded()
	// A kill that ran during the handshake had its deadline cleared above.
	return !s.halted.Load()
}

func (s *session) handshakeFailed(class string, err error) {
	s.setReason("handshake failed")
	if s.halted.Load() {
		return // shutdown; not the client's fault
	}
	s.srv.opts.Observer.HandshakeFailed(class)
	// Clients that dial an IP address send no SNI; the address they dialed
	// says which name the certificate needed.
	fields := []zap.Field{zap.String("client", s.client), zap.String("class", class), zap.String("sni", s.hello.sni),
		zap.String("dialed", s.hello.localDst), zap.Error(err)}
	if class == failNoData {
		s.srv.log.Debug("TLS handshake failed", fields...)
		return
	}
	s.srv.hsLog.Warn("TLS handshake failed", fields...)
}

// handleRequests reads request heads, answering preflights itself, until
// one request is forwarded or the connection ends.
//
// It reports whether the pump took the session over.
func (s *session) handleRequests() bool {
	o := &s.srv.opts
	// The head buffer is held while heads are read and answered, and given
	// back before a tunnel starts: an idle session must not keep 16 KiB.
	bp := headBufs.Get().(*[]byte)
	held := true
	release := func() {
		if held {
			headBufs.Put(bp)
			held = false
		}
	}
	defer release()
	buf, n := *bp, 0
	for {
		s.tc.SetReadDeadline(time.Now().Add(o.HeadTimeout))
		if s.halted.Load() {
			return false // killed while a deadline was being replaced
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
		s.hs = s.srv.corsFor(req.origin)
		if err != nil {
			s.refuse(err)
			return false
		}
		if o := s.srv.opts.AllowedOrigins; o != nil && req.origin != "" && !o.Allows(req.origin) &&
			(req.upgrade || req.method == http.MethodOptions) {
			// A page from elsewhere must not open the signaling socket
			// with the user's browser (cross-site WebSocket hijacking).
			s.refuse(&headError{http.StatusForbidden, "origin " + req.origin + " is not allowed"})
			return false
		}
		if l := s.srv.opts.Local; l != nil && !req.upgrade && l.Owns(req.method, req.target) {
			if !s.serveLocal(req, buf[:hl]) {
				s.setReason("response complete")
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
			if err := s.writeClient(preflight(s.hs, keep)); err != nil || !keep {
				s.setReason("response complete")
				return false
			}
			n = copy(buf, buf[hl:n])
			continue
		}
		return s.forward(req, buf, hl, n, release)
	}
}

// headFailed handles a request head that could not be read.
func (s *session) headFailed(err error, n int) {
	var he *headError
	switch {
	case errors.As(err, &he):
		s.refuse(err)
	case errors.Is(err, os.ErrDeadlineExceeded) && n == 0 && s.requests > 0:
		s.setReason("keep-alive timeout")
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.setReason("head timeout")
	case errors.Is(err, io.EOF) && n == 0:
		s.setReason("client closed")
	default:
		s.setReason("client connection lost")
	}
}

// refuseRoute answers a target the router will not dial.
func (s *session) refuseRoute(err error) {
	re := &routeError{status: http.StatusForbidden, msg: err.Error()}
	errors.As(err, &re)
	s.status = re.status
	s.setReason("route refused")
	s.srv.hsLog.Warn("routing refused", zap.String("client", s.client), zap.String("path", s.path), zap.String("why", re.msg))
	s.writeClient(localResponse(s.hs, re.status, false, "", re.msg+"\n"))
}

// refuse answers a head the proxy will not forward, then ends the session.
func (s *session) refuse(err error) {
	he := &headError{status: http.StatusBadRequest, msg: err.Error()}
	errors.As(err, &he)
	s.status = he.status
	s.setReason("bad request: " + he.msg)
	s.writeClient(localResponse(s.hs, he.status, false, "", he.msg+"\n"))
}

// writeClient writes a response the proxy made, under the head timeout.
func (s *session) writeClient(b []byte) error {
	s.tc.SetWriteDeadline(time.Now().Add(s.srv.opts.HeadTimeout))
	n, err := s.tc.Write(b)
	s.down += int64(n)
	s.tc.SetWriteDeadline(time.Time{})
	return err
}

// forward sends a request to the backend and relays its response: for an
// accepted WebSocket upgrade, the tunnel that follows. buf[:hl] is the head,
// buf[hl:n] bytes the client sent after it, which go on unchanged.
// It reports whether the pump took the session over (then the pump's last
// task finishes it).
func (s *session) forward(req requestHead, buf []byte, hl, n int, releaseBuf func()) bool {
	o := &s.srv.opts
	head := buf[:hl]
	if r := o.Router; r != nil {
		addr, rest, err := r.Route(req.target)
		if err != nil {
			s.refuseRoute(err)
			return false
		}
		head = rewriteTarget(head, rest)
		s.target = addr
	}
	var (
		backend net.Conn
		err     error
	)
	backend, err = s.srv.dial(s.srv.ctx, s.target)
	if err != nil {
		s.dialFailed(err)
		return false
	}
	if !s.attach(backend) {
		backend.Close()
		return false
	}

	// The head goes on as it came for an upgrade; any other request is
	// asked to close after its response, so the proxy knows where the
	// response ends and never has to parse a second one.
	out := buf[:n]
	switch {
	case !req.upgrade:
		out = append(closingRequest(make([]byte, 0, n+32), head), buf[hl:n]...)
	case s.target != "":
		out = append(head, buf[hl:n]...)
	}
	backend.SetWriteDeadline(time.Now().Add(o.ResponseTimeout))
	s.up += int64(len(out))
	if _, err := backend.Write(out); err != nil {
		s.backendLost("backend connection lost", err)
		return false
	}
	backend.SetWriteDeadline(time.Time{})

	s.startUpstream(backend)
	if !s.respond(req, backend, buf, releaseBuf) {
		s.taskDone() // the session goroutine's part ends here
	}
	return true
}

// respond relays the backend's response head and starts the downstream
// direction; false means the exchange failed and the session is ending.
func (s *session) respond(req requestHead, backend net.Conn, buf []byte, releaseBuf func()) bool {
	backend.SetReadDeadline(time.Now().Add(s.srv.opts.ResponseTimeout))
	var (
		resp  responseHead
		hl, n int
		err   error
	)
	for {
		hl, n, err = readHead(backend, buf, n)
		if err == nil {
			resp, err = parseResponseHead(buf[:hl])
		}
		switch {
		case err != nil && s.halted.Load():
			return false // the client went away, or the session was killed
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.halt()
			s.backendFailed(http.StatusGatewayTimeout, "backend response timeout", err)
			return false
		case n == 0:
			s.halt()
			s.backendLost("backend closed before answering", err)
			return false
		case err != nil:
			s.halt()
			s.backendFailed(http.StatusBadGateway, "bad backend response", err)
			return false
		}
		if resp.status >= 200 || resp.status == http.StatusSwitchingProtocols {
			break
		}
		// An interim response (100 Continue): relay it and read on.
		if err := s.writeClient(injectResponse(nil, buf[:hl], false, s.hs)); err != nil {
			s.setReason("client connection lost")
			s.abort()
			return false
		}
		n = copy(buf, buf[hl:n])
	}
	s.status = resp.status
	tunnel := req.upgrade && resp.status == http.StatusSwitchingProtocols
	s.tunnel.Store(tunnel)

	// The response head with the header set, and whatever came after it
	// (a first WebSocket frame in the same packet as the 101), in one write.
	rest := buf[hl:n]
	out := append(injectResponse(make([]byte, 0, hl+len(s.hs.block)+len(closeLine)+len(rest)), buf[:hl], !tunnel, s.hs), rest...)
	releaseBuf()
	if err := s.writeClient(out); err != nil {
		s.setReason("client connection lost")
		s.abort()
		return false
	}
	limit := int64(-1)
	switch {
	case tunnel:
	case req.method == http.MethodHead:
		limit = 0 // a response to HEAD has no body, whatever it declares
	case resp.contentLength >= 0:
		limit = max(resp.contentLength-int64(len(rest)), 0)
	}
	s.relayDown(backend, limit)
	return true
}

// dialFailed answers a request whose backend could not be reached: 503
// for the default backend or a routed one its checks have marked down (the
// runtime is not running), 502 for a routed runtime checked on use.
func (s *session) dialFailed(err error) {
	if s.target != "" && !errors.Is(err, errBackendDown) {
		s.backendFailed(http.StatusBadGateway, "backend unreachable", err)
		return
	}
	s.backendErr = err
	s.status = http.StatusServiceUnavailable
	s.setReason("backend unreachable")
	s.writeClient(localResponse(s.hs, http.StatusServiceUnavailable, false, "", s.srv.unreachableMsg))
}

// backendLost answers a request whose backend connection failed before a
// byte of the response came. Most often the runtime was stopped or
// restarted just then; a new connection tells: refused, the answer is the
// one for a runtime that is not running (dialFailed), as HAProxy's 503;
// accepted, the runtime is there and dropped the request: 502.
func (s *session) backendLost(reason string, err error) {
	c, derr := s.srv.dial(s.srv.ctx, s.target)
	if derr != nil {
		s.dialFailed(fmt.Errorf("%s: %w; connecting again: %w", reason, err, derr))
		return
	}
	c.Close()
	s.backendFailed(http.StatusBadGateway, reason, err)
}

// backendFailed answers a failed exchange with the backend.
func (s *session) backendFailed(status int, reason string, err error) {
	s.backendErr = err
	s.status = status
	s.setReason(reason)
	s.writeClient(localResponse(s.hs, status, false, "", http.StatusText(status)+": the CloudXR runtime did not answer as expected.\n"))
}

// attach records the backend connection, unless the session was killed.
func (s *session) attach(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halted.Load() {
		return false
	}
	s.backend = c
	s.backendLocal = c.LocalAddr().String()
	s.forwarding = true
	return true
}

// finish closes both sides and writes the session's log line.
func (s *session) finish() {
	// Say goodbye (close_notify, FIN, then read what is left) unless the
	// session was cut, or both sides have already closed their halves.
	if s.tc != nil && !s.aborted.Load() && !(s.clientDone.Load() && s.closeSent.Load()) &&
		s.tc.ConnectionState().HandshakeComplete {
		closeWriteTLS(s.tc)
		drain(s.conn)
	}
	s.conn.Close()
	s.mu.Lock()
	if s.backend != nil {
		s.backend.Close()
	}
	reason := s.reason
	for i, d := range s.dirs {
		if d != nil && i == 0 {
			s.up += d.n
		} else if d != nil {
			s.down += d.n
		}
	}
	s.mu.Unlock()
	s.srv.forget(s)
	defer s.srv.wg.Done()
	if s.tc == nil || reason == "handshake failed" {
		return // logged as a handshake failure
	}
	s.srv.opts.Observer.SessionEnded(outcome(reason), s.up, s.down, time.Since(s.start))
	s.logEnd(reason)
}

// drain half-closes c and reads what the client still sends for a moment
// before the caller closes it: closing a socket with unread data makes the
// kernel answer with a reset, which can destroy the last response before the
// client has read it.
func drain(c net.Conn) {
	closeWrite(c)
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, c, 64<<10)
}

func (s *session) logEnd(reason string) {
	st := s.tc.ConnectionState()
	level := zap.InfoLevel
	if s.requests == 0 {
		level = zap.DebugLevel // a preconnect that sent nothing
	}
	ce := s.srv.log.Check(level, "session ended")
	if ce == nil {
		return
	}
	ce.Write(
		zap.String("client", s.client),
		zap.String("sni", s.hello.sni),
		zap.String("tls", tls.VersionName(st.Version)),
		zap.String("method", s.method),
		zap.String("path", s.path),
		zap.Int("status", s.status),
		zap.Int64("bytes_in", s.up),
		zap.Int64("bytes_out", s.down),
		zap.Duration("duration", time.Since(s.start)),
		zap.String("reason", reason),
		zap.NamedError("backend_error", s.backendErr),
		zap.String("backend_conn", s.backendLocal),
		zap.String("backend", cmp.Or(s.target, s.srv.opts.Backend)),
	)
}

// headBufs holds the buffers request and response heads are read into.
var headBufs = sync.Pool{New: func() any { b := make([]byte, maxHeadSize); return &b }}

// readHead reads from r into buf, whose first n bytes are already filled,
// until buf holds a whole head. It returns the head's length and how much
// of buf is filled; bytes past the head are the start of what follows.
func readHead(r io.Reader, buf []byte, n int) (headLen, filled int, err error) {
	scanned := 0
	for {
		if hl := headEnd(buf[max(scanned-3, 0):n]); hl >= 0 {
			return max(scanned-3, 0) + hl, n, nil
		}
		scanned = n
		if n == len(buf) {
			return 0, n, errHeadTooLarge
		}
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			if m > 0 {
				continue // look at what came with the error first
			}
			if errors.Is(err, io.EOF) && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, n, err
		}
	}
}
