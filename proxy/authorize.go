package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// Every verification of a credential, whichever path asks for it (a
// request for the runtime, or the proxy's own pages deciding whether to
// show the runtime's address), goes through verify: it counts against the
// client's failed-authentication budget, a refusal is counted in the
// metric, and a client over its budget gets no verification at all. A page
// must not be a free oracle for guessing tokens (issue 18, finding 3).

// authorize decides, when authentication is on, whether a request may go
// to the runtime. It returns nil, or the refusal to answer with: 401 with
// the CORS set and a WWW-Authenticate that says why (the page's script can
// read both), 429 for a client over its budget, 503 while the provider's
// keys have never loaded.
func (s *session) authorize(req requestHead) error {
	if s.srv.opts.Auth == nil {
		return nil
	}
	if err := s.overBudget(); err != nil {
		return err
	}
	tok, ok := s.srv.credNames.credential(req)
	if !ok {
		// A request for the runtime without a credential counts as a
		// failure too: a client must not probe the runtime for free.
		f := &auth.Failure{Why: auth.Missing, Detail: "send the token as Authorization: Bearer, the " +
			s.srv.credNames.param + " query parameter or the " + s.srv.credNames.cookie + " cookie"}
		s.refused(f)
		return unauthorized(f)
	}
	return s.verify(tok)
}

// authenticated reports whether a request to the proxy's own pages carries
// a credential that is accepted: only then do they show the backend. A
// refused credential here counts and is logged as on any other path.
func (s *session) authenticated(req requestHead) bool {
	if s.srv.opts.Auth == nil {
		return true
	}
	tok, ok := s.srv.credNames.credential(req)
	if !ok {
		return false // a visitor without a credential: nothing was tried
	}
	err := s.verify(tok)
	var rf *refusal
	if errors.As(err, &rf) && rf.reason == tunnel.Unauthorized {
		s.srv.floodLog.Warn("credential refused on the proxy's page", zap.String("client", s.client),
			zap.String("path", s.path), zap.String("why", rf.detail))
	}
	return err == nil
}

// verify checks a credential within the client's budget. It returns nil
// when accepted, else the refusal.
func (s *session) verify(tok string) error {
	if err := s.overBudget(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.opts.ResponseTimeout)
	err := s.srv.opts.Auth.Verify(ctx, tok)
	cancel()
	if err == nil {
		return nil
	}
	f := &auth.Failure{Why: auth.BadSignature, Detail: "the token does not verify"}
	errors.As(err, &f)
	if f.Why == auth.NotReady {
		return &refusal{status: http.StatusServiceUnavailable, msg: "authentication not ready: the identity provider's keys have not loaded",
			reason: tunnel.AuthNotReady}
	}
	s.refused(f)
	return unauthorized(f)
}

// overBudget is the 429 for a client whose failed authentications have
// used up its budget, or nil.
func (s *session) overBudget() error {
	l, c := s.srv.opts.Limits, s.limits
	if l == nil || c == nil {
		return nil
	}
	wait, blocked := l.Blocked(c)
	if !blocked {
		return nil
	}
	s.srv.opts.Observer.ClientLimited(limit.AuthFailures)
	return &refusal{status: http.StatusTooManyRequests, msg: "too many failed authentications from this address; retry later",
		reason: tunnel.RateLimited, detail: limit.AuthFailures, fields: []field{{"Retry-After", strconv.Itoa(int(wait.Seconds()))}}}
}

// refused counts a refused credential: in the metric, and against the
// client's budget.
func (s *session) refused(f *auth.Failure) {
	s.srv.opts.Observer.AuthRefused(f.Why.String())
	if l, c := s.srv.opts.Limits, s.limits; l != nil && c != nil {
		l.Failed(c)
	}
}

// unauthorized is the 401 for a refused credential.
func unauthorized(f *auth.Failure) error {
	return &refusal{status: http.StatusUnauthorized, msg: "unauthorized: " + f.Error(), reason: tunnel.Unauthorized,
		detail: f.Why.String(), fields: []field{bearerChallenge(f)}}
}

// bearerChallenge is the 401's WWW-Authenticate (RFC 6750 section 3): the
// failure's words as a quoted-string, which a page's script can read.
func bearerChallenge(f *auth.Failure) field {
	return field{"WWW-Authenticate", `Bearer error="invalid_token", error_description=` + quotedString(f.Error())}
}
