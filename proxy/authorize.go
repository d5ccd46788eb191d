package proxy

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
)

// authorize decides, when authentication is on, whether a request may go
// to the runtime. It returns nil, or the refusal to answer with: 401 with
// the CORS set and a WWW-Authenticate that says why (the page's script can
// read both), 503 while the provider's keys have never loaded.
func (s *session) authorize(req requestHead) error {
	a := s.srv.opts.Auth
	if a == nil {
		return nil
	}
	if l := s.srv.opts.Limits; l != nil && s.clientIP.IsValid() {
		if wait, blocked := l.Blocked(s.clientIP); blocked {
			// No verification work for a client that keeps failing.
			s.srv.opts.Observer.ClientLimited(limit.AuthFailures)
			return &refusal{status: http.StatusTooManyRequests, msg: "too many failed authentications from this address; retry later",
				reason: reasonRateLimited, detail: limit.AuthFailures, fields: []field{{"Retry-After", strconv.Itoa(int(wait.Seconds()))}}}
		}
	}
	var err error
	if tok, ok := s.srv.credNames.credential(req); ok {
		ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.opts.ResponseTimeout)
		err = a.Verify(ctx, tok)
		cancel()
	} else {
		err = &auth.Failure{Why: auth.Missing, Detail: "send the token as Authorization: Bearer, the " +
			s.srv.credNames.param + " query parameter or the " + s.srv.credNames.cookie + " cookie"}
	}
	if err == nil {
		return nil
	}
	f := &auth.Failure{Why: auth.BadSignature, Detail: err.Error()}
	errors.As(err, &f)
	if f.Why == auth.NotReady {
		return &refusal{status: http.StatusServiceUnavailable, msg: "authentication not ready: the identity provider's keys have not loaded",
			reason: reasonAuthNotReady}
	}
	s.srv.opts.Observer.AuthRefused(f.Why.String())
	if l := s.srv.opts.Limits; l != nil && s.clientIP.IsValid() {
		l.Failed(s.clientIP)
	}
	return &refusal{status: http.StatusUnauthorized, msg: "unauthorized: " + f.Error(), reason: reasonUnauthorized,
		detail: f.Why.String(), fields: []field{bearerChallenge(f)}}
}

// authenticated reports whether a request to the proxy's own pages carries
// a credential that is accepted: only then do they show the backend.
func (s *session) authenticated(ctx context.Context, req requestHead) bool {
	a := s.srv.opts.Auth
	if a == nil {
		return true
	}
	tok, ok := s.srv.credNames.credential(req)
	return ok && a.Verify(ctx, tok) == nil
}

// bearerChallenge is the 401's WWW-Authenticate (RFC 6750 section 3): the
// failure's words as a quoted-string, which a page's script can read.
func bearerChallenge(f *auth.Failure) field {
	return field{"WWW-Authenticate", `Bearer error="invalid_token", error_description=` + quotedString(f.Error())}
}
