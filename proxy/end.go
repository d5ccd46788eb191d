package proxy

// How a session ends: the tunnel's word (Ended), the session's log line,
// and handshake failures, which are logged apart.

import (
	"cmp"
	"crypto/tls"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// Ended is the tunnel's word that the session is over and the client's
// connection closed: the client's limits and the server forget it, and
// the session's line is written.
func (s *session) Ended(r tunnel.Result) {
	if s.limits != nil {
		s.srv.opts.Limits.Disconnect(s.limits)
	}
	s.releaseClaim() // before the server forgets the session: a shutdown waits for it
	s.srv.forget(s)
	defer s.srv.wg.Done()
	if s.tc == nil || r.End == tunnel.HandshakeFailed {
		return // logged as a handshake failure
	}
	s.srv.opts.Observer.SessionEnded(r.End.String(), r.Up, r.Down, time.Since(s.start))
	s.logEnd(r)
}

// logEnd writes the session's one line.
func (s *session) logEnd(r tunnel.Result) {
	st := s.tc.ConnectionState()
	level := zap.InfoLevel
	if s.requests == 0 {
		level = zap.DebugLevel // a preconnect that sent nothing
	}
	ce := s.srv.log.Check(level, "session ended")
	if ce == nil {
		return
	}
	why := r.End.String()
	if r.Detail != "" {
		why += ": " + r.Detail
	}
	var backendErr, clientErr error
	if r.End.BackendSide() {
		backendErr = r.Err
	} else {
		clientErr = r.Err
	}
	// The fields go in a pooled array: as a variadic argument they would
	// be a new 900-byte slice per session.
	fp := endFields.Get().(*[16]zap.Field)
	*fp = [...]zap.Field{
		zap.String("client", s.client),
		zap.String("sni", s.hello.sni),
		zap.String("tls", tls.VersionName(st.Version)),
		zap.String("method", s.method),
		zap.String("path", s.path),
		zap.Int("status", s.status),
		zap.Int64("bytes_in", r.Up),
		zap.Int64("bytes_out", r.Down),
		zap.Duration("duration", time.Since(s.start)),
		zap.String("reason", why),
		zap.NamedError("backend_error", backendErr),
		zap.NamedError("client_error", clientErr),
		zap.Skip(), zap.Skip(), // backend_conn, backend
		zap.Skip(), zap.Skip(), // requests, earlier_requests
	}
	if s.backendLocal != "" {
		// Only a session that dialed the runtime names it: a refused
		// request never reached one.
		fp[12] = zap.String("backend_conn", s.backendLocal)
		fp[13] = zap.String("backend", cmp.Or(s.target, s.srv.opts.Backend))
	}
	if len(s.earlier) > 0 {
		// A keep-alive session served several requests: the line's
		// method, path and status are the last one's.
		fp[14] = zap.Int("requests", s.requests)
		fp[15] = zap.Strings("earlier_requests", s.earlier)
	}
	ce.Write(fp[:]...)
	*fp = [16]zap.Field{} // hold no strings or errors while pooled
	endFields.Put(fp)
}

var endFields = sync.Pool{New: func() any { return new([16]zap.Field) }}

// handshakeFailed logs a failed handshake (rate-limited: scanners and
// misconfigured clients come in floods) and counts it by class.
func (s *session) handshakeFailed(class string, err error) {
	s.tun.End(tunnel.HandshakeFailed, "", err)
	if s.tun.Stopping() {
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
	s.srv.floodLog.Warn("TLS handshake failed", fields...)
}

// maxEarlier bounds what a keep-alive session remembers of its requests:
// the log line lists the first ones and says how many there were.
const maxEarlier = 8

// noteEarlier records the request just answered, when another follows on
// the same connection: "GET /favicon.ico 404".
func (s *session) noteEarlier() {
	switch {
	case s.requests == 0:
	case len(s.earlier) < maxEarlier:
		path := s.path
		if len(path) > 128 {
			path = path[:128] + "..."
		}
		s.earlier = append(s.earlier, s.method+" "+path+" "+strconv.Itoa(s.status))
	case len(s.earlier) == maxEarlier:
		s.earlier = append(s.earlier, "and more (requests counts them all)")
	}
}
