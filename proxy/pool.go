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
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/pool"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// DefaultPoolCookie is the pool cookie's name.
const DefaultPoolCookie = "cxr_pool"

// poolRetryAfter is the Retry-After of the 503 when the pool is full.
const poolRetryAfter = 10

// poolFullMsg is the body of that 503: why says what the runtimes are.
func poolFullMsg(err error) string {
	state := "in use or down"
	if f, ok := errors.AsType[*pool.FullError](err); ok {
		state = f.State()
	}
	return "every CloudXR runtime in this proxy's pool is " + state + ": try again in a little while"
}

// poolUserLimitMsg is the body of the 429 when the user already holds as
// many runtimes as one user may (POOL_MAX_PER_USER).
const poolUserLimitMsg = "you are already streaming from this proxy's runtime pool (one runtime per user): end the other session, or try again when it has ended"

// poolCookieLen is the length of a pool cookie's value: 16 random bytes,
// base64url without padding.
const poolCookieLen = 22

// claimRuntime picks the runtime for a forwarded request when the proxy has
// a pool: an upgrade claims one (or, for a native client's further
// connection, joins the claim of the session its user holds); any other
// request goes to the user's runtime or, if it holds none, to one that is
// up, without a claim. Every connection that uses a runtime for a session
// holds its claim in s.claim, so the claim outlives none of them and a lost
// claim closes all of them.
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
		c, err := p.Join(ctx, owner)
		if err != nil {
			return s.poolRefusal(err)
		}
		if c != nil {
			runtime = s.holdClaim(c)
			break
		}
		fallthrough
	default:
		c, err := p.Acquire(ctx, owner, s.clientKey())
		if errors.Is(err, pool.ErrUserLimit) {
			c, err = s.replaceOwn(ctx, owner)
		}
		if err != nil {
			return s.poolRefusal(err)
		}
		runtime = s.holdClaim(c)
	}
	if s.claim != nil && s.claim.Lost() {
		return s.poolRefusal(pool.ErrClaimExpired)
	}
	s.runtime = runtime
	s.target = runtime
	if native {
		host, _, _ := net.SplitHostPort(runtime)
		s.target = net.JoinHostPort(host, strconv.Itoa(s.srv.opts.NativeBackendPort))
	}
	return nil
}

// replaceOwn makes room for a new session of a user who holds as many
// runtimes as one user may: the user's oldest session through this
// replica (with the connections that joined it) is closed, and the new one
// takes the runtime, the user's own in grace. A user over the limit here
// is most often one reconnecting while the proxy has not yet seen the old
// connection die (Wi-Fi lost, a page reloaded): the newest session wins,
// and it gets its runtime back at once. Sessions held through another
// replica cannot be closed from here: then ErrUserLimit.
func (s *session) replaceOwn(ctx context.Context, owner string) (*pool.Claim, error) {
	p := s.srv.opts.Pool
	old := p.Holding(owner)
	if old == nil {
		return nil, pool.ErrUserLimit
	}
	s.srv.killAll(tunnel.Replaced, func(sess *session) bool { return sess.claim == old })
	select {
	case <-old.Ended():
	case <-ctx.Done():
		return nil, pool.ErrUserLimit
	}
	return p.Acquire(ctx, owner, s.clientKey())
}

// holdClaim makes c the session's claim, where ClaimLost looks for it (a
// claim reported lost before this is seen by the Lost check after it).
func (s *session) holdClaim(c *pool.Claim) string {
	s.srv.mu.Lock()
	s.claim = c
	s.srv.mu.Unlock()
	return c.Runtime
}

// clientKey is the client as the pool bounds its graces: its address, an
// IPv6 /64 as one, like the per-client limits.
func (s *session) clientKey() string {
	if ap, err := netip.ParseAddrPort(s.client); err == nil {
		return limit.Key(ap.Addr()).String()
	}
	return s.client
}

// poolRefusal is the answer when no runtime could be had.
func (s *session) poolRefusal(err error) error {
	s.srv.opts.Observer.PoolRefused()
	switch {
	case errors.Is(err, pool.ErrFull):
		return &refusal{status: http.StatusServiceUnavailable, msg: poolFullMsg(err), reason: tunnel.PoolFull,
			fields: []field{{"Retry-After", strconv.Itoa(poolRetryAfter)}}}
	case errors.Is(err, pool.ErrUserLimit):
		return &refusal{status: http.StatusTooManyRequests, msg: poolUserLimitMsg, reason: tunnel.PoolUserLimit,
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

// releaseClaim ends the session's use of its claim. The last connection
// using a runtime releases it: into its user's grace if one of them had
// its upgrade answered, else free.
func (s *session) releaseClaim() {
	c := s.claim
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.srv.ctx), s.srv.opts.ConnectTimeout)
	defer cancel()
	upgraded := s.upgrade && s.status == http.StatusSwitchingProtocols
	if err := c.Release(ctx, upgraded); err != nil {
		s.srv.log.Warn("pool: releasing a runtime failed; its claim expires by itself", zap.String("runtime", c.Runtime), zap.Error(err))
	}
}

// ClaimLost is the pool's word that a claim could not be kept (its lease
// ran out unrenewed, or another replica holds the runtime now): every
// connection it covers — the session and the native connections that
// joined it — is closed, so that two users never share a runtime.
func (s *Server) ClaimLost(c *pool.Claim, err error) {
	if s.killAll(tunnel.ClaimLost, func(sess *session) bool { return sess.claim == c }) > 0 {
		s.log.Warn("pool: a session's claim on its runtime could not be renewed; closing the session", zap.String("runtime", c.Runtime), zap.Error(err))
	}
}

// PoolUsers names, for each runtime a session here holds, its user when
// authentication says who that is (a token's subject); a cookie or an
// address is never shown.
func (s *Server) PoolUsers() map[string]string {
	out := map[string]string{}
	if s.opts.Pool == nil {
		return out
	}
	for r, owner := range s.opts.Pool.Users() {
		if sub, ok := strings.CutPrefix(owner, "subject:"); ok {
			out[r] = sub
		}
	}
	return out
}
