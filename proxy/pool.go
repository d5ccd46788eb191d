package proxy

// The runtime pool (BACKEND_POOL): a session's upgrade with no explicit
// route claims a runtime that is up and free for its user (see package
// pool), the session goes to it, and the claim is released when the
// session ends. Who the user is: the token's subject when authentication
// is on, else the pool cookie the proxy sets on the first upgrade's
// response; a native client that keeps no cookies is its address. The
// user's reconnect within the grace gets the same runtime back; a native
// client's further connection (NATIVE_BACKEND_PORT) goes to the runtime its
// session holds.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/pool"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// DefaultPoolCookie is the pool cookie's name.
const DefaultPoolCookie = "cxr_pool"

// poolRetryAfter is the Retry-After of the 503 when the pool is full.
const poolRetryAfter = 10

// poolFullMsg is the body of that 503.
const poolFullMsg = "every CloudXR runtime in this proxy's pool is busy or down: try again in a little while"

// poolCookieLen is the length of a pool cookie's value: 16 random bytes,
// base64url without padding.
const poolCookieLen = 22

// claimRuntime picks the runtime for a forwarded request when the proxy has
// a pool: an upgrade claims one (or, for a native client's further
// connection, joins the one its user holds); any other request goes to the
// user's runtime or, if it holds none, to one that is up, without a claim.
// native: the request goes to the runtime's NATIVE_BACKEND_PORT.
func (s *session) claimRuntime(req requestHead, native bool) error {
	p := s.srv.opts.Pool
	owner := s.poolOwner(req, native)
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.opts.ConnectTimeout)
	defer cancel()
	var runtime string
	switch {
	case !req.upgrade:
		r, err := p.Pick(ctx, owner)
		if err != nil {
			return s.poolRefusal(err)
		}
		runtime = r
	case native:
		// The session's runtime, already claimed here or, through
		// another replica, in the store.
		r, ok := s.srv.heldBy(owner)
		if !ok {
			var err error
			if r, ok, err = p.Busy(ctx, owner); err != nil {
				return s.poolRefusal(err)
			}
		}
		if ok {
			runtime = r
			break
		}
		fallthrough
	default:
		c, err := p.Acquire(ctx, owner)
		if err != nil {
			return s.poolRefusal(err)
		}
		s.claim, runtime = c, c.Runtime
		s.srv.claimed(s)
	}
	s.runtime = runtime
	s.target = runtime
	if native {
		host, _, _ := net.SplitHostPort(runtime)
		s.target = net.JoinHostPort(host, strconv.Itoa(s.srv.opts.NativeBackendPort))
	}
	return nil
}

// poolRefusal is the answer when no runtime could be had.
func (s *session) poolRefusal(err error) error {
	s.srv.opts.Observer.PoolRefused()
	if errors.Is(err, pool.ErrFull) {
		return &refusal{status: http.StatusServiceUnavailable, msg: poolFullMsg, reason: tunnel.PoolFull,
			fields: []field{{"Retry-After", strconv.Itoa(poolRetryAfter)}}}
	}
	s.srv.log.Warn("pool: the claims could not be read or written", zap.Error(err))
	return &refusal{status: http.StatusServiceUnavailable, msg: "the proxy cannot reach its runtime pool's claims just now: try again in a little while",
		reason: tunnel.PoolUnavailable, detail: err.Error(), fields: []field{{"Retry-After", strconv.Itoa(poolRetryAfter)}}}
}

// poolOwner is who the session's user is, for the pool: the token's subject
// (authorize has accepted the token), else the pool cookie, else, for a
// native client without one, its address. A browser without the cookie
// gets a new one on the upgrade's response.
func (s *session) poolOwner(req requestHead, native bool) string {
	if s.srv.opts.Auth != nil {
		if tok, ok := s.srv.credNames.credential(req); ok {
			if sub := auth.Subject(tok); sub != "" {
				return "subject:" + sub
			}
			return "token:" + tok // a tokens file's token is its user
		}
	}
	if v, ok := cookieValue(req.cookie, s.srv.opts.PoolCookie); ok && validPoolCookie(v) {
		return "cookie:" + v
	}
	if native {
		if ap, err := netip.ParseAddrPort(s.client); err == nil {
			return "address:" + ap.Addr().String()
		}
	}
	var b [16]byte
	rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	s.setCookie = s.srv.opts.PoolCookie + "=" + v + "; Path=/; Max-Age=86400; Secure; HttpOnly; SameSite=None"
	return "cookie:" + v
}

// cookieValue finds a cookie's value in a Cookie field.
func cookieValue(field, name string) (string, bool) {
	for _, c := range strings.Split(field, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(c), "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// validPoolCookie reports whether v looks like a value the proxy made:
// anything else is a client's invention and gets a fresh cookie.
func validPoolCookie(v string) bool {
	if len(v) != poolCookieLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil
}

// releaseClaim ends the session's claim: its runtime is its user's for the
// reconnect grace, then free.
func (s *session) releaseClaim() {
	c := s.claim
	if c == nil {
		return
	}
	s.srv.unclaimed(s)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.srv.ctx), s.srv.opts.ConnectTimeout)
	defer cancel()
	if err := c.Release(ctx); err != nil {
		s.srv.log.Warn("pool: releasing a runtime failed; its claim expires by itself", zap.String("runtime", c.Runtime), zap.Error(err))
	}
}

// claimed records a session holding a claim, for a native client's
// further connection and for a lost claim.
func (s *Server) claimed(sess *session) {
	s.mu.Lock()
	s.claims[sess.claim] = sess
	s.mu.Unlock()
}

func (s *Server) unclaimed(sess *session) {
	s.mu.Lock()
	delete(s.claims, sess.claim)
	s.mu.Unlock()
}

// heldBy returns the runtime a live session of owner's holds here.
func (s *Server) heldBy(owner string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.claims {
		if c.Owner == owner {
			return c.Runtime, true
		}
	}
	return "", false
}

// ClaimLost is the pool's word that a claim could not be renewed (another
// replica may take the runtime once the Lease expires): the session holding
// it is closed, so that two sessions never share a runtime.
func (s *Server) ClaimLost(c *pool.Claim, err error) {
	if s.killAll(tunnel.ClaimLost, func(sess *session) bool { return sess.claim == c }) > 0 {
		s.log.Warn("pool: a session's claim on its runtime could not be renewed; closing the session", zap.String("runtime", c.Runtime), zap.Error(err))
	}
}

// PoolUsers names, for each runtime a session here holds, its user when
// authentication says who that is (a token's subject); a cookie or an
// address is never shown.
func (s *Server) PoolUsers() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for c := range s.claims {
		if sub, ok := strings.CutPrefix(c.Owner, "subject:"); ok {
			out[c.Runtime] = sub
		}
	}
	return out
}
