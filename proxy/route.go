package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/allow"
)

// Router picks the backend from the first path segment, as CloudXR.js
// clients behind an HTTPS proxy ask for it (signalingResourcePath
// "/<server-ip>/..."): wss://proxy/10.0.3.17/sign_in?peer_id=... goes to
// 10.0.3.17:49100 as /sign_in?peer_id=.... Only runtimes on the allow-list
// are ever dialed.
type Router struct {
	runtimes *allow.Runtimes
}

// NewRouter routes to the runtimes on the list.
func NewRouter(r *allow.Runtimes) *Router { return &Router{runtimes: r} }

// Route splits a request target into the backend address and the target
// to forward (the rest of the path, with the query, unchanged). Its errors
// are refusals: 400 for a malformed target, 403 for one not allowed.
func (r *Router) Route(target string) (addr, rest string, err error) {
	path, query, hasQuery := strings.Cut(target, "?")
	seg, tail, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if seg == "" {
		return "", "", &refusal{http.StatusBadRequest, "the first path segment must name the CloudXR runtime (/<host>[:port]/...)", reasonRouteRefused}
	}
	if s, err := url.PathUnescape(seg); err == nil {
		seg = s // browsers may send an IPv6 literal's brackets encoded
	}
	addr, err = r.runtimes.Target(seg)
	if err != nil {
		status := http.StatusForbidden
		if errors.Is(err, allow.ErrBadTarget) {
			status = http.StatusBadRequest
		}
		return "", "", &refusal{status, err.Error(), reasonRouteRefused}
	}
	rest = "/" + tail
	if hasQuery {
		rest += "?" + query
	}
	return addr, rest, nil
}

// rewriteTarget returns head with the request line's target replaced.
func rewriteTarget(head []byte, target string) []byte {
	line, rest, _ := strings.Cut(string(head), "\r\n")
	method, tail, _ := strings.Cut(line, " ")
	_, proto, _ := strings.Cut(tail, " ")
	return []byte(method + " " + target + " " + proto + "\r\n" + rest)
}
